package payswitch_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/payswitch/payswitch/internal/pgtest"
	"github.com/payswitch/payswitch/otp"
	. "github.com/payswitch/payswitch/switch"
)

// riskHarness is a harness whose engine grades requests: low up to KES 500 to a payee
// paid in the last 30 days, high from KES 10,000, blocked for mama's till 66601.
func riskHarness(t *testing.T, frictionless bool) *harness {
	h := newHarness(t)
	h.cfg.Risk = &Risk{Frictionless: frictionless, LowMaxAmount: 50000, LowPaidWithin: 30 * 24 * time.Hour,
		HighAmount: 1000000, HighTTL: 2 * time.Minute, BlockMerchants: []string{"66601"}}
	h.restart()
	return h
}

// authOf are payment id's history entries, each as "event detail".
func (h *harness) authOf(id string) []string {
	h.t.Helper()
	var out []string
	err := otp.Events(context.Background(), h.db.Reader(), func(e otp.Event) error {
		if e.PaymentID == id {
			out = append(out, e.Event+" "+e.Detail)
		}
		return nil
	})
	if err != nil {
		h.t.Fatal(err)
	}
	return out
}

// A request graded block is refused with a neutral SMS, holds nothing and makes no
// payment; the history names its rule.
func TestRiskBlockRefuses(t *testing.T) {
	pgtest.Both(t, func(t *testing.T) {
		h := riskHarness(t, false)
		w := h.wallet(alice, 100000)
		h.rig.Merchant("66601", "Bad Shop", "254700000966")
		h.sms(alice, "PAY 66601 100")
		if m := h.last(alice); !strings.Contains(m.Text, "this payment cannot be made") || strings.Contains(m.Text, "block") {
			t.Fatalf("answered %q", m.Text)
		}
		if b := h.balance(w.ID); b.Held != 0 || b.Posted != 100000 {
			t.Fatalf("balance %+v", b)
		}
		if ps := h.rig.Payments(alice); len(ps) != 1 { // the deposit
			t.Fatalf("%d payments", len(ps))
		}
		var detail string
		if err := h.db.Reader().QueryRow(`SELECT detail FROM auth_events WHERE event = 'blocked'`).Scan(&detail); err != nil ||
			detail != "risk block: blocked_merchant" {
			t.Fatalf("history %q (%v)", detail, err)
		}
	})
}

// A high payment's code lives two minutes and takes one attempt: a wrong code fails it.
func TestRiskHighStepsUp(t *testing.T) {
	pgtest.Both(t, func(t *testing.T) {
		h := riskHarness(t, false)
		w := h.wallet(alice, 5000000)
		h.wallet(bob, 0)
		h.sms(alice, "SEND "+bob+" 20000")
		p := h.pendingOf(alice)
		if p == nil || p.Risk != RiskHigh || p.RiskRules != "amount" || !p.ExpiresAt.Equal(p.CreatedAt.Add(2*time.Minute)) {
			t.Fatalf("payment %+v", p)
		}
		if m := h.last(alice); !strings.Contains(m.Text, "within 2 min") {
			t.Fatalf("code SMS %q", m.Text)
		}
		h.sms(alice, wrongCode(h.code(alice)))
		if got := h.payment(p.ID).State; got != StateFailed {
			t.Fatalf("after one wrong code: %s", got)
		}
		if b := h.balance(w.ID); b.Held != 0 {
			t.Fatalf("held %d", b.Held)
		}
		if a := h.authOf(p.ID); len(a) == 0 || a[0] != "issued risk high: amount" {
			t.Fatalf("history %q", a)
		}
	})
}

// A low payment keeps its code unless frictionless is on; with it, it completes at
// once without one, and the history says so.
func TestRiskLowFrictionless(t *testing.T) {
	pgtest.Both(t, func(t *testing.T) {
		for _, frictionless := range []bool{false, true} {
			h := riskHarness(t, frictionless)
			w := h.wallet(alice, 100000)
			h.wallet(bob, 0)
			h.sms(alice, "SEND "+bob+" 100") // the first: a new payee, normal
			first := h.pendingOf(alice)
			if first == nil || first.Risk != RiskNormal {
				t.Fatalf("first payment %+v", first)
			}
			h.sms(alice, h.code(alice))
			h.clock.Advance(time.Hour)
			h.sms(alice, "SEND "+bob+" 200")
			ps := h.rig.Payments(alice)
			p := ps[0]
			if p.Risk != RiskLow || p.RiskRules != "known_payee" {
				t.Fatalf("second payment %+v", p)
			}
			if !frictionless {
				if p.State != StatePendingOTP || h.last(alice).Purpose != "otp" {
					t.Fatalf("frictionless off: %s, last SMS %s", p.State, h.last(alice).Purpose)
				}
				continue
			}
			if p.State != StateCompleted || h.last(alice).Purpose != "receipt" {
				t.Fatalf("frictionless: %s, last SMS %s", p.State, h.last(alice).Purpose)
			}
			if b := h.balance(w.ID); b.Posted != 100000-30000 || b.Held != 0 {
				t.Fatalf("balance %+v", b)
			}
			if a := h.authOf(p.ID); len(a) != 1 || a[0] != "confirmed no code: risk low: known_payee" {
				t.Fatalf("history %q", a)
			}
			h.assertBalanced()
		}
	})
}
