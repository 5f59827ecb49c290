package payswitch

import (
	"time"

	"github.com/payswitch/payswitch/ledger"
)

// requestSnapshot is what deciding a request for a new payment looks at.
type requestSnapshot struct {
	Now     time.Time
	Request Request
	ReplyTo string // where an SMS answer goes

	// RateLimited: the number asked too often this minute (the limiter is memory, read
	// before the write); TellLimited: and it has not been told so this minute yet.
	RateLimited, TellLimited bool
	// SIMSwap is the refusal that the carrier's SIM-swap check earned, or ProblemNone.
	SIMSwap Problem
	// Risk grading's facts from before the write: the SIM-swap check could not be
	// made (and failed open), and the number's requests this minute.
	SIMSwapUnknown bool
	RequestsMinute int
	// Risk is what the request is graded on, read in the write; nil: not graded.
	Risk *riskFacts
	// Purchase is a BUY's items as the catalogue priced them before the SIM-swap check
	// (its amount is theirs), or nil.
	Purchase *purchase

	// Draft is what the request could know before its write (see ahead and draft): what
	// never changes of the payer's account, the payee's refusal or the new payment with its
	// code and code message. Nil only when the request was refused before it was drafted.
	Draft *draft

	// Read inside the write: the number's waiting payment (with its overdue expiry
	// already applied and its amount given back to Spent: see overdue), its wrong-code
	// lock, what it has committed today, and its account's tier and status.
	Pending     *Payment
	LockedUntil int64
	Spent       int64
	Tier        int // the payer account's KYC tier (limits per tier: wallets only)
	// PayerStatus is the payer account's status: active, frozen or closed.
	PayerStatus ledger.Status

	Hold holdResult // the ledger's answer to the hold, when its asked is set

	// StoreClosed, read inside the write: the till paid is a closed store's.
	StoreClosed bool
}

// holdResult is the ledger's refusal of a hold, with what decides which refusal it is,
// or none: the hold is made.
type holdResult struct {
	asked        bool // the hold was tried: the fields below are the ledger's answer
	insufficient bool
	available    int64 // the payer's available balance, when insufficient
	inactive     bool
	payerActive  bool // when inactive: the payer is active, so the payee is not
}

// The steps of a request (see decisionStep): overdueStep, expire the number's overdue
// waiting payment (overdue); holdStep, hold the new payment's amount.
const (
	overdueStep decisionStep = reissueStep + 1 + iota
	holdStep
)

// request decides a request for a new payment: one refusal, in the order the rules
// take them, or the payment started (funds held, code issued and sent).
func (r *rules) request(s requestSnapshot) Decision {
	d := r.requestDecision(s)
	if d.Step == noStep && !d.Outcome.OK() && s.Request.Channel == ChannelSMS && !s.RateLimited {
		d.Messages = append(d.Messages, r.sms(s.ReplyTo, "reply", idOf(d.Outcome.Payment), d.Outcome.Text, false)...)
	}
	return d
}

