package payswitch_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/payswitch/payswitch/internal/pgtest"
	"github.com/payswitch/payswitch/ledger"
	. "github.com/payswitch/payswitch/switch"
)

// guarantees is an EscrowMerchants in memory: the merchant accounts with escrow on.
type guarantees struct {
	mu sync.Mutex // guards on
	on map[string]bool
}

func (g *guarantees) Guaranteed(_ context.Context, merchantID string) (bool, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.on[merchantID], nil
}

// escrowHarness is a harness whose merchant 55501 (Mama Mboga, with a phone) has escrow
// on, and whose merchant 55502 (no escrow) is there to request guaranteed payments.
type escrowHarness struct {
	*harness
	shop, other ledger.Account
	payer       ledger.Account
}

const escrowAccount = "escrow:KES"

func newEscrowHarness(t *testing.T) *escrowHarness {
	h := newHarness(t)
	g := &guarantees{on: map[string]bool{}}
	h.rig.Opts.Escrow = g
	h.restart()
	eh := &escrowHarness{harness: h}
	eh.shop = h.merchant("55501", mama)
	a, err := h.engine.OpenAccount(context.Background(), OpenAccount{Type: ledger.Merchant, Name: "Duka", Code: "55502"})
	if err != nil {
		t.Fatal(err)
	}
	eh.other = a
	g.on[eh.shop.ID] = true
	eh.payer = h.wallet(alice, 100000)
	h.wallet(bob, 100000)
	return eh
}

// paid is alice's guaranteed PAY 55501 <amount>, confirmed by its code: in escrow.
func (h *escrowHarness) paid(amount string) *Payment {
	h.t.Helper()
	h.sms(alice, "PAY 55501 "+amount)
	p := h.pendingOf(alice)
	if p == nil || !p.Escrow {
		h.t.Fatalf("PAY to a merchant with escrow on: %+v, want a guaranteed payment waiting", p)
	}
	h.sms(alice, h.code(alice))
	return h.payment(p.ID)
}

// balances are the posted balances of alice, the escrow account and Mama Mboga.
func (h *escrowHarness) balances() [3]int64 {
	h.t.Helper()
	esc := int64(0)
	if a, err := h.ledger.Account(context.Background(), escrowAccount); err == nil {
		esc = a.Balance.Posted
	}
	return [3]int64{h.balance(h.payer.ID).Posted, esc, h.balance(h.shop.ID).Posted}
}

func (h *escrowHarness) wantBalances(want [3]int64) {
	h.t.Helper()
	if got := h.balances(); got != want {
		h.t.Fatalf("balances of alice, escrow, shop = %v, want %v", got, want)
	}
	h.assertBalanced()
}

