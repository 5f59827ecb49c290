package payswitch_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/payswitch/payswitch/internal/pgtest"
	"github.com/payswitch/payswitch/ledger"

	. "github.com/payswitch/payswitch/switch"
)

func TestNumberLockedAfterWrongCodesAcrossPayments(t *testing.T) {
	pgtest.Both(t, func(t *testing.T) {
		h := newHarness(t)
		h.cfg.Fraud = Fraud{WrongCodesLock: 5, LockWindow: 24 * time.Hour, LockDuration: time.Hour}
		h.restart()
		w := h.wallet(alice, 100000)
		h.merchant("55501", mama)

		// Three wrong codes fail the first payment, two more on the second lock the number.
		h.sms(alice, "PAY 55501 10")
		c := h.code(alice)
		for range 3 {
			h.sms(alice, wrongCode(c))
		}
		h.sms(alice, "PAY 55501 10")
		c = h.code(alice)
		h.sms(alice, wrongCode(c))
		h.sms(alice, wrongCode(c))
		h.sms(alice, c) // even the right code is refused while locked
		if txt := h.last(alice).Text; !strings.Contains(txt, "locked until 10:00") {
			t.Fatalf("reply = %q", txt)
		}
		h.sms(alice, "PAY 55501 10")
		if txt := h.last(alice).Text; !strings.Contains(txt, "locked") {
			t.Fatalf("new payment while locked: %q", txt)
		}
		if h.balance(w.ID).Posted != 100000 {
			t.Fatal("money moved while locked")
		}
		// The lock ends by itself.
		h.clock.Advance(time.Hour + time.Second)
		if _, err := h.engine.ExpireDue(context.Background()); err != nil {
			t.Fatal(err)
		}
		h.sms(alice, "PAY 55501 10")
		h.sms(alice, h.code(alice))
		if h.balance(w.ID).Posted != 99000 {
			t.Fatalf("after the lock: %q", h.last(alice).Text)
		}
	})
}

func TestRequestsPerMinuteLimit(t *testing.T) {
	pgtest.Both(t, func(t *testing.T) {
		h := newHarness(t)
		h.cfg.Fraud = Fraud{RequestsPerMinute: 3}
		h.restart()
		h.wallet(alice, 100000)
		h.merchant("55501", mama)
		for range 3 {
			h.sms(alice, "PAY 55501 10")
			h.sms(alice, "CANCEL")
		}
		before := h.count(alice)
		h.sms(alice, "PAY 55501 10")
		if txt := h.last(alice).Text; !strings.Contains(txt, "Too many requests") {
			t.Fatalf("reply = %q", txt)
		}
		h.sms(alice, "PAY 55501 10") // refused again, silently: a flood must not become a flood of SMS
		if got := h.count(alice); got != before+1 {
			t.Fatalf("%d replies to two refused requests, want 1", got-before)
		}
		if h.pendingOf(alice) != nil {
			t.Fatal("a refused request is pending")
		}
		h.clock.Advance(time.Minute)
		h.sms(alice, "PAY 55501 10")
		if h.pendingOf(alice) == nil {
			t.Fatalf("limit did not refill: %q", h.last(alice).Text)
		}
	})
}

type fakeSIMSwap struct {
	swapped bool
	err     error
	asked   []string
}

func (f *fakeSIMSwap) Swapped(ctx context.Context, msisdn string) (bool, error) {
	f.asked = append(f.asked, msisdn)
	return f.swapped, f.err
}

func TestSIMSwapCheckBeforeLargePayments(t *testing.T) {
	pgtest.Both(t, func(t *testing.T) {
		cases := []struct {
			name     string
			swap     fakeSIMSwap
			fraud    Fraud
			amount   string
			want     string // "" = the payment goes ahead
			frozen   bool
			askedFor bool
		}{
			{"small payment not checked", fakeSIMSwap{swapped: true}, Fraud{SIMSwapThreshold: 50000}, "100", "", false, false},
			{"large payment, no swap", fakeSIMSwap{}, Fraud{SIMSwapThreshold: 50000}, "600", "", false, true},
			{"large payment after swap refused", fakeSIMSwap{swapped: true}, Fraud{SIMSwapThreshold: 50000}, "600", "SIM card", false, true},
			{"swap freezes the account", fakeSIMSwap{swapped: true}, Fraud{SIMSwapThreshold: 50000, SIMSwapFreeze: true}, "600", "SIM card", true, true},
			{"check down fails closed", fakeSIMSwap{err: errors.New("timeout")}, Fraud{SIMSwapThreshold: 50000}, "600", "security check", false, true},
			{"check down fails open when asked", fakeSIMSwap{err: errors.New("timeout")}, Fraud{SIMSwapThreshold: 50000, SIMSwapFailOpen: true}, "600", "", false, true},
		}
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				h := newHarness(t)
				h.cfg.Fraud = c.fraud
				swap := c.swap
				h.simSwap = &swap
				h.restart()
				w := h.wallet(alice, 100000)
				h.merchant("55501", mama)
				h.sms(alice, "PAY 55501 "+c.amount)
				if (len(swap.asked) > 0) != c.askedFor {
					t.Fatalf("asked = %v", swap.asked)
				}
				if c.want == "" {
					if h.pendingOf(alice) == nil {
						t.Fatalf("payment refused: %q", h.last(alice).Text)
					}
					return
				}
				if txt := h.last(alice).Text; !strings.Contains(txt, c.want) {
					t.Fatalf("reply = %q", txt)
				}
				a, _ := h.ledger.Account(context.Background(), w.ID)
				if a.Balance.Held != 0 || (a.Status == ledger.Frozen) != c.frozen {
					t.Fatalf("account after refusal: %+v", a)
				}
			})
		}
	})
}
