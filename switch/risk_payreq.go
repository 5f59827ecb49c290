package payswitch

import (
	"errors"
	"strings"

	"github.com/payswitch/payswitch/otp"
)

// Risk grading of merchants' requests to pay (contract section 14): a request is graded
// by the same rules and from the same facts as a payment its payer starts (risk.go):
// the payer's number, the merchant's code, the amount, whether the payer paid this
// merchant before, the wallet's age, its wrong codes and LOCK guesses. A request has no
// SIM-swap check and no per-minute count of its own (the number does not ask for it),
// so those rules never fire for it.
//
//   - block refuses the request with ErrRequestBlocked, whose words do not say which
//     list matched (a merchant must not learn that a number, or it, is listed); nothing
//     is sent to the phone, nothing is stored but the history's "blocked" entry.
//   - high sends the request with a stepped-up code: it lives risk.high_ttl (never
//     longer than the merchant asked) and takes one attempt, as for SMS payments.
//   - low never skips the code: a payment the merchant starts always needs the payer's
//     own code, which is the payer's consent; frictionless is for payments the payer
//     starts. It is recorded, and the request goes on as normal.

// ErrRequestBlocked refuses a request to pay graded block (403, request_blocked).
var ErrRequestBlocked = errors.New("payswitch: this request to pay cannot be sent; nothing was sent to the phone")

// payRequestRisk reads, inside the write, the facts request s is graded on; nil when
// grading is off or the request is refused before it is graded anyway.
func (o *op) payRequestRisk(s payRequestSnapshot) (*riskFacts, error) {
	dr := s.Draft
	if o.e.cfg.Risk == nil || dr == nil || dr.p == nil || s.Payer == nil {
		return nil, nil
	}
	f := &riskFacts{Payer: s.Req.Payer, Merchant: dr.merchant.Code, Amount: dr.p.Amount, Now: o.now,
		AccountAge: o.now.Sub(s.Payer.CreatedAt)}
	return f, o.readRiskFacts(f, dr.p.PayeeAccount)
}

// requestBlocked refuses request p, graded block: nothing is inserted or sent; the
// history keeps the drafted payment's ID, its payer and the rules.
func (r *rules) requestBlocked(p *Payment, fired []string) Decision {
	return Decision{Outcome: Outcome{Problem: ProblemRiskBlocked},
		Auth: []authNote{{PaymentID: p.ID, MSISDN: p.PayerMSISDN, Channel: ChannelAPI, Event: otp.EventBlocked,
			Detail: "request to pay, " + riskDetail(RiskBlock, fired)}}}
}

// gradedRequest is d, a request to pay being sent, as its grade has it: the grade and
// rules on the payment and in the history; high with a code that lives highTTL (or the
// request's own ttl when shorter) and takes one attempt (apply.go's issue), its SMS
// saying so. low is recorded only: the code is always asked.
func (r *rules) gradedRequest(d Decision, dr *payDraft, risk string, fired []string) Decision {
	p := d.Payment
	p.Risk, p.RiskRules = risk, strings.Join(fired, ",")
	d.Auth[0].Detail += ", " + riskDetail(risk, fired)
	if risk != RiskHigh {
		return d
	}
	if ttl := r.highTTL(); p.CreatedAt.Add(ttl).Before(p.ExpiresAt) {
		p.ExpiresAt = p.CreatedAt.Add(ttl)
		text, push := r.requestTexts(p, ttl, dr.code.Code)
		d.Messages = r.sms(p.PayerMSISDN, "request", p.ID, text, true)
		if push != "" {
			d.Messages = append(d.Messages, r.pushMessage(p, push))
		}
	}
	return d
}
