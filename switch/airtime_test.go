package payswitch_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/payswitch/payswitch/internal/pgtest"
	"github.com/payswitch/payswitch/ledger"

	. "github.com/payswitch/payswitch/switch"
)

// fakeCarrier answers top-ups from a script and counts what it was asked.
type fakeCarrier struct {
	mu       sync.Mutex // guards the fields below
	answers  []AirtimeOutcome
	credits  int
	resolves int
	reason   string
}

var _ Airtime = (*fakeCarrier)(nil)

func (f *fakeCarrier) Carrier(msisdn string) (string, bool) {
	return "carrier-a", strings.HasPrefix(msisdn, "2547")
}

func (f *fakeCarrier) next() AirtimeResult {
	out := AirtimeUnknown
	if len(f.answers) > 0 {
		out, f.answers = f.answers[0], f.answers[1:]
	}
	return AirtimeResult{Outcome: out, Reason: f.reason, CarrierReference: "CR-1"}
}

func (f *fakeCarrier) Credit(ctx context.Context, carrier string, r AirtimeRequest) AirtimeResult {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.credits++
	return f.next()
}

func (f *fakeCarrier) Resolve(ctx context.Context, carrier string, r AirtimeRequest) AirtimeResult {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.resolves++
	return f.next()
}

func newAirtimeHarness(t *testing.T, answers ...AirtimeOutcome) (*harness, *fakeCarrier) {
	h := newHarness(t)
	fc := &fakeCarrier{answers: answers, reason: "number barred"}
	h.airtime = fc
	h.restart()
	return h, fc
}

func (h *harness) resolve() {
	h.t.Helper()
	if err := h.engine.ResolveAirtime(context.Background()); err != nil {
		h.t.Fatal(err)
	}
}

func (h *harness) state(id string) State {
	h.t.Helper()
	p, err := h.engine.Payment(context.Background(), id)
	if err != nil {
		h.t.Fatal(err)
	}
	return p.State
}

func TestTopupBySMSSucceeds(t *testing.T) {
	pgtest.Both(t, func(t *testing.T) {
		h, fc := newAirtimeHarness(t, AirtimeSuccess)
		w := h.wallet(alice, 100000)
		h.sms(alice, "TOPUP 50 0700000002")
		if txt := h.last(alice).Text; !strings.Contains(txt, "airtime for 2547****002") || !strings.Contains(txt, "KES 50.00") {
			t.Fatalf("code SMS = %q", txt)
		}
		p := h.pendingOf(alice)
		h.sms(alice, h.code(alice))
		if got := h.state(p.ID); got != StateTopupPending {
			t.Fatalf("after code: %s", got)
		}
		if txt, want := h.last(alice).Text, p.ID+" confirmed. KES 50.00 of airtime for 2547****002 is being sent."; !strings.HasPrefix(txt, want) {
			t.Fatalf("receipt = %q, want it to start %q", txt, want)
		}
		if b := h.balance(w.ID); b.Posted != 95000 {
			t.Fatalf("payer not debited: %+v", b)
		}
		h.resolve()
		if got := h.state(p.ID); got != StateCompleted || fc.credits != 1 {
			t.Fatalf("state %s, credits %d", got, fc.credits)
		}
		if txt := h.last(bob).Text; !strings.Contains(txt, "credited") {
			t.Fatalf("recipient SMS = %q", txt)
		}
		clearing, err := h.ledger.Account(context.Background(), "airtime_clearing:carrier-a")
		if err != nil || clearing.Balance.Posted != 5000 {
			t.Fatalf("clearing = %+v %v", clearing, err)
		}
		h.assertBalanced()
	})
}

func TestTopupDefiniteFailureReturnsTheMoney(t *testing.T) {
	pgtest.Both(t, func(t *testing.T) {
		h, _ := newAirtimeHarness(t, AirtimeFailed)
		w := h.wallet(alice, 100000)
		h.sms(alice, "TOPUP 50")
		p := h.pendingOf(alice)
		h.sms(alice, h.code(alice))
		h.resolve()
		if got := h.state(p.ID); got != StateReversed {
			t.Fatalf("state %s", got)
		}
		if b := h.balance(w.ID); b.Posted != 100000 {
			t.Fatalf("money not returned: %+v", b)
		}
		if txt := h.last(alice).Text; !strings.Contains(txt, "number barred") || !strings.Contains(txt, "KES 1,000.00") {
			t.Fatalf("failure SMS = %q", txt)
		}
		h.assertBalanced()
	})
}

