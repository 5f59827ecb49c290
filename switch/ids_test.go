package payswitch_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/payswitch/payswitch/internal/timeid"

	. "github.com/payswitch/payswitch/switch"
)

func TestPaymentIDsAreWordsThatSortByTime(t *testing.T) {
	prev := ""
	ids := timeid.New(PaymentIDLayout)
	now := time.Date(2026, 11, 21, 9, 0, 0, 0, time.UTC)
	for i := range 20_000 {
		id := ids.Next(now.Add(time.Duration(i) * time.Millisecond))
		if !ValidPaymentID(id) || strings.Trim(id, IDLetters) != "" || id <= prev {
			t.Fatalf("id %q after %q: want ten of %s, each after the one before", id, prev, IDLetters)
		}
		prev = id
	}
}

// A switch restarted within the same ten-second tick can draw an ID it used before the
// restart. The payment, and a deposit, are then made with another ID, not refused.
func TestTakenPaymentIDIsDrawnAgain(t *testing.T) {
	// The harness's clock stands still unless the test moves it: every ID below is drawn
	// in the same tick.
	h := newHarness(t)
	h.wallet(alice, 100000)
	w := h.wallet(bob, 100000)
	h.merchant("55501", mama)

	// restart makes the generator draw what it drew after snapshot, as a new process
	// that happened to start at the same point of the same tick would.
	snapshot := func() func() {
		started, tick, seq := h.engine.IDState()
		return func() { h.engine.SetIDState(started, tick, seq) }
	}
	restart := snapshot()
	h.sms(alice, "PAY 55501 150")
	first := h.pendingOf(alice)
	restart()
	h.sms(bob, "PAY 55501 200")
	second := h.pendingOf(bob)
	if first == nil || second == nil || first.ID == second.ID {
		t.Fatalf("pending payments %+v and %+v", first, second)
	}
	if !strings.Contains(h.last(bob).Text, second.ID) || second.Amount != 20000 {
		t.Fatalf("bob's code SMS %q does not name his payment %+v", h.last(bob).Text, second)
	}
	h.sms(bob, h.code(bob))
	if got, err := h.engine.Payment(context.Background(), second.ID); err != nil || got.State != StateCompleted {
		t.Fatalf("bob's payment = %+v, %v", got, err)
	}

	restart = snapshot()
	d1, err := h.engine.Deposit(context.Background(), Deposit{Account: w.ID, Amount: 500, Reference: "CASHIN-A"})
	if err != nil {
		t.Fatal(err)
	}
	restart()
	d2, err := h.engine.Deposit(context.Background(), Deposit{Account: w.ID, Amount: 700, Reference: "CASHIN-B"})
	if err != nil || d1.ID == d2.ID {
		t.Fatalf("second deposit = %+v, %v (first %s)", d2, err, d1.ID)
	}
	if b := h.balance(w.ID); b.Posted != 100000-20000+500+700 {
		t.Fatalf("bob's balance = %+v", b)
	}
	h.assertBalanced()
}
