package payswitch

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/payswitch/payswitch/ledger"
)

// heldPayment is alice's guaranteed payment of KES 150 to Mama Mboga, confirmed an hour
// ago and released by itself in a week, in state.
func heldPayment(state State) *Payment {
	p := waitingPayment()
	p.State, p.Escrow, p.ReleaseAt = state, true, decideNow.Add(167*time.Hour)
	return p
}

// escrowSnap is what a step of p finds: both accounts active, from alice by SMS.
func escrowSnap(p *Payment) escrowSnapshot {
	s := escrowSnapshot{Now: decideNow, Channel: ChannelSMS, From: "254700000001", ReplyTo: "254700000001",
		ID: "PAYAAAAAAA", Payment: p, Escrow: "escrow:KES"}
	if p != nil && held(p) {
		s.Payer = &ledger.Account{ID: p.PayerAccount, Status: ledger.Active}
		s.Payee = &ledger.Account{ID: p.PayeeAccount, Status: ledger.Active}
	}
	return s
}

func TestDecidePayerEscrow(t *testing.T) {
	r := testRules(t)
	frozen := func(s escrowSnapshot) escrowSnapshot {
		s.Payee = &ledger.Account{ID: "ACSHOP", Status: ledger.Frozen}
		return s
	}
	plain := waitingPayment()
	plain.State = StateCompleted
	for _, c := range []struct {
		name     string
		snap     escrowSnapshot
		ev       Event
		problem  Problem
		move     Event
		transfer string // "debit>credit kind"
		events   string
		to       string // the numbers told, in order
		text     string // the answer contains
	}{
		{name: "release", snap: escrowSnap(heldPayment(StateInEscrow)), ev: EvRelease, move: EvRelease,
			transfer: "escrow:KES>ACSHOP escrow_release", events: EventEscrowReleased,
			to: "254700000001 254700000009", text: "KES 150.00 released to Mama Mboga"},
		{name: "release of a disputed one by its payer", snap: escrowSnap(heldPayment(StateDisputed)), ev: EvRelease,
			move: EvRelease, transfer: "escrow:KES>ACSHOP escrow_release", events: EventEscrowReleased,
			to: "254700000001 254700000009"},
		{name: "dispute", snap: escrowSnap(heldPayment(StateInEscrow)), ev: EvDispute, move: EvDispute,
			events: EventEscrowDisputed, to: "254700000001 254700000009", text: "disputed"},
		{name: "another number's", snap: func() escrowSnapshot {
			s := escrowSnap(heldPayment(StateInEscrow))
			s.From, s.ReplyTo = "254700000002", "254700000002"
			return s
		}(), ev: EvRelease, problem: ProblemNoEscrow, to: "254700000002", text: "no payment PAYAAAAAAA held"},
		{name: "no such payment", snap: escrowSnap(nil), ev: EvDispute, problem: ProblemNoEscrow, to: "254700000001"},
		{name: "not a number", snap: func() escrowSnapshot {
			s := escrowSnap(heldPayment(StateInEscrow))
			s.From = ""
			return s
		}(), ev: EvRelease, problem: ProblemNoEscrow, to: "254700000001"},
		{name: "released already", snap: escrowSnap(heldPayment(StateCompleted)), ev: EvRelease,
			problem: ProblemEscrowReleased, to: "254700000001", text: "released to Mama Mboga (55501) already"},
		{name: "refunded already", snap: escrowSnap(heldPayment(StateRefunded)), ev: EvDispute,
			problem: ProblemEscrowRefunded, to: "254700000001"},
		{name: "disputed already", snap: escrowSnap(heldPayment(StateDisputed)), ev: EvDispute,
			problem: ProblemEscrowDisputed, to: "254700000001"},
		{name: "still waiting for its code", snap: escrowSnap(heldPayment(StatePendingOTP)), ev: EvRelease,
			problem: ProblemNotInEscrow, to: "254700000001"},
		{name: "not guaranteed", snap: escrowSnap(plain), ev: EvRelease, problem: ProblemNotInEscrow,
			to: "254700000001", text: "is not held in escrow"},
		{name: "merchant frozen", snap: frozen(escrowSnap(heldPayment(StateInEscrow))), ev: EvRelease,
			problem: ProblemPayeeInactive, to: "254700000001"},
		{name: "dispute with the merchant frozen", snap: frozen(escrowSnap(heldPayment(StateInEscrow))), ev: EvDispute,
			move: EvDispute, events: EventEscrowDisputed, to: "254700000001 254700000009"},
		{name: "by USSD: no SMS answer to a refusal", snap: func() escrowSnapshot {
			s := escrowSnap(nil)
			s.Channel = ChannelUSSD
			return s
		}(), ev: EvRelease, problem: ProblemNoEscrow},
	} {
		t.Run(c.name, func(t *testing.T) {
			d := r.payerEscrow(c.snap, c.ev)
			checkEscrowDecision(t, d, c.problem, c.move, c.transfer, c.events, c.to)
			if !strings.Contains(d.Outcome.Text, c.text) {
				t.Errorf("answer %q, want %q", d.Outcome.Text, c.text)
			}
			if c.problem != ProblemNone && d.Outcome.Payment != nil {
				t.Errorf("a refusal names the payment %s: it must not leak", d.Outcome.Payment.ID)
			}
		})
	}
}

