package payswitch

import (
	"errors"
	"fmt"
	"time"

	"github.com/payswitch/payswitch/ledger"
)

// EventPaymentRefunded tells a merchant's system that part or all of a payment went back
// to its payer; the data is the payment with its new refunded (and state, once whole).
const EventPaymentRefunded = "payment.refunded"

// maxRefundsPerPayment caps the refunds of one payment, so that a merchant's key cannot
// fill the refunds table (and a payment's list of refunds) with refunds of one minor
// unit each.
const maxRefundsPerPayment = 100

// refundSnapshot is what deciding a refund looks at, as read inside the write.
type refundSnapshot struct {
	Now     time.Time
	Request RefundRequest // checked: a positive amount, a reference, a reason
	// Payment is the payment to refund, nil when there is none.
	Payment *Payment
	// Prev is the refund made earlier under the request's reference for the payment's
	// merchant, or nil.
	Prev *Refund
	// Merchant is the payment's payee account, whose available balance pays the refund
	// (nil when not read: no payment, or a repeat).
	Merchant *ledger.Account
	Refunds  int    // the payment's refunds so far
	NewID    string // the new refund's ID
}

// refundEffect is a refund to write (apply.go's refund block, refund.go): its row, the
// transfer that pays it, and the payment's refunded total it raises from Before.
type refundEffect struct {
	Refund   Refund
	Transfer ledger.TransferRequest
	Before   int64 // the payment's refunded before this refund
}

// refundKey is the ledger's idempotency key of merchant's refund under reference: the
// same key as the refunds table's UNIQUE (merchant, reference).
func refundKey(merchant, reference string) string { return "refund:" + merchant + ":" + reference }

