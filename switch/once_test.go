package payswitch_test

import (
	"context"
	"testing"
	"time"

	"github.com/payswitch/payswitch/internal/pgtest"
	"github.com/payswitch/payswitch/store"

	. "github.com/payswitch/payswitch/switch"
)

// An MO handed to the engine again under the same DecideOnce key (a spool that applies
// what it holds again after a crash) is not decided again, whatever it says: a PAY
// makes no second payment and holds no more, a wrong code counts once towards the lock,
// a code pays once, and no second answer goes out; and its store operation does not
// fail (that would run its whole group again). Another key is another MO. Keys
// that are forgotten (ForgetDecidedBelow) are gone, and the highest kept is known.
func TestMODecidedOnceUnderItsKey(t *testing.T) {
	pgtest.Both(t, func(t *testing.T) {
		ctx := context.Background()
		h := newHarness(t)
		h.cfg.Fraud = Fraud{WrongCodesLock: 2, LockWindow: 24 * time.Hour, LockDuration: time.Hour}
		h.restart()
		w := h.wallet(alice, 100000)
		h.merchant("55501", mama)
		once := func(key int64, text string) {
			t.Helper()
			if err := h.engine.HandleSMS(DecideOnce(ctx, key), alice, text); err != nil {
				t.Fatalf("HandleSMS(%q) under key %d: %v", text, key, err)
			}
		}

		once(1, "PAY 55501 150")
		p := h.pendingOf(alice)
		sent := h.count(alice)
		redos := h.db.Stats().Redos
		once(1, "PAY 55501 150")
		if h.db.Dialect() == store.SQLite && h.db.Stats().Redos != redos {
			t.Fatal("an MO decided before failed its store operation, and its group ran again")
		}
		if q := h.pendingOf(alice); q == nil || q.ID != p.ID || h.count(alice) != sent {
			t.Fatalf("the PAY again: pending %v (first %s), %d messages (%d before)", q, p.ID, h.count(alice), sent)
		}
		if b := h.balance(w.ID); b.Held != 15000 {
			t.Fatalf("held %d after the PAY twice, want 15000", b.Held)
		}
		c := h.code(alice)

		// One wrong code, handed twice: counted once, so the number is not locked (2).
		once(2, wrongCode(c))
		once(2, wrongCode(c))
		once(3, c)
		if b := h.balance(w.ID); b.Posted != 100000-15000 || b.Held != 0 {
			t.Fatalf("balance %+v after the code, want KES 150 paid and nothing held", b)
		}
		sent = h.count(alice)
		once(3, c)
		if h.count(alice) != sent {
			t.Fatal("the code handed again was answered")
		}
		// Without a key, or under a new one, an MO is decided as ever.
		h.sms(alice, "BAL")
		once(4, "BAL")
		if h.count(alice) != sent+2 {
			t.Fatalf("%d messages, want two balance answers more than %d", h.count(alice), sent)
		}

		if k, err := h.engine.LastDecidedKey(ctx); err != nil || k != 4 {
			t.Fatalf("LastDecidedKey = %d, %v; want 4", k, err)
		}
		if err := h.engine.ForgetDecidedBelow(ctx, 4); err != nil {
			t.Fatal(err)
		}
		once(1, "BAL") // forgotten: a key the channel no longer hands, decided if it came
		if h.count(alice) != sent+3 {
			t.Fatal("an MO under a forgotten key was not decided")
		}
		if k, err := h.engine.LastDecidedKey(ctx); err != nil || k != 4 {
			t.Fatalf("LastDecidedKey after forgetting = %d, %v; want 4", k, err)
		}
		h.assertBalanced()
	})
}