func TestDecideReleaseDue(t *testing.T) {
	r := testRules(t)
	due := func(state State, at time.Duration) escrowSnapshot {
		p := heldPayment(state)
		p.ReleaseAt = decideNow.Add(at)
		return escrowSnap(p)
	}
	frozen := due(StateInEscrow, 0)
	frozen.Payee.Status = ledger.Frozen
	for _, c := range []struct {
		name      string
		snap      escrowSnapshot
		move      Event
		transfer  string
		to        string
		releaseAt time.Time
	}{
		{name: "due", snap: due(StateInEscrow, 0), move: EvRelease, transfer: "escrow:KES>ACSHOP escrow_release",
			to: "254700000001 254700000009"},
		{name: "not yet", snap: due(StateInEscrow, time.Second)},
		{name: "disputed: an operator's", snap: due(StateDisputed, -time.Hour)},
		{name: "released meanwhile", snap: due(StateCompleted, -time.Hour)},
		{name: "merchant frozen: again in an hour", snap: frozen, releaseAt: decideNow.Add(time.Hour)},
	} {
		t.Run(c.name, func(t *testing.T) {
			d := r.releaseDue(c.snap)
			events := ""
			if c.move != "" {
				events = EventEscrowReleased
			}
			checkEscrowDecision(t, d, ProblemNone, c.move, c.transfer, events, c.to)
			if !d.ReleaseAt.Equal(c.releaseAt) {
				t.Errorf("release at %v, want %v", d.ReleaseAt, c.releaseAt)
			}
		})
	}
}

func TestDecideSettleEscrow(t *testing.T) {
	r := testRules(t)
	payerFrozen := escrowSnap(heldPayment(StateDisputed))
	payerFrozen.Payer.Status = ledger.Frozen
	for _, c := range []struct {
		name     string
		snap     escrowSnapshot
		action   EscrowAction
		err      error
		move     Event
		transfer string
		events   string
	}{
		{name: "refund a disputed one", snap: escrowSnap(heldPayment(StateDisputed)), action: EscrowRefund,
			move: EvRefundEscrow, transfer: "escrow:KES>ACPAYER escrow_refund", events: "payment.refunded"},
		{name: "release a disputed one", snap: escrowSnap(heldPayment(StateDisputed)), action: EscrowRelease,
			move: EvRelease, transfer: "escrow:KES>ACSHOP escrow_release", events: EventEscrowReleased},
		{name: "refund one in escrow", snap: escrowSnap(heldPayment(StateInEscrow)), action: EscrowRefund,
			move: EvRefundEscrow, transfer: "escrow:KES>ACPAYER escrow_refund", events: "payment.refunded"},
		{name: "released already", snap: escrowSnap(heldPayment(StateCompleted)), action: EscrowRefund, err: ErrNotInEscrow},
		{name: "not guaranteed", snap: escrowSnap(waitingPayment()), action: EscrowRelease, err: ErrNotInEscrow},
		{name: "none", snap: escrowSnap(nil), action: EscrowRelease, err: ErrNotFound},
		{name: "payer frozen", snap: payerFrozen, action: EscrowRefund, err: ErrConflict},
	} {
		t.Run(c.name, func(t *testing.T) {
			d := r.settleEscrow(c.snap, EscrowSettlement{Action: c.action, Reason: "checked"})
			if !errors.Is(d.Err, c.err) || c.err != nil && (d.Move != "" || d.Transfer != nil) {
				t.Fatalf("err %v move %q, want %v", d.Err, d.Move, c.err)
			}
			if c.err != nil {
				return
			}
			checkEscrowDecision(t, d, ProblemNone, c.move, c.transfer, c.events, "254700000001 254700000009")
			if d.Reason != "settled by an operator: checked" {
				t.Errorf("reason %q", d.Reason)
			}
			// Who settled it is kept with the reason in the payment's history.
			d = r.settleEscrow(c.snap, EscrowSettlement{Action: c.action, Reason: "checked", Actor: "ops-anne"})
			if d.Reason != "settled by operator ops-anne: checked" {
				t.Errorf("reason with an actor %q", d.Reason)
			}
		})
	}
}