// TestEscrowConfirmAndRelease: a guaranteed PAY's right code posts the money to escrow
// (in_escrow, with its release date), the receipt says how it is released; a RELEASE
// from another number is answered as if the payment did not exist; the payer's RELEASE
// pays the merchant once, and a second one says it was released already.
func TestEscrowConfirmAndRelease(t *testing.T) {
	pgtest.Both(t, func(t *testing.T) {
		h := newEscrowHarness(t)
		p := h.paid("150")
		if p.State != StateInEscrow || !p.ReleaseAt.Equal(h.clock.Now().Add(168*time.Hour)) {
			t.Fatalf("confirmed: %s release %v, want in_escrow released in 168h", p.State, p.ReleaseAt)
		}
		h.wantBalances([3]int64{85000, 15000, 0})
		receipt := h.last(alice)
		if receipt.Purpose != "receipt" || !strings.Contains(receipt.Text, "RELEASE "+p.ID) ||
			!strings.Contains(receipt.Text, "28/11/2026 09:00 UTC") || !strings.Contains(receipt.Text, "DISPUTE "+p.ID) {
			t.Fatalf("receipt %q: want how to release it, and when it is released by itself", receipt.Text)
		}
		if n := h.last(mama); !strings.Contains(n.Text, "held in escrow") {
			t.Fatalf("merchant's notice %q: want that it is held", n.Text)
		}
		if got := h.events.types(p.ID); len(got) != 0 {
			t.Fatalf("events at confirmation %v: the merchant is not paid yet", got)
		}
		if v := p.View(); !v.Escrow || v.ReleaseAt != "2026-11-28T09:00:00Z" {
			t.Fatalf("view %+v: want escrow and release_at", v)
		}

		h.sms(bob, "RELEASE "+p.ID) // not the payer's number: as if there were no such payment
		if m := h.last(bob); m.Text != "You have no payment "+p.ID+" held in escrow. Nothing was changed." {
			t.Fatalf("RELEASE from another number answered %q", m.Text)
		}
		h.sms(mama, "dispute "+strings.ToLower(p.ID))
		if m := h.last(mama); !strings.Contains(m.Text, "You have no payment "+p.ID) {
			t.Fatalf("DISPUTE from the merchant answered %q", m.Text)
		}
		h.wantBalances([3]int64{85000, 15000, 0})

		h.sms(alice, "release "+strings.ToLower(p.ID))
		if got := h.payment(p.ID); got.State != StateCompleted {
			t.Fatalf("after RELEASE: %s, want completed", got.State)
		}
		h.wantBalances([3]int64{85000, 0, 15000})
		if m := h.last(alice); m.Text != p.ID+": KES 150.00 released to Mama Mboga (55501)." {
			t.Fatalf("payer told %q", m.Text)
		}
		if m := h.last(mama); !strings.Contains(m.Text, "released to you. New balance KES 150.00") {
			t.Fatalf("merchant told %q", m.Text)
		}
		if got := h.events.types(p.ID); !slices.Equal(got, []string{EventEscrowReleased}) {
			t.Fatalf("events %v, want escrow.released", got)
		}
		trs, err := h.ledger.TransfersOfPayment(context.Background(), p.ID)
		if err != nil || len(trs) != 2 || trs[1].Kind != KindEscrowRelease || trs[1].Debit != escrowAccount ||
			trs[1].Credit != h.shop.ID {
			t.Fatalf("transfers %+v %v: want the payment into escrow, then escrow_release to the shop", trs, err)
		}

		for _, again := range []string{"RELEASE ", "DISPUTE "} {
			h.sms(alice, again+p.ID)
			if m := h.last(alice); m.Text != p.ID+" was released to Mama Mboga (55501) already. Nothing was changed." {
				t.Fatalf("%s after release answered %q", again, m.Text)
			}
		}
		h.wantBalances([3]int64{85000, 0, 15000})
		if got := h.events.types(p.ID); len(got) != 1 {
			t.Fatalf("events %v after repeats, want one", got)
		}
		// A released guaranteed payment is refunded, never reversed: no one transfer undoes it.
		if _, err := h.engine.Reverse(context.Background(), p.ID, Reversal{Reason: "x", Reference: "REV-1"}); !errors.Is(err, ErrConflict) {
			t.Fatalf("reversal of a guaranteed payment: %v, want ErrConflict", err)
		}
	})
}

// TestEscrowBadCommands: RELEASE and DISPUTE without an ID, with one that is not an ID,
// for an unknown payment, or for the payer's own payment that was not guaranteed, each
// get a clear answer and change nothing.
func TestEscrowBadCommands(t *testing.T) {
	pgtest.Both(t, func(t *testing.T) {
		h := newEscrowHarness(t)
		h.sms(alice, "PAY 55502 100")
		plain := h.pendingOf(alice)
		h.sms(alice, h.code(alice))
		before := h.balances()
		for text, want := range map[string]string{
			"RELEASE":             "To pay a merchant what is held for it: RELEASE <payment id>",
			"DISPUTE 12345":       "To pay a merchant what is held for it: RELEASE <payment id>",
			"RELEASE ABC DEF":     "To pay a merchant what is held for it: RELEASE <payment id>",
			"RELEASE BCDFGHJKLM":  "You have no payment BCDFGHJKLM held in escrow. Nothing was changed.",
			"DISPUTE " + plain.ID: plain.ID + " is not held in escrow. Nothing was changed.",
			"HELP DISPUTE":        "DISPUTE <payment id>",
		} {
			n := h.count(alice)
			h.sms(alice, text)
			if h.count(alice) != n+1 {
				t.Fatalf("%q: want exactly one answer", text)
			}
			if m := h.last(alice); !strings.Contains(m.Text, want) {
				t.Errorf("%q answered %q, want %q", text, m.Text, want)
			}
		}
		if got := h.balances(); got != before {
			t.Fatalf("bad commands moved money: %v, was %v", got, before)
		}
		if got := h.payment(plain.ID); got.State != StateCompleted || got.Escrow {
			t.Fatalf("a plain payment: %s escrow %v", got.State, got.Escrow)
		}
	})
}

