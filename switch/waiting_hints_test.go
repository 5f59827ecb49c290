package payswitch_test

import (
	"context"
	"reflect"
	"sort"
	"testing"
	"time"

	"github.com/payswitch/payswitch/internal/pgtest"
	. "github.com/payswitch/payswitch/switch"
)

// byID sorts payments by ID, so that two lists of the same payments compare equal.
func byID(ps []*Payment) []*Payment {
	out := append([]*Payment(nil), ps...)
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// The payments an engine keeps as a number's waiting ones are, field for field, what
// the reader pool reads back: a PAY, a merchant's request beside it, a BUY with its
// items. A confirmation drops the number's hints, and the payment still waiting is
// confirmed from the database. On PostgreSQL no hints are kept, and all of it works
// the same.
func TestWaitingHintsAreWhatTheDatabaseHolds(t *testing.T) {
	pgtest.Both(t, func(t *testing.T) {
		ctx := context.Background()
		h := newHarness(t)
		payer := h.wallet(alice, 100000)
		h.wallet(bob, 100000)
		shop := h.merchant("55501", mama)
		h.catalog.add(shop.ID, Product{Code: "12", Name: "Sugar 1kg", Price: 15000})
		h.clock.Advance(1234567 * time.Nanosecond) // the database keeps microseconds
		h.sms(alice, "PAY 55501 150")
		own := h.code(alice)
		req := h.requestTo(shop, alice, 2500, "INV-1")
		h.sms(bob, "BUY 55501 12 2")
		for _, msisdn := range []string{alice, bob} {
			read, err := h.engine.ReadWaiting(ctx, msisdn)
			if err != nil {
				t.Fatal(err)
			}
			hints := h.engine.WaitingHints(msisdn)
			if pgtest.OnPostgres(t) {
				if hints != nil {
					t.Fatalf("%s: hints kept on PostgreSQL: %+v", msisdn, hints)
				}
				continue
			}
			if want := map[string]int{alice: 2, bob: 1}[msisdn]; len(read) != want {
				t.Fatalf("%s: %d waiting payments, want %d", msisdn, len(read), want)
			}
			if !reflect.DeepEqual(byID(hints), byID(read)) {
				t.Fatalf("%s: hints differ from the database:\n%+v\n%+v", msisdn, hints, read)
			}
		}
		if bobs := h.engine.WaitingHints(bob); len(bobs) == 1 && len(bobs[0].Items) != 1 {
			t.Fatalf("the BUY's hint has items %+v", bobs[0].Items)
		}
		h.sms(alice, own)
		if hints := h.engine.WaitingHints(alice); hints != nil {
			t.Fatalf("hints kept after a confirmation: %+v", hints)
		}
		h.sms(alice, h.codeIn(alice, "request"))
		if got := h.payment(req.ID).State; got != StateCompleted {
			t.Fatalf("the request, confirmed from the database, is %s", got)
		}
		if got := h.balance(payer.ID).Posted; got != 100000-15000-2500 {
			t.Fatalf("alice has %d", got)
		}
		h.assertBalanced()
	})
}

// A hint about a payment that no longer waits, or a number's hints that miss its
// waiting payment, change nothing: the write confirms what it reads itself.
func TestStaleWaitingHintsChangeNothing(t *testing.T) {
	ctx := context.Background()
	h := newHarness(t)
	payer := h.wallet(alice, 100000)
	h.merchant("55501", mama)
	h.sms(alice, "PAY 55501 150")
	first := h.pendingOf(alice)
	if out, err := h.engine.Cancel(ctx, ChannelSMS, alice, ""); err != nil || !out.OK() {
		t.Fatalf("cancel: %+v %v", out, err)
	}
	h.sms(alice, "PAY 55501 200")
	code := h.code(alice)
	second := h.pendingOf(alice)
	// The engine holds only the cancelled payment, as one restarted since the second
	// began would not hold the second.
	stale := *first
	h.engine.SetWaitingHints(alice, []*Payment{&stale})
	h.sms(alice, code)
	if got := h.payment(second.ID).State; got != StateCompleted {
		t.Fatalf("the waiting payment is %s", got)
	}
	if got := h.payment(first.ID).State; got != StateCancelled {
		t.Fatalf("the cancelled payment is %s", got)
	}
	if got := h.balance(payer.ID); got.Posted != 100000-20000 || got.Held != 0 {
		t.Fatalf("alice: %+v", got)
	}
	h.assertBalanced()
}
