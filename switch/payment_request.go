package payswitch

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/payswitch/payswitch/ledger"
)

// The refusals of a request to pay that the API answers with their own status.
var (
	// ErrPayerStopped: the number texted STOP for the merchant (403).
	ErrPayerStopped = errors.New("payswitch: the number refused requests from this merchant")
	// ErrRateLimited: the merchant sent, or the number received, as many requests as its
	// window allows (429).
	ErrRateLimited = errors.New("payswitch: too many requests")
)

// RequestPayment sends a merchant's request to pay to a phone (contract section 10), or
// an operator's airtime reminder (r.Type AirtimePayment): a payment in state requested,
// channel api, that holds nothing and waits until now + its TTL for the payer's code,
// and one SMS that names the merchant, the amount (and the items), the description, the
// payment ID and how long it is valid, and carries the code. The same reference again
// for the merchant returns the first payment (with other details: ErrConflict).
//
// Refusals: ErrInvalid naming the field (the number, the merchant, the amount or items,
// the ttl, the description), ErrUnknownProduct, ErrPayerStopped (the number texted
// STOP for the merchant), ErrPayerBusy (a request waits for the number already) and
// ErrRateLimited (config requests); nothing is written.
func (e *Engine) RequestPayment(ctx context.Context, r PaymentRequest) (*Payment, error) {
	q, err := e.rules.checkPaymentRequest(r)
	if err != nil {
		return nil, err
	}
	var out Outcome
	for range maxIDDraws {
		var dr *payDraft
		if dr, err = e.draftPayRequest(ctx, q); err != nil {
			return nil, err
		}
		// The draft's ID is drawn outside the write: a taken one means drafting again.
		err = e.writeOnce(ctx, func(o *op) (err error) {
			out, err = o.payRequest(q, dr)
			return err
		})
		if !errors.Is(err, errPaymentIDTaken) {
			break
		}
		e.ids.Reseed()
	}
	if err == nil && out.Problem == ProblemRiskBlocked { // the history's entry is written (risk_payreq.go)
		err = ErrRequestBlocked
	}
	outcome := "sent"
	switch {
	case errors.Is(err, ErrRequestBlocked):
		outcome = "blocked"
	case err != nil && errors.Is(err, ErrInvalid):
		outcome = "invalid"
	case err != nil && errors.Is(err, ErrPayerBusy):
		outcome = "payer_busy"
	case err != nil && errors.Is(err, ErrPayerStopped):
		outcome = "payer_stopped"
	case err != nil && errors.Is(err, ErrRateLimited):
		outcome = "rate_limited"
	case err != nil:
		outcome = "refused"
	}
	e.requests.WithLabelValues(string(ChannelAPI), "request_"+outcome).Inc()
	if err != nil {
		return nil, err
	}
	return out.Payment, nil
}

// draftPayRequest reads and computes what q needs before its write (see ahead): the
// merchant (whose name and code never change) or the carrier of the payer's number, the
// items priced by the catalogue, and the payment with its code and SMS. What can change
// (statuses, what waits, the counts, STOP) is the write's to read.
func (e *Engine) draftPayRequest(ctx context.Context, q payRequest) (*payDraft, error) {
	d := &payDraft{}
	p := &Payment{ID: e.newPaymentID(), Type: q.Type, Channel: ChannelAPI, State: StateRequested,
		PayerMSISDN: q.Payer, Amount: q.Amount, Currency: e.cfg.Currency, Reference: q.Reference,
		Description: q.Description}
	if q.Type == AirtimePayment {
		carrier, ok := e.carrierFor(q.Payer)
		if !ok {
			return d, nil
		}
		d.carrier = carrier
		p.PayeeAccount, p.PayeeName, p.TargetMSISDN, p.Carrier = clearingAccountID(carrier), carrier, q.Payer, carrier
	} else {
		m, err := e.payees.account(ctx, "id:"+q.Merchant, func(ctx context.Context) (ledger.Account, error) {
			return e.ledger.Account(ctx, q.Merchant)
		})
		switch {
		case errors.Is(err, ledger.ErrNotFound):
			return d, nil
		case err != nil:
			return nil, err
		case m.Type != ledger.Merchant:
			return d, nil
		}
		d.merchant = m
		p.PayeeAccount, p.PayeeName, p.PayeeCode, p.PayeeMSISDN = m.ID, m.Name, m.Code, m.MSISDN
		if p.Escrow = q.Escrow; !p.Escrow {
			if p.Escrow, err = e.guaranteed(ctx, m.ID); err != nil {
				return nil, err
			}
		}
		if len(q.Items) > 0 {
			if d.buy, err = price(ctx, e.products, m.ID, q.Items); err != nil {
				return nil, err
			}
			if d.buy.unknown != "" || d.buy.total > e.cfg.MaxAmount || d.buy.total < e.cfg.MinAmount {
				return d, nil
			}
			p.Amount, p.Items = d.buy.total, d.buy.items
		}
	}
	var err error
	if d.code, err = e.otp.Draw(bindingOf(p)); err != nil {
		return nil, fmt.Errorf("draw code: %w", err)
	}
	p.Fee, _ = e.rules.fee(p.Type, p.Amount) // fixed now (fees.go); past the tariff: the decision refuses it
	d.text, d.push = e.requestTexts(p, q.TTL, d.code.Code)
	d.p = p
	return d, nil
}