// TestEscrowDisputeThenOperator: a request to pay that asks for escrow (its merchant has
// it off) goes to escrow on its code; the payer disputes it, and an operator refunds it;
// another is disputed and released by the operator. Settling what is not held is
// ErrNotInEscrow, and repeats change nothing.
func TestEscrowDisputeThenOperator(t *testing.T) {
	pgtest.Both(t, func(t *testing.T) {
		h := newEscrowHarness(t)
		ctx := context.Background()
		request := func(ref string) *Payment {
			t.Helper()
			p, err := h.engine.RequestPayment(ctx, PaymentRequest{Merchant: h.other.ID, MSISDN: alice, Amount: 20000,
				Reference: ref, Escrow: true})
			if err != nil || !p.Escrow {
				t.Fatalf("request %s: %+v %v", ref, p, err)
			}
			h.sms(alice, h.codeIn(alice, "request"))
			if p = h.payment(p.ID); p.State != StateInEscrow {
				t.Fatalf("request %s confirmed: %s, want in_escrow", ref, p.State)
			}
			return p
		}
		p := request("INV-1")
		shop := func() int64 { return h.balance(h.other.ID).Posted }
		if b := h.balance(h.payer.ID).Posted; b != 80000 || shop() != 0 {
			t.Fatalf("after confirmation: payer %d shop %d", b, shop())
		}
		if _, err := h.engine.SettleEscrow(ctx, p.ID, EscrowSettlement{Action: "keep", Reason: "x"}); !errors.Is(err, ErrInvalid) {
			t.Fatalf("unknown action: %v", err)
		}
		if _, err := h.engine.SettleEscrow(ctx, p.ID, EscrowSettlement{Action: EscrowRefund}); !errors.Is(err, ErrInvalid) {
			t.Fatalf("no reason: %v", err)
		}

		h.sms(alice, "DISPUTE "+p.ID)
		if got := h.payment(p.ID); got.State != StateDisputed {
			t.Fatalf("after DISPUTE: %s", got.State)
		}
		if m := h.last(alice); !strings.Contains(m.Text, "disputed") {
			t.Fatalf("payer told %q", m.Text)
		}
		h.sms(alice, "DISPUTE "+p.ID)
		if m := h.last(alice); m.Text != p.ID+" is disputed already; our staff will settle it." {
			t.Fatalf("second DISPUTE answered %q", m.Text)
		}
		got, err := h.engine.SettleEscrow(ctx, p.ID, EscrowSettlement{Action: EscrowRefund, Reason: "goods never came"})
		if err != nil || got.State != StateRefunded {
			t.Fatalf("refund: %+v %v", got, err)
		}
		if b := h.balance(h.payer.ID).Posted; b != 100000 || shop() != 0 {
			t.Fatalf("after refund: payer %d shop %d", b, shop())
		}
		if m := h.last(alice); !strings.Contains(m.Text, "returned to you. New balance KES 1,000.00") {
			t.Fatalf("payer told %q", m.Text)
		}
		if ev := h.events.types(p.ID); !slices.Equal(ev, []string{EventEscrowDisputed, "payment.refunded"}) {
			t.Fatalf("events %v", ev)
		}
		for _, a := range []EscrowAction{EscrowRefund, EscrowRelease} {
			if _, err := h.engine.SettleEscrow(ctx, p.ID, EscrowSettlement{Action: a, Reason: "again"}); !errors.Is(err, ErrNotInEscrow) {
				t.Fatalf("%s of a refunded payment: %v, want ErrNotInEscrow", a, err)
			}
		}
		h.sms(alice, "RELEASE "+p.ID)
		if m := h.last(alice); m.Text != p.ID+" was returned to you already. Nothing was changed." {
			t.Fatalf("RELEASE after the refund answered %q", m.Text)
		}

		q := request("INV-2")
		h.sms(alice, "DISPUTE "+q.ID)
		got, err = h.engine.SettleEscrow(ctx, q.ID, EscrowSettlement{Action: EscrowRelease, Reason: "delivery proven"})
		if err != nil || got.State != StateCompleted {
			t.Fatalf("release: %+v %v", got, err)
		}
		if b := h.balance(h.payer.ID).Posted; b != 80000 || shop() != 20000 {
			t.Fatalf("after release: payer %d shop %d", b, shop())
		}
		if ev := h.events.types(q.ID); !slices.Equal(ev, []string{EventEscrowDisputed, EventEscrowReleased}) {
			t.Fatalf("events %v", ev)
		}
		if _, err := h.engine.SettleEscrow(ctx, "BCDFGHJKLM", EscrowSettlement{Action: EscrowRelease, Reason: "x"}); !errors.Is(err, ErrNotFound) {
			t.Fatalf("unknown payment: %v", err)
		}
		h.assertBalanced()
	})
}

