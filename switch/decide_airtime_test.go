package payswitch

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/payswitch/payswitch/ledger"
)

// topupPending is alice's confirmed top-up of KES 50 for bob's number.
func topupPending() *Payment {
	return &Payment{ID: "PAYDDDDDDD", Type: AirtimePayment, Channel: ChannelSMS, State: StateTopupPending,
		PayerMSISDN: "254700000001", PayerAccount: "ACPAYER", PayeeAccount: "airtime_clearing:tel", PayeeName: "tel",
		TargetMSISDN: "254700000002", Carrier: "tel", Amount: 5000, Currency: "KES", TransferID: "TR1", Attempts: 2}
}

func TestDecideTopupOutcome(t *testing.T) {
	r := testRules(t)
	operators := topupPending()
	operators.PayerMSISDN = ""
	self := topupPending()
	self.TargetMSISDN = self.PayerMSISDN
	settled := topupPending()
	settled.State = StateCompleted
	for _, tc := range []struct {
		name     string
		p        *Payment
		res      AirtimeResult
		move     Event
		reverse  bool
		messages string
		retry    time.Duration
		reason   string
	}{
		{"credited: payer and recipient told", topupPending(), AirtimeResult{Outcome: AirtimeSuccess, CarrierReference: "C1"},
			EvTopupSucceeded, false, "notice,notice", 0, ""},
		{"credited to the payer's own number: told once", self, AirtimeResult{Outcome: AirtimeSuccess},
			EvTopupSucceeded, false, "notice", 0, ""},
		{"failed: money back, payer told why", topupPending(), AirtimeResult{Outcome: AirtimeFailed, Reason: "barred"},
			EvTopupFailed, true, "reversal", 0, "barred"},
		{"failed without a reason", topupPending(), AirtimeResult{Outcome: AirtimeFailed},
			EvTopupFailed, true, "reversal", 0, "refused by the carrier"},
		{"an operator's top-up failed: nobody to tell", operators, AirtimeResult{Outcome: AirtimeFailed},
			EvTopupFailed, true, "", 0, "refused by the carrier"},
		{"no definite answer: ask again with backoff", topupPending(), AirtimeResult{Outcome: AirtimeUnknown, Reason: "timeout"},
			"", false, "", 8 * time.Second, "timeout"},
		{"settled by another pass", settled, AirtimeResult{Outcome: AirtimeFailed}, "", false, "", 0, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := r.topupOutcome(tc.p, tc.res, decideNow)
			var retry time.Duration
			if !d.RetryAt.IsZero() {
				retry = d.RetryAt.Sub(decideNow)
			}
			if d.Move != tc.move || d.Reverse != tc.reverse || purposes(d.Messages) != tc.messages || retry != tc.retry ||
				d.Reason != tc.reason {
				t.Fatalf("move %q reverse %v messages %s retry %v reason %q", d.Move, d.Reverse, purposes(d.Messages),
					retry, d.Reason)
			}
			if tc.reverse && d.ReverseKey != tc.p.ID+":topup-failed" {
				t.Fatalf("reversal key %q", d.ReverseKey)
			}
			if tc.messages == "reversal" && (d.Messages[0].Vars["reason"] != tc.reason || d.Messages[0].Balance.Var == "") {
				t.Fatalf("message %+v", d.Messages[0])
			}
		})
	}
}

func TestDecideReverse(t *testing.T) {
	r := testRules(t)
	completed := func() *Payment {
		p := waitingPayment()
		p.State, p.TransferID = StateCompleted, "TR1"
		return p
	}
	again := completed()
	again.State, again.ReversalRef = StateReversed, "REV-1"
	airtime := topupPending()
	airtime.State = StateCompleted
	for _, tc := range []struct {
		name     string
		s        reverseSnapshot
		err      error
		messages string
	}{
		{"reverses and tells both sides", reverseSnapshot{Payment: completed(), Reference: "REV-1", Reason: "dispute"}, nil,
			"reversal,reversal"},
		{"the whole amount, named", reverseSnapshot{Payment: completed(), Reference: "REV-1", Amount: 15000}, nil, "reversal,reversal"},
		{"the same reference again changes nothing", reverseSnapshot{Payment: again, Reference: "REV-1"}, nil, ""},
		{"another reference on a reversed payment", reverseSnapshot{Payment: again, Reference: "REV-2"}, ErrConflict, ""},
		{"a waiting payment", reverseSnapshot{Payment: waitingPayment(), Reference: "REV-1"}, ErrConflict, ""},
		{"delivered airtime", reverseSnapshot{Payment: airtime, Reference: "REV-1"}, ErrAirtimeDelivered, ""},
		{"more than was paid", reverseSnapshot{Payment: completed(), Reference: "REV-1", Amount: 15001}, ErrInvalid, ""},
		{"part of what was paid", reverseSnapshot{Payment: completed(), Reference: "REV-1", Amount: 100}, ErrInvalid, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := r.reverse(tc.s)
			if !errors.Is(d.Err, tc.err) || (tc.err == nil) != (d.Err == nil) || purposes(d.Messages) != tc.messages {
				t.Fatalf("err %v, messages %s", d.Err, purposes(d.Messages))
			}
			if tc.messages != "" && (!d.Reverse || d.ReverseKey != "reversal:"+tc.s.Reference || d.ReversalRef != tc.s.Reference ||
				d.Move != EvReverse) {
				t.Fatalf("%+v", d)
			}
		})
	}
}

func TestReversalRefused(t *testing.T) {
	r := testRules(t)
	p := waitingPayment()
	for _, tc := range []struct {
		err  error
		want error
		text string
	}{
		{ledger.ErrInsufficientFunds, ErrInsufficientFund, "KES 20.00 available of KES 150.00"},
		{ledger.ErrIdempotencyConflict, ErrConflict, `reference "REV-1"`},
		{ledger.ErrAlreadyReversed, ErrConflict, `reference "REV-1"`},
		{fmt.Errorf("record reversal: %w", errReversalRefTaken), ErrConflict, `reference "REV-1"`},
	} {
		got := r.reversalRefused(p, "REV-1", tc.err, 2000)
		if !errors.Is(got, tc.want) || !strings.Contains(got.Error(), tc.text) {
			t.Errorf("%v: %v", tc.err, got)
		}
	}
}