func (r *rules) requestDecision(s requestSnapshot) Decision {
	if s.RateLimited {
		d := Decision{Outcome: r.refuse(ProblemTooManyTries, nil, nil), RateLimited: true}
		if s.TellLimited && s.Request.Channel == ChannelSMS {
			d.Messages = r.sms(s.ReplyTo, "reply", "", d.Outcome.Text, false)
		}
		return d
	}
	if s.SIMSwap != ProblemNone {
		d := Decision{Outcome: r.refuse(s.SIMSwap, nil, map[string]string{})}
		if s.SIMSwap == ProblemSIMSwapped && r.cfg.Fraud.SIMSwapFreeze {
			d.FreezePayer = s.ReplyTo
		}
		return d
	}
	dr := s.Draft
	acct := dr.payerAcct
	if acct.ID == "" || acct.Type != ledger.Wallet && acct.Type != ledger.Agent {
		return Decision{Outcome: r.refuse(ProblemNoAccount, nil, nil)}
	}
	if s.PayerStatus != ledger.Active {
		return Decision{Outcome: r.refuse(ProblemAccountInactive, nil, nil)}
	}
	if until := r.lockEnd(s.LockedUntil, s.Now); !until.IsZero() {
		return Decision{Outcome: r.refuseLocked(until, s.Now)}
	}
	if s.Pending != nil {
		if s.Now.Before(s.Pending.ExpiresAt) {
			return Decision{Outcome: r.refuse(ProblemPendingExists, s.Pending, nil)}
		}
		return Decision{Step: overdueStep}
	}
	amount := s.Request.Amount
	if len(s.Request.Items) > 0 {
		// A purchase's amount is what its payee's catalogue says: no payee, no amount.
		if dr.payee != ProblemNone {
			return Decision{Outcome: r.refuse(dr.payee, nil, dr.payeeVars)}
		}
		amount = dr.amount
	}
	if amount < r.cfg.MinAmount {
		return Decision{Outcome: r.refuse(ProblemBelowMin, nil, map[string]string{"min": r.money(r.cfg.MinAmount)})}
	}
	limits := r.tierLimits(payerTier(acct, s.Tier))
	if amount > limits.MaxPayment {
		return Decision{Outcome: r.refuse(ProblemAboveMax, nil, map[string]string{"max": r.money(limits.MaxPayment)})}
	}
	if _, ok := r.fee(s.Request.Type, amount); !ok { // past the tariff's last band (fees.go)
		return Decision{Outcome: r.refuse(ProblemAboveMax, nil, map[string]string{"max": r.money(r.cfg.MaxAmount)})}
	}
	// The daily limit counts the amount, not the fee (fees.go).
	if limits.DailyMax > 0 && s.Spent+amount > limits.DailyMax {
		left := max(limits.DailyMax-s.Spent, 0)
		return Decision{Outcome: r.refuse(ProblemDailyLimit, nil, map[string]string{
			"limit": r.money(limits.DailyMax), "left": r.money(left)})}
	}
	if dr.invalid != nil {
		return Decision{Err: dr.invalid}
	}
	if dr.payee != ProblemNone {
		return Decision{Outcome: r.refuse(dr.payee, nil, dr.payeeVars)}
	}
	if s.StoreClosed {
		return Decision{Outcome: r.refuse(ProblemStoreClosed, nil, map[string]string{"payee": dr.p.payeeLabel()})}
	}
	risk, fired := RiskNormal, []string(nil)
	if s.Risk != nil {
		if risk, fired = grade(*s.Risk, *r.cfg.Risk); risk == RiskBlock {
			return r.riskBlocked(dr.p, s.Request.Channel, fired)
		}
	}
	if !s.Hold.asked {
		return Decision{Step: holdStep}
	}
	p := dr.p
	switch h := s.Hold; {
	case h.insufficient && p.Fee > 0:
		// The amount alone may be available: say that the fee is what is missing.
		return Decision{Outcome: Outcome{Problem: ProblemInsufficientFunds, Text: r.texts.Render("insufficient_funds_fee",
			map[string]string{"amount": r.money(p.Amount), "fee": r.money(p.Fee), "total": r.money(p.Amount + p.Fee),
				"available": r.money(h.available)})}}
	case h.insufficient:
		return Decision{Outcome: r.refuse(ProblemInsufficientFunds, nil, map[string]string{"available": r.money(h.available)})}
	case h.inactive && !h.payerActive:
		// The payer was active when the request was drafted; which side is not now?
		return Decision{Outcome: r.refuse(ProblemAccountInactive, nil, nil)}
	case h.inactive:
		return Decision{Outcome: r.refuse(ProblemPayeeInactive, nil, map[string]string{"payee": p.payeeLabel()})}
	}
	started := *p
	started.CreatedAt, started.UpdatedAt, started.ExpiresAt = s.Now, s.Now, s.Now.Add(r.ttl)
	p = &started
	d := Decision{Payment: p, Insert: true, AddDaily: true, Issue: &dr.code,
		Auth:     []authNote{{Channel: s.Request.Channel, Event: "issued"}},
		Messages: r.sms(p.PayerMSISDN, "otp", p.ID, dr.text, true),
		Outcome:  Outcome{Payment: p}}
	if s.Risk != nil {
		return r.graded(d, dr, risk, fired, s.Request.Channel)
	}
	return d
}