// TestEscrowReleasedWhenDue: nobody releases or disputes it, and the sweeper releases it
// once its release date passes, not before; one confirmed before a restart, and due
// while the switch was down, is released as soon as the sweeper starts again.
func TestEscrowReleasedWhenDue(t *testing.T) {
	pgtest.Both(t, func(t *testing.T) {
		h := newEscrowHarness(t)
		ctx := context.Background()
		p := h.paid("150")
		h.clock.Advance(168*time.Hour - time.Minute)
		next, err := h.engine.ReleaseDue(ctx)
		if err != nil || !next.Equal(p.ReleaseAt) {
			t.Fatalf("before its date: next %v %v, want %v", next, err, p.ReleaseAt)
		}
		if got := h.payment(p.ID); got.State != StateInEscrow {
			t.Fatalf("released early: %s", got.State)
		}
		h.clock.Advance(time.Minute)
		if next, err := h.engine.ReleaseDue(ctx); err != nil || !next.IsZero() {
			t.Fatalf("at its date: next %v %v", next, err)
		}
		if got := h.payment(p.ID); got.State != StateCompleted || !strings.Contains(got.Reason, "release date") {
			t.Fatalf("at its date: %s (%s), want completed", got.State, got.Reason)
		}
		if m := h.last(alice); !strings.Contains(m.Text, "its release date passed") {
			t.Fatalf("payer told %q", m.Text)
		}
		h.wantBalances([3]int64{85000, 0, 15000})

		q := h.paid("200")
		h.restart()
		h.clock.Advance(200 * time.Hour) // the switch was down past its date
		runCtx, stop := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() { done <- h.engine.RunEscrow(runCtx) }()
		deadline := time.Now().Add(10 * time.Second)
		for h.payment(q.ID).State != StateCompleted {
			if time.Now().After(deadline) {
				t.Fatal("the sweeper did not release what became due while the switch was down")
			}
			time.Sleep(5 * time.Millisecond)
		}
		stop()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		h.wantBalances([3]int64{65000, 0, 35000})
		if ev := h.events.types(q.ID); !slices.Equal(ev, []string{EventEscrowReleased}) {
			t.Fatalf("events %v", ev)
		}
	})
}

// TestEscrowMerchantFrozen: a merchant that cannot be paid keeps the money in escrow:
// the payer's RELEASE is told so, the sweeper tries again an hour later, and the
// operator's release is a conflict; nothing moves until the merchant is active again.
func TestEscrowMerchantFrozen(t *testing.T) {
	pgtest.Both(t, func(t *testing.T) {
		h := newEscrowHarness(t)
		ctx := context.Background()
		p := h.paid("150")
		if _, err := h.engine.SetAccountStatus(ctx, AccountStatusChange{Account: h.shop.ID, Status: ledger.Frozen,
			Reason: "audit", Actor: "ops"}); err != nil {
			t.Fatal(err)
		}
		h.sms(alice, "RELEASE "+p.ID)
		if m := h.last(alice); !strings.Contains(m.Text, "cannot receive payments right now") {
			t.Fatalf("RELEASE to a frozen merchant answered %q", m.Text)
		}
		if _, err := h.engine.SettleEscrow(ctx, p.ID, EscrowSettlement{Action: EscrowRelease, Reason: "x"}); !errors.Is(err, ErrConflict) {
			t.Fatalf("operator's release to a frozen merchant: %v, want ErrConflict", err)
		}
		h.clock.Advance(169 * time.Hour)
		next, err := h.engine.ReleaseDue(ctx)
		if err != nil || !next.Equal(h.clock.Now().Add(time.Hour)) {
			t.Fatalf("sweep with the merchant frozen: next %v %v, want in an hour", next, err)
		}
		if got := h.payment(p.ID); got.State != StateInEscrow {
			t.Fatalf("state %s, want in_escrow", got.State)
		}
		h.wantBalances([3]int64{85000, 15000, 0})
	})
}
