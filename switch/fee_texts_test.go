package payswitch_test

import (
	"context"
	"strings"
	"testing"

	"github.com/payswitch/payswitch/internal/pgtest"

	. "github.com/payswitch/payswitch/switch"
)

// A guaranteed payment with a fee names it in its receipt; a free one keeps the plain
// text.
func TestEscrowReceiptNamesTheFee(t *testing.T) {
	pgtest.Both(t, func(t *testing.T) {
		for _, fee := range []int64{0, 300} {
			h := newHarness(t)
			g := &guarantees{on: map[string]bool{}}
			h.rig.Opts.Escrow = g
			h.cfg.Tariff = &bandTariff{fees: map[string]int64{"merchant_payment": fee}}
			h.restart()
			g.on[h.merchant("55501", mama).ID] = true
			w := h.wallet(alice, 100000)
			h.sms(alice, "PAY 55501 150")
			h.sms(alice, h.code(alice))
			text := h.last(alice).Text
			if p := h.rig.Payments(alice)[0]; p.State != StateInEscrow || p.Fee != fee {
				t.Fatalf("fee %d: payment %+v", fee, p)
			}
			if named := strings.Contains(text, "fee KES 3.00"); named != (fee > 0) || !strings.Contains(text, "RELEASE") {
				t.Fatalf("fee %d: receipt %q", fee, text)
			}
			if b := h.balance(w.ID); b.Posted != 100000-15000-fee {
				t.Fatalf("fee %d: balance %+v", fee, b)
			}
			h.assertBalanced()
		}
	})
}

// A request to pay that fails for want of amount + fee says both; a free one keeps
// the plain text.
func TestRequestFailedNamesTheFee(t *testing.T) {
	pgtest.Both(t, func(t *testing.T) {
		for _, fee := range []int64{0, 300} {
			h := feeHarness(t, &bandTariff{fees: map[string]int64{"merchant_payment": fee}})
			h.wallet(alice, 10000)
			m := h.merchant("55501", "")
			p, err := h.engine.RequestPayment(context.Background(), PaymentRequest{Merchant: m.ID, MSISDN: alice,
				Amount: 15000, Reference: "INV-1"})
			if err != nil {
				t.Fatal(err)
			}
			h.sms(alice, h.requestCode(alice))
			text := h.last(alice).Text
			want := "insufficient funds to pay KES 150.00 to"
			if fee > 0 {
				want = "insufficient funds to pay KES 150.00 + fee KES 3.00 to"
			}
			if got, _ := h.engine.Payment(context.Background(), p.ID); got.State != StateFailed || !strings.Contains(text, want) ||
				!strings.Contains(text, "KES 100.00 available") {
				t.Fatalf("fee %d: %s, %q", fee, got.State, text)
			}
		}
	})
}