// overdue is the expiry of the number's waiting payment, whose time is up but which the
// sweeper has not got to yet, so that a new request is not refused for it; and the
// snapshot after it: nothing waits, and the payment's amount went back to its own day.
func (r *rules) overdue(s requestSnapshot) (Decision, requestSnapshot) {
	p := s.Pending
	if r.startOfDay(p.CreatedAt).Equal(r.startOfDay(s.Now)) {
		s.Spent = max(s.Spent-p.Amount, 0)
	}
	s.Pending = nil
	return r.expire(p), s
}

// payeeFacts are what a request's draft found of its payee; an account with ID "" is
// none.
type payeeFacts struct {
	to       string         // transfer, airtime: the recipient's number, international
	account  ledger.Account // merchant: by code (or its till's); transfer: by number
	till     Till           // merchant: the store whose till was given, if it was one
	carrier  string         // airtime: the carrier that sells for to, or ""
	clearing ledger.Account // airtime: the carrier's clearing account
}

// recipient is the number a transfer or a top-up is for (a top-up without one is for
// the payer), or the refusal of it.
func (r *rules) recipient(req Request, payer string) (string, Problem) {
	if req.Type == AirtimePayment && req.Recipient == "" {
		return payer, ProblemNone
	}
	to, err := NormalizeMSISDN(req.Recipient, r.cfg.CountryCode)
	switch {
	case err != nil:
		return "", ProblemBadNumber
	case (req.Type == TransferPayment || req.Type == WithdrawalPayment) && to == payer:
		return "", ProblemSelfPayment
	}
	return to, ProblemNone
}

// payee decides a request's payee from what its draft found, and names it on p; or
// refuses it, with the refusal's placeholders. clearing is set when the carrier's
// clearing account is to be made (or its currency reported) by the transaction.
func (r *rules) payee(req Request, f payeeFacts, p *Payment) (refusal Problem, vars map[string]string, clearing bool) {
	a := f.account
	switch req.Type {
	case MerchantPayment:
		if a.ID == "" || a.Type != ledger.Merchant {
			return ProblemUnknownMerchant, map[string]string{"code": req.Merchant}, false
		}
		p.PayeeAccount, p.PayeeName, p.PayeeCode, p.PayeeMSISDN = a.ID, a.Name, a.Code, a.MSISDN
		payTill(p, f.till)
	case TransferPayment:
		if a.ID == "" || a.Type != ledger.Wallet && a.Type != ledger.Agent {
			return ProblemUnknownRecipient, map[string]string{"number": Mask(f.to)}, false
		}
		p.PayeeAccount, p.PayeeName, p.PayeeMSISDN = a.ID, a.Name, a.MSISDN
	case WithdrawalPayment: // cash out at an agent, found by number as wallets are
		if a.ID == "" || a.Type != ledger.Agent {
			return ProblemNotAgent, map[string]string{"number": Mask(f.to)}, false
		}
		p.PayeeAccount, p.PayeeName, p.PayeeMSISDN = a.ID, a.Name, a.MSISDN
	case AirtimePayment:
		if f.carrier == "" {
			return ProblemAirtimeUnavailable, map[string]string{"number": Mask(f.to)}, false
		}
		clearing = f.clearing.ID == "" || f.clearing.Currency != r.cfg.Currency
		p.PayeeAccount, p.PayeeName, p.TargetMSISDN, p.Carrier = clearingAccountID(f.carrier), f.carrier, f.to, f.carrier
	}
	return ProblemNone, nil, clearing
}

// clearingAccountID is the id of a carrier's airtime clearing account: a system
// account's id is "<type>:<name>" (ledger.Tx.SystemAccount); the first top-up through a
// carrier makes it, in its transaction.
func clearingAccountID(carrier string) string { return string(ledger.AirtimeClearing) + ":" + carrier }
