package payswitch

import (
	"time"

	"github.com/payswitch/payswitch/ledger"
	"github.com/payswitch/payswitch/otp"
)

// A merchant's request to pay waits for its code with nothing held. The decisions below
// are its ends: completed by the right code with a direct transfer when the funds are
// there (completeRequest), failed when they are not or by wrong codes, expired, or
// declined by the payer (NO). Each tells the payer by SMS and the merchant's system by
// an event, and kills the request's code.

// fundsStep asks the applier for the accounts and the day's total that a confirmed
// request's transfer depends on (requestFunds).
const fundsStep = holdStep + 1

// requestFunds is what completing a request checks, read inside the write once its code
// was found right: the payer's account (status, available balance), the payee's
// (status) and what the payer has committed today.
type requestFunds struct {
	Payer, Payee ledger.Account
	Spent        int64
	Escrow       string // a guaranteed payment's: the escrow account its money goes to
	PayerTier    int    // the payer wallet's KYC tier, whose limits bind it
}

// completeRequest decides a request whose right code was given at now: the funds move at
// once, payer to merchant, in one transfer (nothing was held), the day's total counts it,
// and both sides are told as for any payment (complete); an airtime reminder goes on to
// its top-up. A payer who cannot pay it now (too little available, a frozen account, a
// spent daily limit) or a payee that cannot be paid fails it, says why, and moves no
// money.
func (r *rules) completeRequest(p *Payment, ch Channel, vars map[string]string, f requestFunds, now time.Time) Decision {
	if vars == nil {
		vars = r.vars(p)
	}
	fail := func(problem Problem, reason, key string) Decision {
		d := r.endRequest(p, EvFail, reason, "failed", withFee(key, p), EventRequestFailed, vars) // the fee named (fees.go)
		d.Auth = []authNote{{Channel: ch, Event: "confirmed", Detail: "the right code; the payment refused: " + reason}}
		d.Outcome.Problem = problem
		return d
	}
	switch {
	case f.Payer.Status != ledger.Active:
		return fail(ProblemAccountInactive, "the payer's account is not active", "request_failed_inactive")
	case f.Payee.Status != ledger.Active:
		return fail(ProblemPayeeInactive, "the payee cannot be paid", "request_failed_payee")
	case f.Payer.Balance.Available < p.Amount+p.Fee: // the fee too (fees.go)
		vars["available"] = r.money(f.Payer.Balance.Available)
		return fail(ProblemInsufficientFunds, "insufficient funds", "request_failed_funds")
	}
	// The payer's tier may allow less than the request's amount, which only the global
	// limits bounded when it was made (contract section 14).
	switch limits := r.tierLimits(payerTier(f.Payer, f.PayerTier)); {
	case p.Amount > limits.MaxPayment:
		vars["max"] = r.money(limits.MaxPayment)
		return fail(ProblemAboveMax, "above the payer's largest payment", "request_failed_max")
	case limits.DailyMax > 0 && f.Spent+p.Amount > limits.DailyMax:
		vars["limit"], vars["left"] = r.money(limits.DailyMax), r.money(max(limits.DailyMax-f.Spent, 0))
		return fail(ProblemDailyLimit, "daily limit", "request_failed_limit")
	}
	d := r.complete(p, ch, vars)
	d.Post = false
	d.Transfer = &ledger.TransferRequest{Key: p.ID + ":pay", Debit: p.PayerAccount, Credit: p.PayeeAccount,
		Amount: p.Amount, PaymentID: p.ID, Kind: string(p.Type)}
	if p.Escrow {
		d.Transfer.Credit = f.Escrow
	}
	d.AddDaily, d.DailyAt = true, now
	return r.intoEscrow(d, now)
}

// endRequest ends the request p with ev: its code dies (nothing was held, nothing
// counted against the day), the payer is told with the text key by an SMS of purpose,
// and the merchant's system hears event.
func (r *rules) endRequest(p *Payment, ev Event, reason, purpose, key, event string, vars map[string]string) Decision {
	if vars == nil {
		vars = r.vars(p)
	}
	if k, ok := airtimeTexts[key]; ok && p.Type == AirtimePayment {
		key = k // an airtime offer has no payee to name ("paid to airtime for ...")
	}
	text := r.texts.Render(key, vars)
	return Decision{Payment: p, Kill: true, Move: ev, Reason: reason, Events: merchantEvent(p, event),
		Messages: r.sms(p.PayerMSISDN, purpose, p.ID, text, false),
		Outcome:  Outcome{Payment: p, Text: text}}
}

// airtimeTexts are the texts of an operator's airtime offer that replace a merchant
// request's, where those name the payee.
var airtimeTexts = map[string]string{"declined": "declined_airtime", "request_expired": "request_expired_airtime"}

// expireRequest ends a request whose time ran out.
func (r *rules) expireRequest(p *Payment) Decision {
	d := r.endRequest(p, EvExpire, "request expired", "expired", "request_expired", EventRequestExpired, nil)
	d.Auth = []authNote{{Channel: p.Channel, Event: "expired"}}
	return d
}

// failRequestWrong ends a request after too many wrong codes (its own, or the number's
// lock when lockedUntil is set), as failWrong does a payment of the payer's own.
func (r *rules) failRequestWrong(p *Payment, ch Channel, lockedUntil, now time.Time) Decision {
	v := r.vars(p)
	detail, reason, key := "", "too many wrong codes", "request_failed_attempts"
	if !lockedUntil.IsZero() {
		v["until"] = r.lockTime(lockedUntil, now)
		detail = "number locked until " + lockedUntil.UTC().Format(time.RFC3339)
		reason, key = "too many wrong codes: number locked", "request_locked_failed"
	}
	d := r.endRequest(p, EvFail, reason, "failed", key, EventRequestFailed, v)
	d.Auth = []authNote{{Channel: ch, Event: otp.EventExhausted, Detail: detail}}
	d.Outcome.Problem, d.Outcome.LockedUntil = ProblemTooManyAttempts, lockedUntil
	return d
}

// More problems of requests to pay.
const (
	ProblemNoRequest Problem = "no_request" // NO with no request waiting
)

// declineSnapshot is what deciding a payer's NO looks at, as read inside the write.
type declineSnapshot struct {
	Now      time.Time
	Channel  Channel
	ReplyTo  string   // where an SMS answer goes
	AskedFor string   // the request a USSD session names, or ""
	Request  *Payment // the number's request waiting for its code, or nil
}

// decline ends the number's waiting request at the payer's word: declined, its code
// dead, the payer told, the merchant's system told request.declined. With none waiting
// (or not the one a session names) it answers so; an overdue one expires instead.
func (r *rules) decline(s declineSnapshot) Decision {
	p := s.Request
	if p == nil || s.AskedFor != "" && p.ID != s.AskedFor {
		return r.replyIfSMS(Decision{Outcome: r.refuse(ProblemNoRequest, nil, map[string]string{})}, s.Channel, s.ReplyTo)
	}
	if !s.Now.Before(p.ExpiresAt) {
		d := r.expireRequest(p)
		d.Outcome.Problem = ProblemCodeExpired
		return d
	}
	d := r.endRequest(p, EvDecline, "declined by the payer", "reply", "declined", EventRequestDeclined, nil)
	d.Auth = []authNote{{Channel: s.Channel, Event: "cancelled", Detail: "request declined"}}
	return d
}
