package payswitch_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/payswitch/payswitch/internal/pgtest"
	"github.com/payswitch/payswitch/store"

	. "github.com/payswitch/payswitch/switch"
)

// forged enters code for msisdn's waiting payment as a callback from origin would.
func (h *harness) forged(origin, msisdn, code string) Outcome {
	h.t.Helper()
	out, err := h.engine.Confirm(WithOrigin(context.Background(), origin), ChannelUSSD, msisdn, "", code)
	if err != nil {
		h.t.Fatal(err)
	}
	return out
}

// TestForgedOriginCannotLockOrKeepGuessing: wrong codes that callbacks from one origin
// deliver count against the number's lock only up to wrong_codes_lock - 1; the origin's
// further entries are refused unchecked (even the right code), the owner can still pay
// by SMS, and the owner's own wrong codes by SMS still lock the number.
func TestForgedOriginCannotLockOrKeepGuessing(t *testing.T) {
	pgtest.Both(t, func(t *testing.T) {
		h := newHarness(t)
		h.cfg.Fraud = Fraud{WrongCodesLock: 5, LockWindow: 24 * time.Hour, LockDuration: time.Hour}
		h.restart()
		w := h.wallet(alice, 100000)
		h.merchant("55501", mama)
		const evil = "ussd:203.0.113.7"

		// The payment's own max_attempts still applies to what the origin may try.
		h.sms(alice, "PAY 55501 10")
		c := h.code(alice)
		first := h.pendingOf(alice)
		for range 3 {
			h.forged(evil, alice, wrongCode(c))
		}
		if got, _ := h.engine.Payment(context.Background(), first.ID); got.State != StateFailed {
			t.Fatalf("after 3 wrong codes the payment is %s", got.State)
		}

		h.sms(alice, "PAY 55501 10")
		c = h.code(alice)
		if out := h.forged(evil, alice, wrongCode(c)); out.Problem != ProblemWrongCode {
			t.Fatalf("4th wrong code from the origin: %+v", out)
		}
		h.restart() // the origin's count is in the database, not in memory
		for i := range 20 {
			out := h.forged(evil, alice, wrongCode(c))
			if out.Problem != ProblemOriginLimited || !strings.Contains(out.Text, "reply to our SMS") {
				t.Fatalf("entry %d after the origin's limit: %+v", i, out)
			}
		}
		// Not checked: the right code from that origin does not confirm either.
		if out := h.forged(evil, alice, c); out.Problem != ProblemOriginLimited {
			t.Fatalf("right code from a spent origin: %+v", out)
		}
		p := h.pendingOf(alice)
		if p == nil {
			t.Fatal("the payment ended after entries that were refused unchecked")
		}
		var wrong int
		if err := h.db.Reader().QueryRow(`SELECT count(*) FROM auth_events WHERE payment_id = ? AND event = 'wrong'`, p.ID).Scan(&wrong); err != nil {
			t.Fatal(err)
		}
		if wrong != 1 {
			t.Fatalf("%d wrong codes checked for %s, want 1", wrong, p.ID)
		}
		// The number is not locked: its owner confirms by SMS.
		h.sms(alice, c)
		if h.balance(w.ID).Posted != 99000 {
			t.Fatalf("the owner could not pay: %q", h.last(alice).Text)
		}

		// Another origin is counted on its own; the owner's SMS wrong codes still lock.
		h.sms(alice, "PAY 55501 10")
		c = h.code(alice)
		h.sms(alice, wrongCode(c)) // 4 from the origin + 1 by SMS = 5
		h.sms(alice, "CANCEL")
		h.sms(alice, "PAY 55501 10")
		if txt := h.last(alice).Text; !strings.Contains(txt, "locked") {
			t.Fatalf("SMS wrong codes did not lock the number: %q", txt)
		}
		h.assertBalanced()
	})
}

// TestOriginLimitWindowAndSetting: wrong_codes_per_origin when set, and a new window
// gives the origin its codes back.
func TestOriginLimitWindowAndSetting(t *testing.T) {
	pgtest.Both(t, func(t *testing.T) {
		h := newHarness(t)
		h.cfg.Fraud = Fraud{WrongCodesLock: 5, WrongCodesPerOrigin: 2, LockWindow: time.Hour, LockDuration: time.Hour}
		h.restart()
		h.wallet(alice, 100000)
		h.merchant("55501", mama)
		const gw = "ivr:198.51.100.2"
		h.sms(alice, "PAY 55501 10")
		c := h.code(alice)
		h.forged(gw, alice, wrongCode(c))
		h.forged(gw, alice, wrongCode(c))
		if out := h.forged(gw, alice, c); out.Problem != ProblemOriginLimited {
			t.Fatalf("3rd entry with wrong_codes_per_origin 2: %+v", out)
		}
		if out := h.forged("ivr:198.51.100.3", alice, c); !out.OK() {
			t.Fatalf("another origin's right code: %+v", out)
		}
		h.clock.Advance(time.Hour + time.Second)
		h.sms(alice, "PAY 55501 10")
		if out := h.forged(gw, alice, h.code(alice)); !out.OK() {
			t.Fatalf("the origin's right code in a new window: %+v", out)
		}
	})
}

