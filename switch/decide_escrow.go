package payswitch

import (
	"fmt"
	"time"

	"github.com/payswitch/payswitch/ledger"
)

// Guaranteed payments (contract section 11). A merchant payment made with Escrow (its
// merchant has escrow on, or the request to pay asked for it) is posted on its right
// code to the escrow account instead of the merchant's: a payment of the payer's own
// holds its amount for escrow from the start (its hold's credit is the escrow account),
// a request to pay moves it there with one transfer. It waits in_escrow until the payer
// texts RELEASE <id> (escrow → merchant, completed) or DISPUTE <id> (disputed, nothing
// moves), or until ReleaseAt, when the sweeper releases it. An operator settles a
// dispute, or any payment still in escrow, by releasing it or refunding it (escrow →
// payer, refunded). Each step is one transfer under a key made of the payment's ID and
// the step, so that it happens once whatever is retried; each tells the payer and the
// merchant by SMS and the merchant's system by an event, in the step's transaction.

// The refusals of RELEASE and DISPUTE, each answered with its own text.
const (
	ProblemUsageEscrow    Problem = "usage_escrow"            // no payment ID, or not one
	ProblemNoEscrow       Problem = "escrow_unknown"          // no such payment of the sender's
	ProblemNotInEscrow    Problem = "not_in_escrow"           // the sender's, but not held in escrow
	ProblemEscrowReleased Problem = "escrow_already_released" // released already
	ProblemEscrowRefunded Problem = "escrow_already_refunded" // refunded already
	ProblemEscrowDisputed Problem = "escrow_already_disputed" // DISPUTE of a disputed payment
)

// The events merchants' systems hear of guaranteed payments (webhook.Types); a refund
// from escrow is a payment.refunded.
const (
	EventEscrowReleased = "escrow.released"
	EventEscrowDisputed = "escrow.disputed"
	eventEscrowRefunded = "payment.refunded"
)

// The ledger keys of escrow's steps: the payment's ID and the step, one transfer each.
func escrowReleaseKey(id string) string { return id + ":escrow_release" }
func escrowRefundKey(id string) string  { return id + ":escrow_refund" }

// EscrowAction is what an operator does with a payment in escrow.
type EscrowAction string

// The operator's actions on a payment in escrow (POST /api/v1/payments/{id}/escrow).
const (
	EscrowRelease EscrowAction = "release" // pay the merchant: completed
	EscrowRefund  EscrowAction = "refund"  // give it back to the payer: refunded
)

// EscrowSettlement is an operator's settling of a payment in escrow (usually disputed).
type EscrowSettlement struct {
	Action EscrowAction
	Reason string // why, for the payment's history: 1 to 200 printable characters
	Actor  string // who: the operator's token name, kept with the reason in the payment's history
}

// escrowSnapshot is what deciding a step of a guaranteed payment looks at, as read inside
// the write.
type escrowSnapshot struct {
	Now     time.Time
	Channel Channel
	From    string   // the payer's number that texted (international form); "" for none
	ReplyTo string   // where an SMS answer goes
	ID      string   // the payment ID as asked for
	Payment *Payment // the payment asked for, with its items; nil when there is none
	// For a payment in escrow or disputed: the escrow account, and the accounts on both
	// sides (whether the ledger would let the money move).
	Escrow       string
	Payer, Payee *ledger.Account
}

// held reports whether p's money is in escrow: in_escrow or disputed.
func held(p *Payment) bool { return p.State == StateInEscrow || p.State == StateDisputed }

