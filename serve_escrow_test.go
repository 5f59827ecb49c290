package main

import (
	"context"
	"net/http"
	"testing"
)

// TestGuaranteedPaymentBySMS runs a guaranteed payment (contract section 11) through a
// running switch: an operator turns escrow on for a merchant, a payer pays it by SMS and
// confirms with the code, the money waits in escrow (the payer's receipt says how it is
// released), a RELEASE from another number is answered as if there were no such payment,
// the payer's RELEASE pays the merchant, the merchant's system hears escrow.released, and
// the books balance and verify.
func TestGuaranteedPaymentBySMS(t *testing.T) {
	s := startSwitch(t, "5m")
	rcv := startReceiver(t, s, hookSecret)
	w := s.open(map[string]string{"type": "wallet", "msisdn": alice, "name": "Alice"})
	s.open(map[string]string{"type": "wallet", "msisdn": bob, "name": "Bob"})
	a, b, shopPhone := s.phone(alice), s.phone(bob), s.phone(mama)
	s.deposit(w.ID, 100000, "CASHIN-1")
	a.expect("deposited")
	m := s.openShop("55501", "Mama Mboga", mama)
	m.setWebhook(rcv)
	var set struct {
		ID     string `json:"id"`
		Escrow bool   `json:"escrow"`
	}
	if c := m.do("PATCH", "/api/v1/merchants/"+m.id, map[string]bool{"escrow": true}, nil); c != http.StatusForbidden {
		t.Fatalf("a merchant's own key set escrow: %d", c)
	}
	if c := s.call("PATCH", "/api/v1/merchants/"+m.id, opsToken, map[string]bool{"escrow": true}, &set); c != http.StatusOK ||
		!set.Escrow || set.ID != m.id {
		t.Fatalf("escrow on: %d %+v", c, set)
	}

	a.send("PAY 55501 150")
	codeSMS := a.expect("KES 150.00", "Never share")
	id := paymentID(codeSMS)
	a.send(codeIn(t, codeSMS))
	a.expect(id, "held until you reply RELEASE "+id, "DISPUTE "+id)
	shopPhone.expect(id, "held in escrow")
	p := s.payment(id)
	if p["state"] != "in_escrow" || p["escrow"] != true || p["release_at"] == nil {
		t.Fatalf("confirmed: %v", p)
	}
	before := s.books(w.ID, m.id, "escrow:KES")
	if before.Balances[w.ID].Balance.Posted != 85000 || before.Balances[m.id].Balance.Posted != 0 ||
		before.Balances["escrow:KES"].Balance.Posted != 15000 {
		t.Fatalf("in escrow: %+v", before.Balances)
	}

	b.send("RELEASE " + id)
	b.expect("You have no payment " + id + " held in escrow")
	s.unchanged(before)

	a.send("RELEASE " + id)
	a.expect(id, "released to Mama Mboga")
	shopPhone.expect(id, "released to you", "KES 150.00")
	ev := rcv.expect("escrow.released", id)
	if ev.Data.State != "completed" || !ev.Data.Escrow {
		t.Fatalf("event data %+v", ev.Data)
	}
	after := s.books(w.ID, m.id, "escrow:KES")
	if after.Balances[w.ID].Balance.Posted != 85000 || after.Balances[m.id].Balance.Posted != 15000 ||
		after.Balances["escrow:KES"].Balance.Posted != 0 {
		t.Fatalf("released: %+v", after.Balances)
	}
	a.send("RELEASE " + id)
	a.expect(id, "already", "Nothing was changed")
	s.unchanged(after)
	rep, err := s.app.ledger.Verify(context.Background())
	if err != nil || !rep.OK {
		t.Fatalf("verify: %+v %v", rep, err)
	}
	// The auditors' export of books with an escrow account verifies too.
	exportVerified(t, s.app.cfg.Database.Path)
}
