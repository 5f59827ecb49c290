package main

import (
	"testing"
	"time"
)

// TestSMSFlowsOverSMPP walks the contract's SMS paths through a running switch, its SMPP
// link and the simulated network, one phone conversation each.
func TestSMSFlowsOverSMPP(t *testing.T) {
	s := startSwitch(t, "5m")
	w := s.open(map[string]string{"type": "wallet", "msisdn": alice, "name": "Alice"})
	b := s.open(map[string]string{"type": "wallet", "msisdn": bob, "name": "Bob"})
	s.open(map[string]string{"type": "merchant", "code": "55501", "name": "Mama Mboga"})
	a, bb := s.phone(alice), s.phone(bob)
	s.deposit(w.ID, 100000, "CASHIN-1")
	a.expect("deposited")

	t.Run("send money", func(t *testing.T) {
		a.send("SEND 0700000002 200")
		a.send(codeIn(t, a.expect("KES 200.00")))
		a.expect("confirmed", "KES 800.00")
		bb.expect("received", "KES 200.00", "2547****001")
		if got := s.account(b.ID).Balance.Posted; got != 20000 {
			t.Fatalf("bob = %d", got)
		}
	})
	t.Run("cancel releases the hold", func(t *testing.T) {
		a.send("PAY 55501 100")
		a.expect("KES 100.00")
		if s.account(w.ID).Balance.Held != 10000 {
			t.Fatal("not held")
		}
		a.send("cancel")
		a.expect("cancelled")
		if s.account(w.ID).Balance.Held != 0 {
			t.Fatal("hold kept")
		}
	})
	t.Run("insufficient funds", func(t *testing.T) {
		a.send("PAY 55501 5000")
		a.expect("Insufficient funds", "KES 800.00")
	})
	t.Run("unknown merchant", func(t *testing.T) {
		a.send("PAY 99999 10")
		a.expect("no merchant 99999")
	})
	t.Run("second request while one is pending", func(t *testing.T) {
		a.send("PAY 55501 10")
		first := a.expect("KES 10.00")
		a.send("PAY 55501 20")
		a.expect(first[:10], "waiting")
		a.send("CANCEL")
		a.expect("cancelled")
	})
	t.Run("code from another number", func(t *testing.T) {
		a.send("PAY 55501 10")
		code := codeIn(t, a.expect("KES 10.00"))
		bb.send(code)
		bb.expect("no payment waiting")
		a.send(code)
		a.expect("confirmed", "KES 790.00")
	})
	t.Run("three wrong codes fail the payment", func(t *testing.T) {
		a.send("PAY 55501 10")
		code := codeIn(t, a.expect("KES 10.00"))
		wrong := "000000"
		if code == wrong {
			wrong = "111111"
		}
		a.send(wrong)
		a.expect("2 tries left")
		a.send(wrong)
		a.expect("1 try left")
		a.send(wrong)
		a.expect("too many wrong codes")
		a.send(code)
		a.expect("no payment waiting")
		if bal := s.account(w.ID).Balance; bal.Held != 0 || bal.Posted != 79000 {
			t.Fatalf("after failure: %+v", bal)
		}
	})
	t.Run("expiry", func(t *testing.T) {
		a.send("PAY 55501 10")
		code := codeIn(t, a.expect("KES 10.00"))
		s.expireCodes(5 * time.Minute) // the code's TTL passes on the switch's clock
		a.expect("expired")
		a.send(code)
		a.expect("no payment waiting")
		if bal := s.account(w.ID).Balance; bal.Held != 0 || bal.Posted != 79000 {
			t.Fatalf("after expiry: %+v", bal)
		}
	})
	t.Run("balance and mini statement", func(t *testing.T) {
		a.send("BAL")
		a.expect("KES 790.00")
		a.send("MINI")
		a.expect("Last payments:", "-10.00")
	})
}