// requestTexts are the SMS of request p, valid for ttl, with its code, and its USSD
// push screen ("" when pushes are off). A request graded high is said again with its
// shorter life (risk_payreq.go).
func (r *rules) requestTexts(p *Payment, ttl time.Duration, code string) (text, push string) {
	v := r.vars(p)
	v["valid"], v["what"] = validity(ttl), requestWhat(p.Description, p.Items)
	if p.Fee > 0 {
		v["fee"], v["total"] = r.money(p.Fee), r.money(p.Amount+p.Fee)
	}
	text = r.texts.RenderCode(withFee(requestKey(p), p), v, code, r.digits)
	if r.cfg.USSDPush {
		push = r.texts.Render(requestKey(p)+"_push", v)
	}
	return text, push
}

// payRequest is the request to pay's applier: it reads the snapshot, decides, expires
// the number's overdue request when the decision asks, and writes the decision.
func (o *op) payRequest(q payRequest, dr *payDraft) (Outcome, error) {
	s, err := o.payRequestSnapshot(q, dr)
	if err != nil {
		return Outcome{}, err
	}
	for {
		d := o.e.rules.requestToPay(s)
		switch {
		case d.Err != nil:
			return Outcome{}, d.Err
		case d.Step == overdueStep:
			if err := o.loadItems(s.Waiting); err != nil {
				return Outcome{}, err
			}
			if _, err := o.apply(o.e.rules.expireRequest(s.Waiting)); err != nil {
				return Outcome{}, err
			}
			s.Waiting = nil
			continue
		}
		return o.apply(d)
	}
}

// payRequestSnapshot reads what requestToPay decides on, inside the write: the payment
// made earlier under the request's key; else the payer's and the merchant's accounts,
// and in one statement the number's waiting request, its STOP for the merchant and both
// request counts.
func (o *op) payRequestSnapshot(q payRequest, dr *payDraft) (payRequestSnapshot, error) {
	s := payRequestSnapshot{Now: o.now, Req: q, Draft: dr}
	prev, err := o.snap.booked(q.Key)
	if err != nil {
		return s, err
	}
	if prev != nil {
		s.Prev = prev
		return s, o.loadItems(prev)
	}
	if s.Payer, err = o.accountOrNil(o.lt.AccountByMSISDN(o.ctx, q.Payer)); err != nil {
		return s, err
	}
	if q.Type == MerchantPayment {
		if s.Merchant, err = o.accountOrNil(o.lt.Account(o.ctx, q.Merchant)); err != nil {
			return s, err
		}
	}
	rs, err := o.snap.requestState(q.Payer, q.Merchant)
	if err != nil {
		return s, err
	}
	s.Stopped, s.MerchantCount, s.NumberCount = rs.stopped, rs.merchant, rs.number
	if s.Risk, err = o.payRequestRisk(s); err != nil {
		return s, err
	}
	if rs.waiting != "" {
		if s.Waiting, err = o.snap.payment(rs.waiting); err != nil {
			return s, err
		}
	}
	return s, nil
}

// accountOrNil is a ledger read's account, or nil when there is none.
func (o *op) accountOrNil(a ledger.Account, err error) (*ledger.Account, error) {
	switch {
	case errors.Is(err, ledger.ErrNotFound):
		return nil, nil
	case err != nil:
		return nil, err
	}
	return &a, nil
}

// loadItems reads p's items inside the write, for what is said of it (an event's data,
// a receipt).
func (o *op) loadItems(p *Payment) error {
	if p == nil {
		return nil
	}
	items, err := o.snap.items(p.ID)
	p.Items = items
	return err
}