func TestTopupUnknownIsAskedAgainAndCreditedOnce(t *testing.T) {
	pgtest.Both(t, func(t *testing.T) {
		h, fc := newAirtimeHarness(t, AirtimeUnknown, AirtimeUnknown, AirtimeSuccess)
		h.wallet(alice, 100000)
		h.sms(alice, "TOPUP 50")
		p := h.pendingOf(alice)
		h.sms(alice, h.code(alice))
		h.resolve()
		h.resolve() // not due yet: no call
		if fc.credits+fc.resolves != 1 {
			t.Fatalf("asked %d times before the backoff passed", fc.credits+fc.resolves)
		}
		h.restart() // a restart keeps the top-up pending and the resolver finds it again
		h.clock.Advance(3 * time.Second)
		h.resolve()
		h.clock.Advance(5 * time.Second)
		h.resolve()
		if got := h.state(p.ID); got != StateCompleted {
			t.Fatalf("state %s", got)
		}
		if fc.credits != 1 || fc.resolves != 2 {
			t.Fatalf("credits %d resolves %d; want 1 and 2", fc.credits, fc.resolves)
		}
	})
}

func TestTopupWithoutCarrierIsRefused(t *testing.T) {
	pgtest.Both(t, func(t *testing.T) {
		h, _ := newAirtimeHarness(t)
		w := h.wallet(alice, 100000)
		h.sms(alice, "TOPUP 50 0800000001")
		if txt := h.last(alice).Text; !strings.Contains(txt, "not available") {
			t.Fatalf("reply = %q", txt)
		}
		if h.balance(w.ID).Held != 0 {
			t.Fatal("held")
		}
	})
}

