package main

import (
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	payswitch "github.com/payswitch/payswitch/switch"
)

// refundResp is POST /api/v1/payments/{id}/refund's answer (and an error's, decoded
// alongside).
type refundResp struct {
	payswitch.RefundView
	Payment payswitch.PaymentView `json:"payment"`
	Error   struct{ Code, Message string }
}

// refund asks for a refund of payment id with the shop's key and wants status.
func (m *shop) refund(id string, amount int64, ref string, want int) refundResp {
	m.s.t.Helper()
	var out refundResp
	if c := m.do("POST", "/api/v1/payments/"+id+"/refund", map[string]any{"amount": amount, "reference": ref,
		"reason": "returned goods"}, &out); c != want {
		m.s.t.Fatalf("refund %d of %s under %s: %d %+v, want %d", amount, id, ref, c, out, want)
	}
	return out
}

// TestRefundsThroughServe refunds an SMS payment through a running switch: part of it
// by the merchant's key, then the rest; the payer hears of each by SMS, the merchant's
// phone too, and the merchant's system gets payment.refunded; a repeat, another
// merchant's key and too much move nothing; the books balance and their export verifies.
func TestRefundsThroughServe(t *testing.T) {
	s := startSwitch(t, "5m")
	rcv := startReceiver(t, s, hookSecret)
	w := s.open(map[string]string{"type": "wallet", "msisdn": alice, "name": "Alice"})
	a, till := s.phone(alice), s.phone(mama)
	s.deposit(w.ID, 100000, "CASHIN-1")
	a.expect("deposited")
	m := s.openShop("55501", "Mama Mboga", mama)
	m.setWebhook(rcv)
	other := s.openShop("55502", "Duka", "")

	a.send("PAY 55501 150")
	a.send(codeIn(t, a.expect("KES 150.00", "Never share")))
	id := paymentID(a.expect("confirmed", "KES 850.00"))
	till.expect(id, "received", "KES 150.00")
	rcv.expect("payment.completed", id)

	// Part of it, by the merchant's key.
	rf := m.refund(id, 5000, "RF-1", http.StatusCreated)
	if rf.PaymentID != id || rf.Amount != 5000 || rf.Payment.Refunded != 5000 || rf.Payment.State != "completed" ||
		!strings.Contains(rf.Actor, m.keyID) {
		t.Fatalf("refund %+v", rf)
	}
	a.expect(id, "Mama Mboga (55501) refunded KES 50.00", "New balance KES 900.00")
	till.expect(id, "KES 50.00 refunded to 2547****001", "New balance KES 100.00")
	if ev := rcv.expect("payment.refunded", id); ev.Data.Refunded != 5000 || ev.Data.State != "completed" {
		t.Fatalf("event data %+v", ev.Data)
	}

	// Nothing moves for a repeat, another merchant's key, or more than is left.
	before := s.books(w.ID, m.id)
	if again := m.refund(id, 5000, "RF-1", http.StatusOK); again.ID != rf.ID {
		t.Fatalf("repeat answered %+v", again)
	}
	if e := other.refund(id, 100, "RF-X", http.StatusNotFound); e.Error.Code != "not_found" {
		t.Fatalf("another merchant: %+v", e.Error)
	}
	if e := m.refund(id, 10001, "RF-2", http.StatusConflict); e.Error.Code != "refund_exceeds_payment" {
		t.Fatalf("too much: %+v", e.Error)
	}
	s.unchanged(before)
	if p := s.payment(id); p["refunded"] != 5000.0 {
		t.Fatalf("payment %v", p)
	}

	// The rest: the payment is refunded, and its events say so.
	rest := m.refund(id, 10000, "RF-2", http.StatusCreated)
	if rest.Payment.State != "refunded" || rest.Payment.Refunded != 15000 {
		t.Fatalf("the rest %+v", rest)
	}
	a.expect(id, "refunded KES 100.00", "New balance KES 1,000.00")
	till.expect(id, "KES 100.00 refunded", "New balance KES 0.00")
	if ev := rcv.expect("payment.refunded", id); ev.Data.Refunded != 15000 || ev.Data.State != "refunded" {
		t.Fatalf("event data %+v", ev.Data)
	}
	var list struct{ Refunds []payswitch.RefundView }
	if c := m.do("GET", "/api/v1/payments/"+id+"/refunds", nil, &list); c != http.StatusOK || len(list.Refunds) != 2 ||
		list.Refunds[0].Reference != "RF-1" || list.Refunds[1].Amount != 10000 {
		t.Fatalf("refunds: %d %+v", c, list)
	}
	b := s.books(w.ID, m.id)
	if b.Balances[w.ID].Balance.Posted != 100000 || b.Balances[m.id].Balance.Posted != 0 {
		t.Fatalf("books %+v", b)
	}
	var p struct{ State string }
	if c := s.call("POST", "/api/v1/payments/"+id+"/reverse", opsToken, map[string]string{"reason": "fraud", "reference": "REV-1"}, &p); c != http.StatusConflict {
		t.Fatalf("a reversal of a refunded payment: %d", c)
	}

	// The books export and verify with the refunds' transfers in them.
	s.stop()
	out := exportVerified(t, filepath.Join(s.dir, "payswitch.db"))
	journal, err := os.ReadFile(filepath.Join(out, "journal.csv"))
	if err != nil {
		t.Fatal(err)
	}
	for _, tr := range []string{rf.TransferID, rest.TransferID} {
		if n := strings.Count(string(journal), ","+tr+","+id+","); n != 2 { // a debit and a credit
			t.Fatalf("%d journal entries of refund transfer %s:\n%s", n, tr, journal)
		}
	}
}
