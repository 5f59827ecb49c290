package payswitch_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	. "github.com/payswitch/payswitch/switch"
)

// A merchant's request to a blocklisted till is refused with ErrRequestBlocked, whose
// words name no list; nothing is sent to the phone or stored but the history's entry.
func TestRiskBlocksRequestToPay(t *testing.T) {
	h := riskHarness(t, true)
	h.wallet(alice, 100000)
	m := h.merchant("66601", "")
	ctx := context.Background()
	before, err := h.outbox.List(ctx, alice, 50)
	if err != nil {
		t.Fatal(err)
	}
	p, err := h.engine.RequestPayment(ctx, PaymentRequest{Merchant: m.ID, MSISDN: alice, Amount: 15000, Reference: "INV-1"})
	if !errors.Is(err, ErrRequestBlocked) || p != nil || strings.Contains(err.Error(), "merchant") ||
		strings.Contains(err.Error(), "list") {
		t.Fatalf("payment %+v, %v: want ErrRequestBlocked naming no list", p, err)
	}
	after, err := h.outbox.List(ctx, alice, 50)
	if err != nil {
		t.Fatal(err)
	}
	if len(after) != len(before) {
		t.Fatalf("%d messages to the payer, want %d", len(after), len(before))
	}
	if ps := h.rig.Payments(alice); len(ps) != 1 { // the deposit
		t.Fatalf("%d payments", len(ps))
	}
	var detail, id string // id: the drafted payment ID
	if err := h.db.Reader().QueryRow(`SELECT detail, payment_id FROM auth_events WHERE event = 'blocked'`).Scan(&detail, &id); err != nil ||
		detail != "request to pay, risk block: blocked_merchant" || id == "" {
		t.Fatalf("history %q %q (%v)", detail, id, err)
	}
	// The same reference again is blocked again: nothing was kept under it.
	if _, err := h.engine.RequestPayment(ctx, PaymentRequest{Merchant: m.ID, MSISDN: alice, Amount: 15000, Reference: "INV-1"}); !errors.Is(err, ErrRequestBlocked) {
		t.Fatalf("again: %v", err)
	}
}

// A high request's code lives high_ttl and takes one attempt; a low one still needs its
// code even with frictionless on; both are recorded.
func TestRiskGradesRequestToPay(t *testing.T) {
	h := riskHarness(t, true)
	w := h.wallet(alice, 5000000)
	m := h.merchant("55501", "")
	ctx := context.Background()

	p := h.requestTo(m, alice, 2000000, "BIG-1")
	if p.Risk != RiskHigh || p.RiskRules != "amount" || !p.ExpiresAt.Equal(p.CreatedAt.Add(2*time.Minute)) {
		t.Fatalf("high request %+v", p)
	}
	if text := h.last(alice).Text; !strings.Contains(text, "within 2 min") {
		t.Fatalf("request SMS %q", text)
	}
	h.sms(alice, wrongCode(h.requestCode(alice)))
	if got, _ := h.engine.Payment(ctx, p.ID); got.State != StateFailed || h.balance(w.ID).Posted != 5000000 {
		t.Fatalf("after one wrong code: %s, balance %+v", got.State, h.balance(w.ID))
	}
	if a := h.authOf(p.ID); len(a) == 0 || a[0] != "issued request to pay, risk high: amount" {
		t.Fatalf("history %q", a)
	}

	first := h.requestTo(m, alice, 15000, "INV-1") // a payee never paid: normal
	if first.Risk != RiskNormal {
		t.Fatalf("first request %+v", first)
	}
	h.sms(alice, h.requestCode(alice))
	h.clock.Advance(time.Hour)
	low := h.requestTo(m, alice, 20000, "INV-2")
	if low.Risk != RiskLow || low.RiskRules != "known_payee" || low.State != StateRequested ||
		!low.ExpiresAt.Equal(low.CreatedAt.Add(10*time.Minute)) {
		t.Fatalf("low request %+v", low)
	}
	if m := h.last(alice); m.Purpose != "request" {
		t.Fatalf("last SMS %s, want the request with its code", m.Purpose)
	}
	h.sms(alice, h.requestCode(alice))
	if got, _ := h.engine.Payment(ctx, low.ID); got.State != StateCompleted || got.Risk != RiskLow {
		t.Fatalf("low request after its code: %+v", got)
	}
	if a := h.authOf(low.ID); len(a) == 0 || a[0] != "issued request to pay, risk low: known_payee" {
		t.Fatalf("history %q", a)
	}
	h.assertBalanced()
}