func TestOperatorTopupIsIdempotent(t *testing.T) {
	pgtest.Both(t, func(t *testing.T) {
		h, fc := newAirtimeHarness(t, AirtimeSuccess)
		ctx := context.Background()
		agent, err := h.engine.OpenAccount(ctx, OpenAccount{Type: ledger.Agent, Name: "Agent", MSISDN: "254700000500"})
		if err != nil {
			t.Fatal(err)
		}
		h.engine.Deposit(ctx, Deposit{Account: agent.ID, Amount: 10000, Reference: "FLOAT-1"})
		req := OperatorTopup{From: agent.ID, MSISDN: "0700000001", Amount: 2000, Reference: "TU-1"}
		p1, err := h.engine.OperatorTopup(ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		p2, err := h.engine.OperatorTopup(ctx, req)
		if err != nil || p2.ID != p1.ID {
			t.Fatalf("replay: %+v %v", p2, err)
		}
		h.resolve()
		if got := h.state(p1.ID); got != StateCompleted || fc.credits != 1 {
			t.Fatalf("state %s credits %d", got, fc.credits)
		}
		if b := h.balance(agent.ID); b.Posted != 8000 {
			t.Fatalf("float = %+v", b)
		}
		req.Amount = 3000
		if _, err := h.engine.OperatorTopup(ctx, req); !errors.Is(err, ErrConflict) {
			t.Fatalf("changed replay: %v", err)
		}
		if _, err := h.engine.OperatorTopup(ctx, OperatorTopup{From: agent.ID, MSISDN: alice, Amount: 900000, Reference: "TU-2"}); !errors.Is(err, ErrInsufficientFund) {
			t.Fatalf("overdraw: %v", err)
		}
	})
}

func TestReverseMerchantPayment(t *testing.T) {
	pgtest.Both(t, func(t *testing.T) {
		h := newHarness(t)
		ctx := context.Background()
		w := h.wallet(alice, 100000)
		m := h.merchant("55501", mama)
		h.sms(alice, "PAY 55501 150")
		p := h.pendingOf(alice)
		h.sms(alice, h.code(alice))

		if _, err := h.engine.Reverse(ctx, p.ID, Reversal{Reason: "wrong till", Reference: "REV-1", Amount: 20000}); !errors.Is(err, ErrInvalid) {
			t.Fatalf("more than paid: %v", err)
		}
		got, err := h.engine.Reverse(ctx, p.ID, Reversal{Reason: "wrong till", Reference: "REV-1"})
		if err != nil || got.State != StateReversed {
			t.Fatalf("reverse: %+v %v", got, err)
		}
		if h.balance(w.ID).Posted != 100000 || h.balance(m.ID).Posted != 0 {
			t.Fatal("balances not restored")
		}
		if !strings.Contains(h.last(alice).Text, "reversed") || !strings.Contains(h.last(mama).Text, "reversed") {
			t.Fatalf("SMS: %q / %q", h.last(alice).Text, h.last(mama).Text)
		}
		again, err := h.engine.Reverse(ctx, p.ID, Reversal{Reason: "wrong till", Reference: "REV-1"})
		if err != nil || again.State != StateReversed || h.balance(w.ID).Posted != 100000 {
			t.Fatalf("replay: %+v %v", again, err)
		}
		if _, err := h.engine.Reverse(ctx, p.ID, Reversal{Reason: "again", Reference: "REV-2"}); !errors.Is(err, ErrConflict) {
			t.Fatalf("second reversal: %v", err)
		}
		h.assertBalanced()
	})
}

func TestReverseRefusedWhenPayeeSpentTheMoney(t *testing.T) {
	pgtest.Both(t, func(t *testing.T) {
		h := newHarness(t)
		ctx := context.Background()
		h.wallet(alice, 100000)
		b := h.wallet(bob, 0)
		h.merchant("55501", mama)
		h.sms(alice, "SEND 0700000002 500")
		p := h.pendingOf(alice)
		h.sms(alice, h.code(alice))
		h.sms(bob, "PAY 55501 400")
		h.sms(bob, h.code(bob))
		_, err := h.engine.Reverse(ctx, p.ID, Reversal{Reason: "dispute", Reference: "REV-9"})
		if !errors.Is(err, ErrInsufficientFund) || !strings.Contains(err.Error(), "spent") {
			t.Fatalf("reverse spent money: %v", err)
		}
		if h.balance(b.ID).Posted != 10000 || h.state(p.ID) != StateCompleted {
			t.Fatal("refused reversal changed something")
		}
		h.sms(alice, "PAY 55501 1")
		pending := h.pendingOf(alice)
		if _, err := h.engine.Reverse(ctx, pending.ID, Reversal{Reason: "x", Reference: "REV-10"}); !errors.Is(err, ErrConflict) {
			t.Fatalf("reverse pending: %v", err)
		}
	})
}

// TestReverseRefusedForDeliveredAirtime: airtime the carrier confirmed stays on the
// phone, so its reversal is refused and moves nothing, for a payer's top-up and an
// operator's alike; a payment refunded that way would pay the payer twice.
func TestReverseRefusedForDeliveredAirtime(t *testing.T) {
	pgtest.Both(t, func(t *testing.T) {
		h, _ := newAirtimeHarness(t, AirtimeSuccess, AirtimeSuccess)
		ctx := context.Background()
		w := h.wallet(alice, 100000)
		h.sms(alice, "TOPUP 50")
		p := h.pendingOf(alice)
		h.sms(alice, h.code(alice))
		agent, err := h.engine.OpenAccount(ctx, OpenAccount{Type: ledger.Agent, Name: "Agent", MSISDN: "254700000500"})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := h.engine.Deposit(ctx, Deposit{Account: agent.ID, Amount: 100000, Reference: "float"}); err != nil {
			t.Fatal(err)
		}
		op, err := h.engine.OperatorTopup(ctx, OperatorTopup{From: agent.ID, MSISDN: bob, Amount: 2000, Reference: "OPT-1"})
		if err != nil {
			t.Fatal(err)
		}
		h.resolve()
		for _, id := range []string{p.ID, op.ID} {
			if got := h.state(id); got != StateCompleted {
				t.Fatalf("%s: %s", id, got)
			}
			_, err := h.engine.Reverse(ctx, id, Reversal{Reason: "customer complaint", Reference: "REV-" + id})
			if !errors.Is(err, ErrAirtimeDelivered) || !strings.Contains(err.Error(), "AIRTIME-REFUND-"+id) {
				t.Fatalf("reverse delivered airtime %s: %v", id, err)
			}
			if got := h.state(id); got != StateCompleted {
				t.Fatalf("refused reversal moved %s to %s", id, got)
			}
		}
		if b := h.balance(w.ID); b.Posted != 95000 {
			t.Fatalf("payer after refused reversal: %+v", b)
		}
		if b := h.balance(agent.ID); b.Posted != 98000 {
			t.Fatalf("agent after refused reversal: %+v", b)
		}
		h.assertBalanced()
	})
}