// payerEscrow decides the payer's RELEASE (ev EvRelease) or DISPUTE (EvDispute). A
// payment that is not the sender's is answered exactly as one that does not exist. A
// disputed payment may still be released by its payer: the dispute was the payer's own.
func (r *rules) payerEscrow(s escrowSnapshot, ev Event) Decision {
	p := s.Payment
	refuse := func(problem Problem) Decision {
		vars := map[string]string{"id": s.ID}
		if problem != ProblemNoEscrow {
			vars = r.vars(p)
		}
		return r.replyIfSMS(Decision{Outcome: r.refuse(problem, nil, vars)}, s.Channel, s.ReplyTo)
	}
	switch {
	case p == nil || s.From == "" || p.PayerMSISDN != s.From:
		return refuse(ProblemNoEscrow)
	case p.Escrow && p.State == StateCompleted:
		return refuse(ProblemEscrowReleased)
	case p.Escrow && p.State == StateRefunded:
		return refuse(ProblemEscrowRefunded)
	case !p.Escrow || !held(p):
		return refuse(ProblemNotInEscrow)
	case ev == EvDispute && p.State == StateDisputed:
		return refuse(ProblemEscrowDisputed)
	case ev == EvDispute:
		return r.dispute(s)
	case s.Payee == nil || s.Payee.Status != ledger.Active:
		return refuse(ProblemPayeeInactive) // it stays held: the payer may release it later
	}
	return r.release(s, "released by the payer", "escrow_released_payer")
}

// dispute moves p to disputed: nothing moves, both sides hear it, and the merchant's
// system hears escrow.disputed.
func (r *rules) dispute(s escrowSnapshot) Decision {
	p := s.Payment
	v := r.escrowVars(p)
	text := r.texts.Render("escrow_disputed_payer", v)
	d := Decision{Payment: p, Move: EvDispute, Reason: "disputed by the payer",
		Events:   merchantEvent(p, EventEscrowDisputed),
		Messages: r.sms(p.PayerMSISDN, "escrow", p.ID, text, false),
		Outcome:  Outcome{Payment: p, Text: text}}
	d.Messages = append(d.Messages, r.sms(p.PayeeMSISDN, "escrow", p.ID, r.texts.Render("escrow_disputed_payee", v), false)...)
	return d
}

// release pays p's money from escrow to its merchant (completed): one transfer of kind
// escrow_release, the payer told with payerKey, the merchant with its new balance, and
// the merchant's system escrow.released.
func (r *rules) release(s escrowSnapshot, reason, payerKey string) Decision {
	p := s.Payment
	v := r.escrowVars(p)
	text := r.texts.Render(payerKey, v)
	d := Decision{Payment: p, Move: EvRelease, Reason: reason,
		Transfer: &ledger.TransferRequest{Key: escrowReleaseKey(p.ID), Debit: s.Escrow, Credit: p.PayeeAccount,
			Amount: p.Amount, PaymentID: p.ID, Kind: KindEscrowRelease},
		Events:   merchantEvent(p, EventEscrowReleased),
		Messages: r.sms(p.PayerMSISDN, "escrow", p.ID, text, false),
		Outcome:  Outcome{Payment: p, Text: text}}
	for _, m := range r.sms(p.PayeeMSISDN, "escrow", p.ID, "", false) {
		d.Messages = append(d.Messages, withBalance(m, "escrow_released_payee", v, p.PayeeAccount, false))
	}
	return d
}

// refundEscrow gives p's money back from escrow to its payer (refunded): one transfer of
// kind escrow_refund, the payer told with the new balance, the merchant told, and the
// merchant's system payment.refunded.
func (r *rules) refundEscrow(s escrowSnapshot, reason string) Decision {
	p := s.Payment
	v := r.escrowVars(p)
	d := Decision{Payment: p, Move: EvRefundEscrow, Reason: reason,
		Transfer: &ledger.TransferRequest{Key: escrowRefundKey(p.ID), Debit: s.Escrow, Credit: p.PayerAccount,
			Amount: p.Amount, PaymentID: p.ID, Kind: KindEscrowRefund},
		Events:  merchantEvent(p, eventEscrowRefunded),
		Outcome: Outcome{Payment: p}}
	for _, m := range r.sms(p.PayerMSISDN, "escrow", p.ID, "", false) {
		d.Messages = append(d.Messages, withBalance(m, "escrow_refunded_payer", v, p.PayerAccount, false))
	}
	d.Messages = append(d.Messages, r.sms(p.PayeeMSISDN, "escrow", p.ID, r.texts.Render("escrow_refunded_payee", v), false)...)
	return d
}

