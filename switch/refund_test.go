package payswitch_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/payswitch/payswitch/internal/pgtest"
	"github.com/payswitch/payswitch/ledger"

	. "github.com/payswitch/payswitch/switch"
)

// paid is a completed payment of KES 150 by SMS from alice (KES 1,000 before it) to
// Mama Mboga (55501), with the two accounts.
func (h *harness) paid() (p *Payment, payer, shop ledger.Account) {
	h.t.Helper()
	payer = h.wallet(alice, 100000)
	shop = h.merchant("55501", mama)
	h.sms(alice, "PAY 55501 150")
	h.sms(alice, h.code(alice))
	ps, err := h.engine.Payments(context.Background(), alice, 1)
	if err != nil || len(ps) != 1 || ps[0].State != StateCompleted {
		h.t.Fatalf("payment %+v, %v", ps, err)
	}
	return ps[0], payer, shop
}

// eventsAbout are the events about payment id, in the order queued: its own, and its
// refunds', whose subject is "<payment id>/<refund id>".
func (h *harness) eventsAbout(id string) []sentEvent {
	h.events.mu.Lock()
	defer h.events.mu.Unlock()
	var out []sentEvent
	for _, e := range h.events.got {
		if e.Subject == id || strings.HasPrefix(e.Subject, id+"/") {
			out = append(out, e)
		}
	}
	return out
}

func (h *harness) refund(q RefundRequest) (*Refund, bool, error) {
	return h.engine.Refund(context.Background(), q)
}

// unchanged fails the test if the payer's or the shop's balance, the payment's refunded
// or the number of messages to either moved from what they were before.
func (h *harness) unchanged(p *Payment, payer, shop ledger.Account) func() {
	h.t.Helper()
	bp, bs, refunded := h.balance(payer.ID), h.balance(shop.ID), h.payment(p.ID).Refunded
	np, ns := h.count(alice), h.count(mama)
	return func() {
		h.t.Helper()
		if h.balance(payer.ID) != bp || h.balance(shop.ID) != bs || h.payment(p.ID).Refunded != refunded ||
			h.count(alice) != np || h.count(mama) != ns {
			h.t.Fatalf("something moved: payer %+v shop %+v refunded %d", h.balance(payer.ID), h.balance(shop.ID),
				h.payment(p.ID).Refunded)
		}
	}
}

func TestRefundPartThenTheRest(t *testing.T) {
	pgtest.Both(t, func(t *testing.T) {
		h := newHarness(t)
		p, payer, shop := h.paid()

		rf, created, err := h.refund(RefundRequest{PaymentID: p.ID, Merchant: shop.ID, Amount: 5000, Reference: "RF-1",
			Reason: "one item out of stock", Actor: "merchant key web"})
		if err != nil || !created {
			t.Fatalf("refund: %+v %v %v", rf, created, err)
		}
		if rf.PaymentID != p.ID || rf.Amount != 5000 || rf.Merchant != shop.ID || rf.Actor != "merchant key web" ||
			rf.TransferID == "" || !ValidPaymentID(rf.ID) || rf.ID == p.ID {
			t.Fatalf("refund %+v", rf)
		}
		if b := h.balance(payer.ID); b.Posted != 90000 {
			t.Fatalf("payer %+v", b)
		}
		if b := h.balance(shop.ID); b.Posted != 10000 {
			t.Fatalf("shop %+v", b)
		}
		got := h.payment(p.ID)
		if got.State != StateCompleted || got.Refunded != 5000 || got.TransferID != p.TransferID {
			t.Fatalf("after a part: %+v", got)
		}
		sms := h.last(alice)
		for _, want := range []string{p.ID, "Mama Mboga (55501)", "refunded KES 50.00", "New balance KES 900.00"} {
			if sms.Purpose != "refund" || !strings.Contains(sms.Text, want) {
				t.Fatalf("payer's SMS %q (%s) lacks %q", sms.Text, sms.Purpose, want)
			}
		}
		if n := h.last(mama); !strings.Contains(n.Text, "KES 50.00 refunded to 2547****001") || !strings.Contains(n.Text, "KES 100.00") {
			t.Fatalf("merchant's notice %q", n.Text)
		}
		evs := h.eventsAbout(p.ID)
		if len(evs) != 2 || evs[1].Type != EventPaymentRefunded || evs[1].Merchant != shop.ID || evs[1].Data.Refunded != 5000 ||
			evs[1].Data.State != string(StateCompleted) || evs[1].Subject != p.ID+"/"+rf.ID {
			t.Fatalf("events %+v", evs)
		}

		// An operator refunds the rest: the payment is refunded.
		if _, created, err := h.refund(RefundRequest{PaymentID: p.ID, Amount: 10000, Reference: "RF-2", Actor: "ops"}); err != nil || !created {
			t.Fatalf("the rest: %v %v", created, err)
		}
		got = h.payment(p.ID)
		if got.State != StateRefunded || got.Refunded != 15000 || got.TransferID != p.TransferID {
			t.Fatalf("after the rest: %+v", got)
		}
		if b := h.balance(payer.ID); b.Posted != 100000 {
			t.Fatalf("payer %+v", b)
		}
		if b := h.balance(shop.ID); b.Posted != 0 {
			t.Fatalf("shop %+v", b)
		}
		if evs := h.eventsAbout(p.ID); len(evs) != 3 || evs[2].Type != EventPaymentRefunded || evs[2].Data.State != string(StateRefunded) {
			t.Fatalf("events %+v", evs)
		}
		rs, err := h.engine.Refunds(context.Background(), p.ID, "")
		if err != nil || len(rs) != 2 || rs[0].Reference != "RF-1" || rs[1].Reference != "RF-2" || rs[1].Actor != "ops" {
			t.Fatalf("refunds %+v %v", rs, err)
		}
		trs, err := h.ledger.TransfersOfPayment(context.Background(), p.ID)
		if err != nil {
			t.Fatal(err)
		}
		kinds := map[string]int{}
		for _, tr := range trs {
			kinds[tr.Kind]++
			if tr.Kind == KindRefund && (tr.Debit != shop.ID || tr.Credit != payer.ID || !strings.HasPrefix(tr.Key, "refund:"+shop.ID+":")) {
				t.Fatalf("refund transfer %+v", tr)
			}
		}
		if kinds[KindRefund] != 2 {
			t.Fatalf("transfers by kind %v", kinds)
		}

		// Nothing is left: another refund is too much, and a reversal is refused.
		same := h.unchanged(p, payer, shop)
		if _, _, err := h.refund(RefundRequest{PaymentID: p.ID, Amount: 1, Reference: "RF-3"}); !errors.Is(err, ErrRefundTooMuch) {
			t.Fatalf("a refund of a refunded payment: %v", err)
		}
		if _, err := h.engine.Reverse(context.Background(), p.ID, Reversal{Reason: "fraud", Reference: "REV-1"}); !errors.Is(err, ErrConflict) {
			t.Fatalf("a reversal of a refunded payment: %v", err)
		}
		same()
		h.assertBalanced()
	})
}

