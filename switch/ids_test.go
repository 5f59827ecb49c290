package payswitch

import (
	"context"
	"strings"
	"testing"
	"time"
)

func TestPaymentIDsAreWordsThatSortByTime(t *testing.T) {
	var g paymentIDs
	now := time.Date(2026, 11, 21, 23, 0, 0, 0, time.UTC)
	prev := ""
	seen := map[string]bool{}
	for i := range 400_000 { // more than a tick's numbers: a full tick borrows the next
		if i%50_000 == 0 {
			now = now.Add(3 * time.Second)
		}
		if i == 300_000 {
			now = now.Add(-time.Hour) // the clock went back
		}
		id := g.next(now)
		if !ValidPaymentID(id) || strings.Trim(id, idLetters) != "" {
			t.Fatalf("id %q: want ten of %s", id, idLetters)
		}
		if id <= prev || seen[id] {
			t.Fatalf("id %d %q after %q: not new and larger", i, id, prev)
		}
		prev = id
		seen[id] = true
	}
	// Ids of a later tick sort after, whatever their sequence numbers.
	a := g.next(now.Add(time.Hour))
	g.reseed()
	b := g.next(now.Add(time.Hour))
	if c := g.next(now.Add(time.Hour + idTick)); !(a < b && b < c) {
		t.Fatalf("reseed and next tick: %q %q %q", a, b, c)
	}
}

// A switch restarted within the same ten-second tick can draw an ID it used before the
// restart. The payment, and a deposit, are then made with another ID, not refused.
func TestTakenPaymentIDIsDrawnAgain(t *testing.T) {
	frozen := time.Date(2026, 11, 21, 9, 0, 0, 0, time.UTC)
	idNow = func() time.Time { return frozen }
	defer func() { idNow = time.Now }()
	h := newHarness(t)
	h.wallet(alice, 100000)
	w := h.wallet(bob, 100000)
	h.merchant("55501", mama)

	// restart makes the generator draw what it drew after snapshot, as a new process
	// that happened to start at the same point of the same tick would.
	snapshot := func() func() {
		ids.mu.Lock()
		started, tick, seq := ids.started, ids.tick, ids.seq
		ids.mu.Unlock()
		return func() {
			ids.mu.Lock()
			ids.started, ids.tick, ids.seq = started, tick, seq
			ids.mu.Unlock()
		}
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
