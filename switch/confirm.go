package payswitch

import (
	"context"
	"fmt"
	"time"

	"github.com/payswitch/payswitch/ledger"
	"github.com/payswitch/payswitch/otp"
)

// Confirm checks code against the payments msisdn has waiting for a code (its own, and
// a merchant's request to pay) and confirms the one it is the code of: a payment of the
// payer's own posts its held funds; a request checks the funds and moves them at once.
// Either way the payer gets the receipt and the payee the notice. paymentID, when not
// empty, must name one of them (a USSD or IVR session knows which one it started, or
// pushed). A wrong code is counted; too many fail the payment (and release its hold).
func (e *Engine) Confirm(ctx context.Context, ch Channel, msisdn, paymentID, code string) (Outcome, error) {
	a := e.confirmAhead(ctx, msisdn, code)
	var out Outcome
	err := e.write(ctx, func(o *op) (err error) {
		out, err = o.confirm(ch, msisdn, paymentID, code, a)
		return err
	})
	if n, nerr := e.Normalize(msisdn); nerr == nil {
		e.waiting.forget(n)
	}
	if err != nil {
		return Outcome{}, err
	}
	e.requests.WithLabelValues(string(ch), outcomeLabel(out.Problem, "confirmed")).Inc()
	return out, nil
}

// codeAhead is a code given for a payment its number had waiting, as the reader pool
// last saw it (with its items), digested for that payment's binding off the store's
// single writer, with the placeholders of the texts about that payment (see ahead).
type codeAhead struct {
	p       *Payment
	attempt otp.Attempt
	vars    map[string]string
}

// codeAheads are a code worked out ahead for each payment its number had waiting: its
// own and a merchant's request, or either, keyed by payment ID.
type codeAheads struct {
	each []ahead[codeAhead]
}

// confirmed is the code worked out ahead for payment id, if it was.
func (a *codeAheads) confirmed(id string) (codeAhead, bool) {
	if a == nil {
		return codeAhead{}, false
	}
	for i := range a.each {
		if v, ok := a.each[i].confirmed(id); ok {
			return v, true
		}
	}
	return codeAhead{}, false
}

// confirmAhead prepares code for msisdn's waiting payments, as this engine started them
// (waitingHints) or else as the reader pool reads them; nil when there is none to
// prepare (or the read failed: the write does it all then).
func (e *Engine) confirmAhead(ctx context.Context, msisdn, code string) *codeAheads {
	n, err := e.Normalize(msisdn)
	if err != nil {
		return nil
	}
	ps := e.waiting.of(n)
	if len(ps) == 0 {
		if ps, err = loadWaiting(ctx, e.db.Reader(), n); err != nil || len(ps) == 0 || withItems(ctx, e.db.Reader(), ps) != nil {
			return nil
		}
	}
	a := &codeAheads{each: make([]ahead[codeAhead], 0, len(ps))}
	for _, p := range ps {
		a.each = append(a.each, ahead[codeAhead]{key: p.ID,
			value: codeAhead{p: p, attempt: e.otp.Attempt(bindingOf(p), code), vars: e.vars(p)}})
	}
	return a
}

// confirm is the confirmation's applier: it reads the snapshot (the number's waiting
// payments with their codes, in one statement), compares the code with each stored
// code, decides, takes the steps the decision asks for (the code checks, a request's
// funds) and writes the decision.
func (o *op) confirm(ch Channel, msisdn, paymentID, code string, a *codeAheads) (Outcome, error) {
	e := o.e
	s := confirmSnapshot{Now: o.now, Channel: ch, Origin: OriginOf(o.ctx), ReplyTo: e.replyTo(msisdn), AskedFor: paymentID}
	var ws []waiting
	if n, err := e.Normalize(msisdn); err == nil {
		s.Number = n
		if ws, err = o.snap.waiting(n, s.Origin); err != nil {
			return Outcome{}, err
		}
		if len(ws) == 0 {
			if s.Lock.Until, err = o.snap.lockedUntil(n); err != nil {
				return Outcome{}, err
			}
		}
	}
	attempts := make(map[string]otp.Attempt, len(ws))
	stored := make(map[string]*otp.Stored, len(ws))
	for i := range ws {
		w := &ws[i]
		s.Lock, s.OriginWrong = w.lock, w.originWrong
		var p *Payment
		var vars map[string]string
		if got, ok := a.confirmed(w.id); ok {
			cp := *got.p
			p, attempts[w.id], vars = &cp, got.attempt, got.vars
			p.ExpiresAt, p.UpdatedAt = time.UnixMicro(w.expiresAt).UTC(), time.UnixMicro(w.updatedAt).UTC()
		} else {
			var err error
			if p, err = o.snap.payment(w.id); err != nil {
				return Outcome{}, err
			}
			if err := o.loadItems(p); err != nil {
				return Outcome{}, err
			}
			attempts[w.id] = e.otp.Attempt(bindingOf(p), code)
		}
		stored[w.id] = &w.code
		if w.code.Matches(attempts[w.id]) {
			s.Matched = w.id
		}
		if w.state == StateRequested {
			s.Request, s.RequestVars = p, vars
		} else {
			s.Waiting, s.Vars = p, vars
		}
	}
	for {
		d := e.rules.confirm(s)
		switch d.Step {
		case checkCodeStep:
			for _, id := range d.CheckCodes {
				res, err := e.otp.CheckAttempt(o.ctx, o.tx, attempts[id], stored[id], o.now)
				if err != nil {
					return Outcome{}, fmt.Errorf("check code for %s: %w", id, err)
				}
				if s.Request != nil && id == s.Request.ID {
					s.RequestCheck, s.RequestChecked = res, true
				} else {
					s.Check, s.Checked = res, true
				}
			}
		case fundsStep:
			f, err := o.requestFunds(s.Request)
			if err != nil {
				return Outcome{}, err
			}
			s.Funds = &f
		case roomStep:
			room, err := o.payeeRoom(s.Waiting.PayeeAccount)
			if err != nil {
				return Outcome{}, err
			}
			s.Room = &room
		default:
			return o.apply(d)
		}
	}
}

// requestFunds reads what completing the request p checks: the payer's and the payee's
// accounts and what the payer has committed today.
func (o *op) requestFunds(p *Payment) (requestFunds, error) {
	var f requestFunds
	var err error
	if f.Payer, err = o.lt.Account(o.ctx, p.PayerAccount); err != nil {
		return f, fmt.Errorf("payer of %s: %w", p.ID, err)
	}
	if f.Payee, err = o.lt.Account(o.ctx, p.PayeeAccount); err != nil {
		return f, fmt.Errorf("payee of %s: %w", p.ID, err)
	}
	if p.Escrow {
		if f.Escrow, err = o.escrowAccount(); err != nil {
			return f, err
		}
	}
	if f.Spent, err = o.snap.spent(p.PayerMSISDN, o.e.startOfDay(o.now).UnixMicro()); err != nil {
		return f, err
	}
	if f.Payer.Type == ledger.Wallet {
		k, err := o.snap.kyc(p.PayerAccount)
		f.PayerTier = k.Tier
		return f, err
	}
	return f, nil
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