// TestWrongCodeThatLocksEndsThePayment is issue 18's story: a number with wrong codes on
// an earlier payment starts a new one and gives more; the code that trips the lock is
// answered with the lock, until when (with the zone) and what to do, never with tries
// that do not exist, and the payment ends at once with its hold voided.
func TestWrongCodeThatLocksEndsThePayment(t *testing.T) {
	pgtest.Both(t, func(t *testing.T) {
		for _, tc := range []struct {
			name      string
			lock      int
			wrongs    int    // on the second payment; the last one locks
			wantTries string // the answer to the wrong code before it
		}{
			{"lock while tries are left", 5, 2, "2 tries left"},
			{"lock on the payment's last try", 6, 3, "1 try left"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				h := newHarness(t)
				h.cfg.Location = time.FixedZone("EAT", 3*60*60)
				h.cfg.Fraud = Fraud{WrongCodesLock: tc.lock, LockWindow: 24 * time.Hour, LockDuration: time.Hour}
				h.restart()
				w := h.wallet(alice, 100000)
				h.merchant("55501", mama)
				h.sms(alice, "PAY 55501 10")
				c := h.code(alice)
				for range 3 {
					h.sms(alice, wrongCode(c))
				}
				h.clock.Advance(4*time.Hour + 13*time.Minute) // 13:13 UTC, 16:13 EAT
				h.sms(alice, "PAY 55501 150")
				p := h.pendingOf(alice)
				c = h.code(alice)
				for i := range tc.wrongs - 1 {
					h.sms(alice, wrongCode(c))
					if i == tc.wrongs-2 && !strings.Contains(h.last(alice).Text, tc.wantTries) {
						t.Fatalf("wrong code before the lock: %q", h.last(alice).Text)
					}
				}
				before := h.count(alice)
				h.sms(alice, wrongCode(c))
				if got := h.count(alice); got != before+1 {
					t.Fatalf("%d messages for the code that locked, want 1", got-before)
				}
				txt := h.last(alice).Text
				for _, want := range []string{p.ID + " failed", "KES 150.00 is available again", "locked until 17:13 EAT", "customer care"} {
					if !strings.Contains(txt, want) {
						t.Fatalf("answer to the code that locked: %q lacks %q", txt, want)
					}
				}
				if strings.Contains(txt, "left") {
					t.Fatalf("answer promises tries: %q", txt)
				}
				if got := h.state(p.ID); got != StateFailed {
					t.Fatalf("payment %s after the lock", got)
				}
				if b := h.balance(w.ID); b.Held != 0 || b.Posted != 100000 {
					t.Fatalf("hold not released: %+v", b)
				}
				h.sms(alice, c) // the right code, too late
				if txt := h.last(alice).Text; !strings.Contains(txt, "locked until 17:13 EAT") {
					t.Fatalf("right code after the lock: %q", txt)
				}
				h.assertBalanced()
			})
		}
	})
}

// TestPaymentWaitingUnderALockEnds: a payment left waiting under a lock (made before
// locks ended the payment that tripped them) ends at the next code, its hold released.
func TestPaymentWaitingUnderALockEnds(t *testing.T) {
	pgtest.Both(t, func(t *testing.T) {
		h := newHarness(t)
		h.cfg.Fraud = Fraud{WrongCodesLock: 5, LockWindow: 24 * time.Hour, LockDuration: time.Hour}
		h.restart()
		w := h.wallet(alice, 100000)
		h.merchant("55501", mama)
		h.sms(alice, "PAY 55501 150")
		p := h.pendingOf(alice)
		until := h.clock.Now().Add(time.Hour).UnixMicro()
		if err := h.db.Write(context.Background(), func(tx store.Tx) error {
			_, err := tx.ExecContext(context.Background(), `INSERT INTO number_locks VALUES (?, ?, 0, ?)`, alice, until, until)
			return err
		}); err != nil {
			t.Fatal(err)
		}
		h.sms(alice, h.code(alice))
		if txt := h.last(alice).Text; !strings.Contains(txt, "locked until 10:00 UTC") || !strings.Contains(txt, p.ID+" failed") {
			t.Fatalf("code under a lock: %q", txt)
		}
		if got := h.state(p.ID); got != StateFailed || h.balance(w.ID).Held != 0 {
			t.Fatalf("payment %s, balance %+v", got, h.balance(w.ID))
		}
		h.assertBalanced()
	})
}