// decideRefund decides a refund of part or all of a completed merchant payment: a new
// transfer from the merchant's account to the payer's (history is never edited), the
// payment's refunded raised, moved to refunded when all of it went back, the payer (and
// the merchant's phone) told with the new balance, and the merchant's system told with
// payment.refunded. The same reference again answers the first refund and changes
// nothing; with another payment or amount it is ErrConflict. It returns the refund that
// answers the request; Decision.Refund is set when it is new.
func (r *rules) decideRefund(s refundSnapshot) (Decision, *Refund) {
	q, p := s.Request, s.Payment
	if p == nil || (q.Merchant != "" && p.PayeeAccount != q.Merchant) {
		// Another merchant's payment is as unknown to a merchant as one that does not exist.
		return Decision{Err: fmt.Errorf("%w: no payment %s", ErrNotFound, q.PaymentID)}, nil
	}
	if prev := s.Prev; prev != nil {
		if prev.PaymentID != p.ID || prev.Amount != q.Amount {
			return Decision{Err: fmt.Errorf("%w: reference %q was used for a refund of %s of payment %s",
				ErrConflict, q.Reference, r.money(prev.Amount), prev.PaymentID)}, nil
		}
		return Decision{Outcome: Outcome{Payment: p}}, prev
	}
	left := p.Amount - p.Refunded
	switch {
	case p.Type != MerchantPayment:
		return Decision{Err: fmt.Errorf("%w: payment %s is a %s; only merchant payments can be refunded",
			ErrNotRefundable, p.ID, p.Type)}, nil
	case p.State == StateRefunded:
		return Decision{Err: fmt.Errorf("%w: all of payment %s (%s) was refunded already",
			ErrRefundTooMuch, p.ID, r.money(p.Amount))}, nil
	case p.State != StateCompleted:
		return Decision{Err: fmt.Errorf("%w: payment %s is %s; only completed payments can be refunded",
			ErrNotRefundable, p.ID, p.State)}, nil
	case q.Amount <= 0:
		return Decision{Err: fmt.Errorf("%w: amount: a positive number of minor units", ErrInvalid)}, nil
	case q.Amount > left:
		return Decision{Err: fmt.Errorf("%w: %s is more than is left to refund of payment %s (%s of %s)",
			ErrRefundTooMuch, r.money(q.Amount), p.ID, r.money(left), r.money(p.Amount))}, nil
	case s.Refunds >= maxRefundsPerPayment:
		return Decision{Err: fmt.Errorf("%w: payment %s has %d refunds, the most one payment can have",
			ErrRefundLimit, p.ID, s.Refunds)}, nil
	case s.Merchant == nil:
		return Decision{Err: fmt.Errorf("%w: merchant account %s", ErrNotFound, p.PayeeAccount)}, nil
	case s.Merchant.Balance.Available < q.Amount:
		return Decision{Err: fmt.Errorf("%w: the merchant has %s available, the refund needs %s; nothing was refunded",
			ErrInsufficientFund, r.money(s.Merchant.Balance.Available), r.money(q.Amount))}, nil
	}

	rf := Refund{ID: s.NewID, PaymentID: p.ID, Merchant: p.PayeeAccount, Amount: q.Amount, Currency: p.Currency,
		Reference: q.Reference, Reason: q.Reason, Actor: q.Actor, CreatedAt: s.Now}
	d := Decision{Payment: p, Outcome: Outcome{Payment: p}, Events: merchantEvent(p, EventPaymentRefunded),
		Refund: &refundEffect{Refund: rf, Before: p.Refunded, Transfer: ledger.TransferRequest{
			Key: refundKey(p.PayeeAccount, q.Reference), Debit: p.PayeeAccount, Credit: p.PayerAccount,
			Amount: q.Amount, PaymentID: p.ID, Kind: KindRefund}}}
	if q.Amount == left {
		d.Move, d.Reason = EvRefundWhole, refundReason(q)
	}
	// The payer, and the merchant's phone, hear of it with their new balances.
	for _, side := range []struct{ msisdn, account, key string }{
		{p.PayerMSISDN, p.PayerAccount, "refund_payer"},
		{p.PayeeMSISDN, p.PayeeAccount, "refund_payee"},
	} {
		for _, m := range r.sms(side.msisdn, "refund", p.ID, "", false) {
			m.Key, m.Vars = side.key, r.vars(p)
			m.Vars["amount"] = r.money(q.Amount) // what this refund gave back, not what was paid
			m.Balance = balanceRef{Account: side.account, Var: "balance"}
			d.Messages = append(d.Messages, m)
		}
	}
	return d, &d.Refund.Refund
}

// eventSubject is the subject that d's events are queued under (EventSink, which queues
// one event per merchant, type and subject): its payment's ID, but for a refund
// "<payment id>/<refund id>", so that each refund of a payment is told.
func (d *Decision) eventSubject() string {
	switch {
	case d.Refund != nil:
		return d.Refund.Refund.PaymentID + "/" + d.Refund.Refund.ID
	case d.Payment != nil:
		return d.Payment.ID
	}
	return ""
}

// refundReason is the history's reason for the refund that made a payment refunded.
func refundReason(q RefundRequest) string {
	if q.Reason != "" {
		return "refunded: " + q.Reason
	}
	return "refunded"
}

// refundRefused is the error for a refund whose transfer the ledger refused with err
// (the snapshot's checks come first; these are the ledger's last word): the merchant
// short of money, an account not active, the reference's key taken.
func (r *rules) refundRefused(q RefundRequest, err error) error {
	switch {
	case errors.Is(err, ledger.ErrInsufficientFunds):
		return fmt.Errorf("%w: the merchant's available balance does not cover the refund; nothing was refunded", ErrInsufficientFund)
	case errors.Is(err, ledger.ErrAccountInactive):
		return fmt.Errorf("%w: %s; nothing was refunded", ErrNotRefundable, err)
	case errors.Is(err, ledger.ErrIdempotencyConflict):
		return fmt.Errorf("%w: reference %q was used for another refund", ErrConflict, q.Reference)
	}
	return err
}