func TestRefundRefusals(t *testing.T) {
	pgtest.Both(t, func(t *testing.T) {
		h := newHarness(t)
		p, payer, shop := h.paid()
		other := h.merchant("55502", "")
		same := h.unchanged(p, payer, shop)
		for _, tc := range []struct {
			name string
			q    RefundRequest
			err  error
		}{
			{"more than was paid", RefundRequest{PaymentID: p.ID, Amount: 15001, Reference: "A"}, ErrRefundTooMuch},
			{"another merchant's payment", RefundRequest{PaymentID: p.ID, Merchant: other.ID, Amount: 100, Reference: "B"}, ErrNotFound},
			{"no such payment", RefundRequest{PaymentID: "ZZZZZZZZZZ", Amount: 100, Reference: "C"}, ErrNotFound},
			{"a malformed payment ID", RefundRequest{PaymentID: "x", Amount: 100, Reference: "C"}, ErrNotFound},
			{"a negative amount", RefundRequest{PaymentID: p.ID, Amount: -5, Reference: "D"}, ErrInvalid},
			{"no reference", RefundRequest{PaymentID: p.ID, Amount: 100}, ErrInvalid},
			{"a reference with a space", RefundRequest{PaymentID: p.ID, Amount: 100, Reference: "R 1"}, ErrInvalid},
			{"a reason too long", RefundRequest{PaymentID: p.ID, Amount: 100, Reference: "E", Reason: strings.Repeat("x", 201)}, ErrInvalid},
		} {
			if _, _, err := h.refund(tc.q); !errors.Is(err, tc.err) {
				t.Errorf("%s: %v, want %v", tc.name, err, tc.err)
			}
		}
		// A payment still waiting for its code.
		h.wallet(bob, 100000)
		h.sms(bob, "PAY 55501 20")
		waiting := h.pendingOf(bob)
		if _, _, err := h.refund(RefundRequest{PaymentID: waiting.ID, Amount: 100, Reference: "F"}); !errors.Is(err, ErrNotRefundable) {
			t.Errorf("a pending payment: %v", err)
		}
		h.sms(bob, "CANCEL")
		// A deposit is no merchant payment.
		ps, _ := h.engine.Payments(context.Background(), alice, 10)
		for _, d := range ps {
			if d.Type == DepositPayment {
				if _, _, err := h.refund(RefundRequest{PaymentID: d.ID, Amount: 100, Reference: "G"}); !errors.Is(err, ErrNotRefundable) {
					t.Errorf("a deposit: %v", err)
				}
			}
		}
		same()
		rs, err := h.engine.Refunds(context.Background(), p.ID, "")
		if err != nil || len(rs) != 0 {
			t.Fatalf("refunds %+v %v", rs, err)
		}
		if _, err := h.engine.Refunds(context.Background(), p.ID, other.ID); !errors.Is(err, ErrNotFound) {
			t.Fatalf("another merchant listed the refunds: %v", err)
		}
		h.assertBalanced()
	})
}