// releaseDue decides the sweeper's release of p, whose release date has passed: released
// to the merchant as if its payer had texted RELEASE. One that is no longer in escrow, or
// not due (its state changed since the sweeper read it), is left alone. One whose
// merchant cannot be paid now (frozen) stays in escrow and is tried again
// escrowRetryAfter later.
func (r *rules) releaseDue(s escrowSnapshot) Decision {
	p := s.Payment
	if p == nil || !p.Escrow || p.State != StateInEscrow || s.Now.Before(p.ReleaseAt) {
		return Decision{}
	}
	if s.Payee == nil || s.Payee.Status != ledger.Active {
		return Decision{Payment: p, ReleaseAt: s.Now.Add(escrowRetryAfter)}
	}
	return r.release(s, "released: its release date passed", "escrow_released_payer_due")
}

// escrowRetryAfter is how long a release the ledger cannot make now (the merchant's
// account is frozen) waits before it is tried again.
const escrowRetryAfter = time.Hour

// settleEscrow decides an operator's settling of p: release or refund, of a payment in
// escrow or disputed; anything else is ErrNotInEscrow, and a side the ledger would refuse
// (a frozen account) ErrConflict, with nothing written.
func (r *rules) settleEscrow(s escrowSnapshot, a EscrowSettlement) Decision {
	p := s.Payment
	switch {
	case p == nil:
		return Decision{Err: ErrNotFound}
	case !p.Escrow || !held(p):
		return Decision{Err: fmt.Errorf("%w: payment %s is %s", ErrNotInEscrow, p.ID, p.State)}
	}
	reason := "settled by an operator: " + a.Reason
	if a.Actor != "" {
		reason = "settled by operator " + a.Actor + ": " + a.Reason
	}
	if a.Action == EscrowRefund {
		if s.Payer == nil || s.Payer.Status != ledger.Active {
			return Decision{Err: fmt.Errorf("%w: the payer's account %s is not active", ErrConflict, p.PayerAccount)}
		}
		return r.refundEscrow(s, reason)
	}
	if s.Payee == nil || s.Payee.Status != ledger.Active {
		return Decision{Err: fmt.Errorf("%w: the merchant's account %s is not active", ErrConflict, p.PayeeAccount)}
	}
	return r.release(s, reason, "escrow_settled_payer")
}

// intoEscrow turns d, the confirmation of p by its right code (complete or
// completeRequest), into a guaranteed payment's: in_escrow until now plus
// escrow.release_after, the payer told the money is held and how to release or dispute
// it, the merchant that it is held for them, and no payment.completed (the merchant
// hears escrow.released). The money's way is the caller's: the hold's or the transfer's
// credit is the escrow account already. Any other d is returned as it is.
func (r *rules) intoEscrow(d Decision, now time.Time) Decision {
	p := d.Payment
	if p == nil || !p.Escrow || d.Move != EvConfirm {
		return d
	}
	d.Move, d.Events = EvConfirmEscrow, nil
	d.ReleaseAt = now.Add(r.cfg.EscrowReleaseAfter)
	p.ReleaseAt = d.ReleaseAt // the texts name it
	v := r.escrowVars(p)
	for _, m := range d.Messages {
		if m.Key != "" && m.Vars != nil { // complete's vars: the items' too, when worked out ahead
			for k, s := range m.Vars {
				if _, ok := v[k]; !ok {
					v[k] = s
				}
			}
			break
		}
	}
	d.Messages = nil
	if p.PayerMSISDN != "" {
		d.Messages = append(d.Messages, withBalance(r.smsMessage(p.PayerMSISDN, "receipt", p.ID, "", !r.cfg.NoPayerReceiptDLR),
			withFee("receipt_escrow", p), v, p.PayerAccount, true)) // the fee named (fees.go)
	}
	d.Messages = append(d.Messages, r.sms(p.PayeeMSISDN, "notice", p.ID, r.texts.Render("payee_escrow_notice", v), false)...)
	return d
}

// escrowVars are p's placeholders with {release}, when it is released by itself.
func (r *rules) escrowVars(p *Payment) map[string]string {
	v := r.vars(p)
	if !p.ReleaseAt.IsZero() {
		v["release"] = p.ReleaseAt.In(r.cfg.Location).Format("02/01/2006 15:04 MST")
	}
	return v
}
