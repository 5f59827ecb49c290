package payswitch

import (
	"errors"
	"fmt"
	"time"

	"github.com/payswitch/payswitch/ledger"
)

// topupOutcome decides what a carrier's answer res does to the top-up p, as read inside
// the write: a credit completes it and tells both numbers; a definite failure returns
// the money from the carrier's clearing account with a reversal transfer and tells the
// payer why; no definite answer asks again later, with backoff. A payment that another
// pass settled meanwhile is left alone.
func (r *rules) topupOutcome(p *Payment, res AirtimeResult, now time.Time) Decision {
	if p.State != StateTopupPending {
		return Decision{}
	}
	switch res.Outcome {
	case AirtimeSuccess:
		text := r.texts.Render("topup_done", r.vars(p))
		d := Decision{Payment: p, Move: EvTopupSucceeded, CarrierRef: res.CarrierReference,
			Messages: r.sms(p.PayerMSISDN, "notice", p.ID, text, false)}
		if p.TargetMSISDN != p.PayerMSISDN {
			d.Messages = append(d.Messages, r.sms(p.TargetMSISDN, "notice", p.ID, text, false)...)
		}
		return d
	case AirtimeFailed:
		reason := res.Reason
		if reason == "" {
			reason = "refused by the carrier"
		}
		d := Decision{Payment: p, Reverse: true, ReverseKey: p.ID + ":topup-failed", Move: EvTopupFailed, Reason: reason}
		// An operator's top-up has no payer number: the float is back, the operator sees
		// the state.
		d.Messages = r.sms(p.PayerMSISDN, "reversal", p.ID, "", false)
		for i := range d.Messages {
			d.Messages[i].Key, d.Messages[i].Vars = "topup_failed", r.vars(p)
			d.Messages[i].Vars["reason"] = reason
			d.Messages[i].Balance = balanceRef{Account: p.PayerAccount, Var: "balance"}
		}
		return d
	}
	return Decision{Payment: p, RetryAt: now.Add(airtimeBackoff(p.Attempts + 1)), Reason: res.Reason}
}

// reverseSnapshot is what deciding an operator's reversal of a payment looks at.
type reverseSnapshot struct {
	Payment   *Payment // as read inside the write
	Reference string   // the operator's idempotency reference, checked
	Reason    string   // checked
	Amount    int64    // 0, or what the operator says was paid
}

// reverse decides an operator's reversal: a new, opposite ledger transfer (history is
// never edited), the payment moved to reversed and both parties told. The same reference
// again changes nothing; a payment that is not completed, airtime the carrier delivered
// and an amount other than what was paid are refused. (The ledger refuses a payee who has
// spent the money: reversalRefused.)
func (r *rules) reverse(s reverseSnapshot) Decision {
	p := s.Payment
	switch {
	case p.State == StateReversed && p.ReversalRef == s.Reference:
		return Decision{Outcome: Outcome{Payment: p}} // the same request again: already done
	case p.State != StateCompleted:
		return Decision{Err: fmt.Errorf("%w: payment %s is %s; only completed payments can be reversed", ErrConflict, p.ID, p.State)}
	case p.Escrow:
		// Its money went payer → escrow → merchant: no one transfer undoes it.
		return Decision{Err: fmt.Errorf("%w: payment %s was guaranteed (escrow); refund it instead of reversing it",
			ErrConflict, p.ID)}
	case p.Type == AirtimePayment:
		// Completed airtime is airtime the carrier confirmed. The clearing account may go
		// negative, so no funds check would stop the reversal, and the payer would keep
		// the airtime and get the money back.
		return Decision{Err: airtimeDelivered(p)}
	case p.Refunded > 0:
		// The ledger reverses a transfer whole: after a refund that would give the payer
		// more than was paid. What is left goes back as a refund instead.
		return Decision{Err: fmt.Errorf("%w: %s of payment %s was refunded already; refund what is left (%s) instead of reversing it",
			ErrConflict, r.money(p.Refunded), p.ID, r.money(p.Amount-p.Refunded))}
	case s.Amount != 0 && s.Amount > p.Amount:
		return Decision{Err: fmt.Errorf("%w: amount %s is more than was paid (%s)", ErrInvalid, r.money(s.Amount), r.money(p.Amount))}
	case s.Amount != 0 && s.Amount != p.Amount:
		return Decision{Err: fmt.Errorf("%w: a reversal returns the whole amount paid (%s)", ErrInvalid, r.money(p.Amount))}
	}
	d := Decision{Payment: p, Reverse: true, ReverseKey: "reversal:" + s.Reference, ReversalRef: s.Reference,
		Move: EvReverse, Reason: s.Reason, Outcome: Outcome{Payment: p}, Events: merchantEvent(p, EventPaymentReversed)}
	// Each party with a phone number hears the news with its new balance.
	for _, side := range []struct{ msisdn, account, key string }{
		{p.PayerMSISDN, p.PayerAccount, withFee("reversal_payer", p)}, // the fee comes back too
		{p.PayeeMSISDN, p.PayeeAccount, "reversal_payee"},
	} {
		for _, m := range r.sms(side.msisdn, "reversal", p.ID, "", false) {
			m.Key, m.Vars = side.key, r.vars(p)
			if p.PayerMSISDN == "" {
				m.Vars["payer"] = "the payer"
			}
			m.Balance = balanceRef{Account: side.account, Var: "balance"}
			d.Messages = append(d.Messages, m)
		}
	}
	return d
}

// reversalRefused is the operator's error for a reversal of p under reference ref that
// the store refused with err; payeeAvailable is what the payee has available.
func (r *rules) reversalRefused(p *Payment, ref string, err error, payeeAvailable int64) error {
	switch {
	case errors.Is(err, ledger.ErrInsufficientFunds):
		return fmt.Errorf("%w: the payee has spent the money (%s available of %s)", ErrInsufficientFund,
			r.money(payeeAvailable), r.money(p.Amount))
	case errors.Is(err, ledger.ErrIdempotencyConflict) || errors.Is(err, ledger.ErrAlreadyReversed) ||
		errors.Is(err, errReversalRefTaken):
		return fmt.Errorf("%w: reference %q was used for another reversal", ErrConflict, ref)
	}
	return err
}