// The refund comes out of what the merchant has available: when it has spent the money,
// the refund is refused with what it has, and nothing moves.
func TestRefundMerchantShort(t *testing.T) {
	pgtest.Both(t, func(t *testing.T) {
		h := newHarness(t)
		p, payer, shop := h.paid()
		bank := h.wallet(bob, 0)
		if _, err := h.ledger.Transfer(context.Background(), ledger.TransferRequest{Key: "payout-1", Debit: shop.ID,
			Credit: bank.ID, Amount: 12000, Kind: "withdrawal"}); err != nil {
			t.Fatal(err)
		}
		same := h.unchanged(p, payer, shop)
		_, _, err := h.refund(RefundRequest{PaymentID: p.ID, Merchant: shop.ID, Amount: 5000, Reference: "RF-1"})
		if !errors.Is(err, ErrInsufficientFund) || !strings.Contains(err.Error(), "KES 30.00 available") {
			t.Fatalf("%v", err)
		}
		same()
		// What it has is enough for a smaller refund; the reference refused before is free.
		if _, created, err := h.refund(RefundRequest{PaymentID: p.ID, Merchant: shop.ID, Amount: 3000, Reference: "RF-1"}); err != nil || !created {
			t.Fatalf("%v %v", created, err)
		}
		h.assertBalanced()
	})
}

func TestRefundSameReferenceTwice(t *testing.T) {
	pgtest.Both(t, func(t *testing.T) {
		h := newHarness(t)
		p, payer, shop := h.paid()
		q := RefundRequest{PaymentID: p.ID, Merchant: shop.ID, Amount: 5000, Reference: "RF-1"}
		first, created, err := h.refund(q)
		if err != nil || !created {
			t.Fatal(created, err)
		}
		same := h.unchanged(p, payer, shop)
		again, created, err := h.refund(q)
		if err != nil || created || again.ID != first.ID || again.TransferID != first.TransferID {
			t.Fatalf("again: %+v %v %v", again, created, err)
		}
		// An operator repeating the merchant's reference is the same refund.
		q.Merchant = ""
		if again, created, err := h.refund(q); err != nil || created || again.ID != first.ID {
			t.Fatalf("by an operator: %+v %v %v", again, created, err)
		}
		q.Amount = 6000
		if _, _, err := h.refund(q); !errors.Is(err, ErrConflict) {
			t.Fatalf("another amount: %v", err)
		}
		same()
		if evs := h.eventsAbout(p.ID); len(evs) != 2 {
			t.Fatalf("events %v", evs)
		}
	})
}

// Refunds made at once, each of its own reference, never give back more than was paid:
// the store's one writer takes them one at a time, each deciding on what the one before
// left.
func TestConcurrentRefundsNeverExceedThePayment(t *testing.T) {
	pgtest.Both(t, func(t *testing.T) {
		h := newHarness(t)
		p, payer, shop := h.paid()
		const workers = 8 // 4,000 each of 15,000: three fit
		var wg sync.WaitGroup
		errs := make([]error, workers)
		for i := range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, _, errs[i] = h.refund(RefundRequest{PaymentID: p.ID, Merchant: shop.ID, Amount: 4000,
					Reference: fmt.Sprintf("RF-%d", i)})
			}()
		}
		wg.Wait()
		ok := 0
		for _, err := range errs {
			switch {
			case err == nil:
				ok++
			case !errors.Is(err, ErrRefundTooMuch):
				t.Fatalf("refused with %v", err)
			}
		}
		if got := h.payment(p.ID); ok != 3 || got.Refunded != 12000 || got.State != StateCompleted {
			t.Fatalf("%d refunds made, payment %+v", ok, got)
		}
		if b := h.balance(payer.ID); b.Posted != 85000+12000 {
			t.Fatalf("payer %+v", b)
		}
		if b := h.balance(shop.ID); b.Posted != 15000-12000 {
			t.Fatalf("shop %+v", b)
		}
		h.assertBalanced()
	})
}

// A reversal after a partial refund would give back more than is left: it is refused,
// and the rest goes back as a refund.
func TestReverseAfterPartialRefundIsRefused(t *testing.T) {
	pgtest.Both(t, func(t *testing.T) {
		h := newHarness(t)
		p, payer, shop := h.paid()
		if _, _, err := h.refund(RefundRequest{PaymentID: p.ID, Amount: 5000, Reference: "RF-1"}); err != nil {
			t.Fatal(err)
		}
		same := h.unchanged(p, payer, shop)
		_, err := h.engine.Reverse(context.Background(), p.ID, Reversal{Reason: "fraud", Reference: "REV-1"})
		if !errors.Is(err, ErrConflict) || !strings.Contains(err.Error(), "KES 100.00") {
			t.Fatalf("%v", err)
		}
		same()
		if got := h.payment(p.ID); got.State != StateCompleted {
			t.Fatalf("%+v", got)
		}
	})
}
