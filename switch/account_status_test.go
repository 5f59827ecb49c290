package payswitch_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/payswitch/payswitch/internal/pgtest"
	"github.com/payswitch/payswitch/ledger"
	. "github.com/payswitch/payswitch/switch"
)

// TestFreezeCancelsTheWaitingPayment freezes a wallet while its payment waits for the
// code: in the same write the status changes, the history records who and why, the
// payment is cancelled and its hold released, so the code no longer completes it.
func TestFreezeCancelsTheWaitingPayment(t *testing.T) {
	pgtest.Both(t, func(t *testing.T) {
		h := newHarness(t)
		ctx := context.Background()
		w := h.wallet(alice, 100000)
		h.merchant("55501", mama)
		h.sms(alice, "PAY 55501 150")
		code, p := h.code(alice), h.pendingOf(alice)

		a, err := h.engine.SetAccountStatus(ctx, AccountStatusChange{Account: w.ID, Status: ledger.Frozen,
			Reason: "phone reported stolen", Actor: "ops-anne"})
		if err != nil || a.Status != ledger.Frozen {
			t.Fatalf("freeze: %+v, %v", a, err)
		}
		if b := h.balance(w.ID); b.Held != 0 || b.Available != 100000 {
			t.Fatalf("hold not released: %+v", b)
		}
		if got, _ := h.engine.Payment(ctx, p.ID); got.State != StateCancelled || got.Reason == "" {
			t.Fatalf("payment after freeze = %+v", got)
		}
		if m := h.last(alice); m.Purpose != "cancelled" || !strings.Contains(m.Text, p.ID) {
			t.Fatalf("payer told %+v", m)
		}
		h.sms(alice, code)
		if txt := h.last(alice).Text; !strings.Contains(txt, "no payment waiting") {
			t.Fatalf("code after freeze answered %q", txt)
		}
		// A frozen wallet cannot start another payment either.
		h.sms(alice, "PAY 55501 150")
		if h.pendingOf(alice) != nil {
			t.Fatal("a frozen wallet has a payment waiting")
		}

		if _, err := h.engine.SetAccountStatus(ctx, AccountStatusChange{Account: w.ID, Status: ledger.Frozen,
			Reason: "again", Actor: "ops-anne"}); !errors.Is(err, ErrConflict) {
			t.Fatalf("no change: %v", err)
		}
		if a, err = h.engine.SetAccountStatus(ctx, AccountStatusChange{Account: w.ID, Status: ledger.Active,
			Reason: "owner identified at the branch", Actor: "ops-ben"}); err != nil || a.Status != ledger.Active {
			t.Fatalf("reactivate: %+v, %v", a, err)
		}
		cs, err := h.engine.AccountChanges(ctx, w.ID, 10)
		if err != nil || len(cs) != 2 {
			t.Fatalf("history %+v, %v", cs, err)
		}
		if c := cs[0]; c.Old != "frozen" || c.New != "active" || c.Actor != "ops-ben" || c.Reason != "owner identified at the branch" || c.Field != "status" {
			t.Fatalf("newest %+v", c)
		}
		if c := cs[1]; c.Old != "active" || c.New != "frozen" || c.Actor != "ops-anne" || c.At.IsZero() {
			t.Fatalf("oldest %+v", c)
		}
		h.assertBalanced()
	})
}

// TestAccountStatusRefusals: nothing is written for a refused change.
func TestAccountStatusRefusals(t *testing.T) {
	pgtest.Both(t, func(t *testing.T) {
		h := newHarness(t)
		ctx := context.Background()
		w := h.wallet(alice, 100) // the deposit makes cash:KES
		for _, tc := range []struct {
			name string
			c    AccountStatusChange
			want error
		}{
			{"unknown", AccountStatusChange{Account: "ACNOPE", Status: ledger.Frozen, Reason: "x", Actor: "ops"}, ErrNotFound},
			{"system", AccountStatusChange{Account: "cash:KES", Status: ledger.Frozen, Reason: "x", Actor: "ops"}, ErrInvalid},
			{"no reason", AccountStatusChange{Account: w.ID, Status: ledger.Frozen, Actor: "ops"}, ErrInvalid},
			{"bad status", AccountStatusChange{Account: w.ID, Status: "closed", Reason: "x", Actor: "ops"}, ErrInvalid},
			{"no change", AccountStatusChange{Account: w.ID, Status: ledger.Active, Reason: "x", Actor: "ops"}, ErrConflict},
		} {
			if _, err := h.engine.SetAccountStatus(ctx, tc.c); !errors.Is(err, tc.want) {
				t.Errorf("%s: %v, want %v", tc.name, err, tc.want)
			}
		}
		if cs, err := h.engine.AccountChanges(ctx, w.ID, 10); err != nil || len(cs) != 0 {
			t.Fatalf("history after refusals: %+v, %v", cs, err)
		}
	})
}