func TestDecideIntoEscrow(t *testing.T) {
	r := testRules(t)
	r.cfg.EscrowReleaseAfter = 48 * time.Hour
	p := waitingPayment()
	p.Escrow = true
	d := r.intoEscrow(r.complete(p, ChannelSMS, nil), decideNow)
	if d.Move != EvConfirmEscrow || !d.Post || len(d.Events) != 0 || !d.ReleaseAt.Equal(decideNow.Add(48*time.Hour)) {
		t.Fatalf("move %q post %v events %v release %v", d.Move, d.Post, d.Events, d.ReleaseAt)
	}
	if len(d.Messages) != 2 || d.Messages[0].Key != "receipt_escrow" || !d.Messages[0].Answer ||
		!strings.Contains(d.Messages[1].Text, "until 23/11/2026 09:00 UTC") {
		t.Fatalf("messages %+v", d.Messages)
	}
	plain := waitingPayment()
	if d := r.intoEscrow(r.complete(plain, ChannelSMS, nil), decideNow); d.Move != EvConfirm || len(d.Events) != 1 {
		t.Fatalf("a plain payment: move %q events %v, want it completed as ever", d.Move, d.Events)
	}
	// A request whose funds fail is not confirmed: nothing to put in escrow.
	req := waitingRequest()
	req.Escrow = true
	f := funds(100)
	f.Escrow = "escrow:KES"
	if d := r.completeRequest(req, ChannelSMS, nil, *f, decideNow); d.Move != EvFail || d.Transfer != nil {
		t.Fatalf("a request without the funds: move %q", d.Move)
	}
	f = funds(100000)
	f.Escrow = "escrow:KES"
	d = r.completeRequest(req, ChannelSMS, nil, *f, decideNow)
	if d.Move != EvConfirmEscrow || d.Transfer == nil || d.Transfer.Credit != "escrow:KES" || d.Transfer.Debit != "ACPAYER" {
		t.Fatalf("a guaranteed request: move %q transfer %+v", d.Move, d.Transfer)
	}
}

// checkEscrowDecision checks d's refusal, move, transfer ("debit>credit kind"), events
// and the numbers its messages go to (space-separated, in order).
func checkEscrowDecision(t *testing.T, d Decision, problem Problem, move Event, transfer, events, to string) {
	t.Helper()
	if d.Outcome.Problem != problem || d.Move != move {
		t.Errorf("problem %q move %q, want %q %q", d.Outcome.Problem, d.Move, problem, move)
	}
	got := ""
	if tr := d.Transfer; tr != nil {
		got = tr.Debit + ">" + tr.Credit + " " + tr.Kind
		if tr.Key != tr.PaymentID+":"+tr.Kind || tr.Amount != d.Payment.Amount {
			t.Errorf("transfer key %q amount %d: want the payment's ID and step, its whole amount", tr.Key, tr.Amount)
		}
	}
	if got != transfer {
		t.Errorf("transfer %q, want %q", got, transfer)
	}
	if e := strings.Join(d.Events, " "); e != events {
		t.Errorf("events %q, want %q", e, events)
	}
	var numbers []string
	for _, m := range d.Messages {
		numbers = append(numbers, m.To)
	}
	if n := strings.Join(numbers, " "); n != to {
		t.Errorf("messages to %q, want %q", n, to)
	}
}
