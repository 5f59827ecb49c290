package payswitch

import (
	"context"
	"fmt"
	"time"

	"github.com/payswitch/payswitch/otp"
)

// Confirm checks code against the payment that msisdn has waiting and, when it is right,
// posts the held funds, sends the receipt and the payee's notice. paymentID, when not
// empty, must name that payment (a USSD or IVR session knows which one it started).
// A wrong code is counted; too many fail the payment and release its hold.
func (e *Engine) Confirm(ctx context.Context, ch Channel, msisdn, paymentID, code string) (Outcome, error) {
	a := e.confirmAhead(ctx, msisdn, code)
	var out Outcome
	err := e.write(ctx, func(o *op) (err error) {
		out, err = o.confirm(ch, msisdn, paymentID, code, a)
		return err
	})
	if err != nil {
		return Outcome{}, err
	}
	e.requests.WithLabelValues(string(ch), outcomeLabel(out.Problem, "confirmed")).Inc()
	return out, nil
}

// codeAhead is a code given for the payment its number had waiting, as the reader pool
// last saw it, digested for that payment's binding off the store's single writer, with
// the placeholders of the texts about that payment (see ahead).
type codeAhead struct {
	p       *Payment
	attempt otp.Attempt
	vars    map[string]string
}

// confirmAhead prepares code for msisdn's waiting payment; nil when there is none to
// prepare (or the read failed: the write does it all then).
func (e *Engine) confirmAhead(ctx context.Context, msisdn, code string) *ahead[codeAhead] {
	n, err := e.Normalize(msisdn)
	if err != nil {
		return nil
	}
	p, err := loadPending(ctx, e.db.Reader(), n)
	if err != nil || p == nil {
		return nil
	}
	return &ahead[codeAhead]{key: p.ID, value: codeAhead{p: p, attempt: e.otp.Attempt(bindingOf(p), code), vars: e.vars(p)}}
}

// confirm is the confirmation's applier: it reads the snapshot, decides, takes the code
// check the decision asks for and writes the decision.
func (o *op) confirm(ch Channel, msisdn, paymentID, code string, a *ahead[codeAhead]) (Outcome, error) {
	e := o.e
	s := confirmSnapshot{Now: o.now, Channel: ch, Origin: OriginOf(o.ctx), ReplyTo: e.replyTo(msisdn), AskedFor: paymentID}
	var w *waiting
	if n, err := e.Normalize(msisdn); err == nil {
		s.Number = n
		if w, err = o.snap.waiting(n, s.Origin); err != nil {
			return Outcome{}, err
		}
		if w == nil {
			if s.Lock.Until, err = o.snap.lockedUntil(n); err != nil {
				return Outcome{}, err
			}
		}
	}
	var attempt otp.Attempt
	if w != nil {
		s.Lock, s.OriginWrong = w.lock, w.originWrong
		if got, ok := a.confirmed(w.id); ok {
			cp := *got.p
			s.Waiting, attempt, s.Vars = &cp, got.attempt, got.vars
			s.Waiting.ExpiresAt, s.Waiting.UpdatedAt = time.UnixMicro(w.expiresAt).UTC(), time.UnixMicro(w.updatedAt).UTC()
		} else {
			var err error
			if s.Waiting, err = o.snap.payment(w.id); err != nil {
				return Outcome{}, err
			}
			attempt = e.otp.Attempt(bindingOf(s.Waiting), code)
		}
	}
	d := e.rules.confirm(s)
	if d.Step == checkCodeStep {
		res, err := e.otp.CheckAttempt(o.ctx, o.tx, attempt, &w.code, o.now)
		if err != nil {
			return Outcome{}, fmt.Errorf("check code for %s: %w", s.Waiting.ID, err)
		}
		s.Check, s.Checked = res, true
		d = e.rules.confirm(s)
	}
	return o.apply(d)
}

// pendingOf reads msisdn's waiting payment inside the write; nil when none waits or
// msisdn is not a number.
func (o *op) pendingOf(msisdn string) (*Payment, error) {
	n, err := o.e.Normalize(msisdn)
	if err != nil {
		return nil, nil
	}
	return o.snap.pending(n)
}

// bindingOf is what p's code is bound to.
func bindingOf(p *Payment) otp.Binding {
	payee := p.PayeeAccount
	if p.Type == AirtimePayment {
		payee = p.PayeeAccount + ":" + p.TargetMSISDN
	}
	return otp.Binding{PaymentID: p.ID, Payer: p.PayerMSISDN, Payee: payee, Amount: p.Amount, Currency: p.Currency}
}
