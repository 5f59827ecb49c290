package otp

import (
	"testing"
	"time"

	"github.com/payswitch/payswitch/internal/pgtest"

	"github.com/payswitch/payswitch/store"
)

// Contract section 14's events are stored on both drivers, and an unknown one is still
// refused.
func TestLockEventsStored(t *testing.T) {
	pgtest.Both(t, func(t *testing.T) {
		db := mustOpen(t)
		write(t, db, func(tx store.Tx) error {
			for _, ev := range []string{EventLocked, EventLockRefused, EventUnlocked, EventBlocked} {
				if err := RecordEvent(ctx, tx, Event{Time: t0, MSISDN: "254700000001", Channel: "sms", Event: ev,
					Detail: "wrong id number"}); err != nil {
					return err
				}
			}
			return nil
		})
		var n int
		if err := db.Reader().QueryRow(`SELECT count(*) FROM auth_events WHERE payment_id = ''`).Scan(&n); err != nil || n != 4 {
			t.Fatalf("%d events (%v), want 4", n, err)
		}
		err := db.Write(ctx, func(tx store.Tx) error {
			_, err := tx.ExecContext(ctx, `INSERT INTO auth_events (time, payment_id, msisdn_masked, channel, event, detail)
				VALUES ('x', '', '', '', 'unlock_all', '')`)
			return err
		})
		if err == nil {
			t.Fatal("the CHECK let an unknown event in")
		}
	})
}

// A code issued for a stepped-up payment takes one attempt: its first wrong code kills
// it; the right one first still works.
func TestIssueDrawnStepUp(t *testing.T) {
	pgtest.Both(t, func(t *testing.T) {
		db, i := mustOpen(t), mustIssuer(t, Config{})
		for n, right := range []bool{false, true} {
			b := binding([]string{"PAYSTEPAAA", "PAYSTEPBBB"}[n])
			d, err := i.Draw(b)
			if err != nil {
				t.Fatal(err)
			}
			write(t, db, func(tx store.Tx) error { return i.IssueDrawnStepUp(ctx, tx, d, t0, t0.Add(2*time.Minute)) })
			code := d.Code
			if !right {
				code = wrongCode(code)
			}
			res := check(t, db, i, b, code, t0.Add(time.Second))
			if right && !res.OK || !right && res != (Result{Exhausted: true}) {
				t.Fatalf("right %v: %+v", right, res)
			}
		}
	})
}
