package payswitch

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/payswitch/payswitch/ledger"
	"github.com/payswitch/payswitch/otp"
)

// Request asks to start a payment that the payer then confirms with a code.
type Request struct {
	Channel   Channel
	Type      PaymentType // MerchantPayment, TransferPayment, AirtimePayment or WithdrawalPayment
	Payer     string      // the payer's number as the channel saw it
	Merchant  string      // merchant code, for MerchantPayment
	Recipient string      // number as typed: TransferPayment's, AirtimePayment's, WithdrawalPayment's agent
	Amount    int64       // minor units; for a BUY, 0: the items' total
	Reference string
	// Items, for a MerchantPayment, are the products bought (BUY): the amount is their
	// price × quantity from the catalogue (Deps.Products), named in the code SMS.
	Items []ItemRequest
}

// Outcome is the engine's answer to a phone user. Payment is the payment concerned (the
// new one, or the one that blocks a new request); Problem is empty on success and names
// the refusal otherwise; Text is what to tell the user, in the engine's words.
type Outcome struct {
	Payment *Payment
	Problem Problem
	Text    string
	// LockedUntil, when set, is when the number's wrong-code lock ends: a code just
	// locked the number (Problem is ProblemTooManyAttempts and the payment failed).
	LockedUntil time.Time
}

// OK reports whether the request did what it asked.
func (o Outcome) OK() bool { return o.Problem == ProblemNone }

// More problems the engine reports (the parser has its own in command.go).
const (
	ProblemNoAccount          Problem = "no_account"
	ProblemAccountInactive    Problem = "account_inactive"
	ProblemPendingExists      Problem = "pending_exists"
	ProblemBelowMin           Problem = "below_min"
	ProblemAboveMax           Problem = "above_max"
	ProblemDailyLimit         Problem = "daily_limit"
	ProblemUnknownMerchant    Problem = "unknown_merchant"
	ProblemUnknownRecipient   Problem = "unknown_recipient"
	ProblemSelfPayment        Problem = "self_payment"
	ProblemPayeeInactive      Problem = "payee_inactive"
	ProblemInsufficientFunds  Problem = "insufficient_funds"
	ProblemAirtimeUnavailable Problem = "airtime_unavailable"
	ProblemNoPending          Problem = "no_pending"
	ProblemWrongCode          Problem = "wrong_code"
	ProblemCodeExpired        Problem = "code_expired"
	ProblemTooManyAttempts    Problem = "failed_attempts"
	ProblemResendLimit        Problem = "resend_limit"
	ProblemResendTooSoon      Problem = "resend_too_soon"
	ProblemUnknownProduct     Problem = "unknown_product"
)

// Request holds the funds for a new payment, issues its code and queues the code SMS, all
// in one transaction. A refusal moves no money; when the channel is SMS the refusal is
// also queued as the reply.
func (e *Engine) Request(ctx context.Context, r Request) (Outcome, error) {
	// The controls that need no transaction come first: the rate limit is memory, and
	// the SIM-swap check is a call to the carrier that must not hold the writer.
	s := requestSnapshot{Request: r, ReplyTo: e.replyTo(r.Payer)}
	if ok, tell := e.limits.allow(s.ReplyTo, e.now()); !ok {
		e.rateLimited.Inc()
		s.RateLimited, s.TellLimited = true, tell
		d := e.rules.request(s)
		if len(d.Messages) == 0 {
			return d.Outcome, nil // nothing to write: a flood of requests is not a flood of SMS
		}
		return d.Outcome, e.write(ctx, func(o *op) error { _, err := o.apply(d); return err })
	}
	amount := r.Amount
	if len(r.Items) > 0 { // a purchase's amount is the catalogue's to say, before the SIM-swap check
		pu, err := e.priceBuy(ctx, r)
		if err != nil {
			return Outcome{}, err
		}
		if s.Purchase = pu; pu != nil {
			amount = pu.total
		}
	}
	s.SIMSwap, s.SIMSwapUnknown = e.checkSIMSwap(ctx, r.Payer, amount)
	s.RequestsMinute = e.limits.used(s.ReplyTo, e.now())
	var out Outcome
	var err error
	for range maxIDDraws {
		if out, err = e.request(ctx, s); !errors.Is(err, errPaymentIDTaken) {
			break
		}
		e.ids.Reseed() // and the next draft draws another ID
	}
	if err != nil {
		return Outcome{}, err
	}
	e.requests.WithLabelValues(string(r.Channel), outcomeLabel(out.Problem, "requested")).Inc()
	return out, nil
}

// request drafts s's request and decides it in one write.
func (e *Engine) request(ctx context.Context, s requestSnapshot) (Outcome, error) {
	if s.SIMSwap == ProblemNone {
		var err error
		if s.Draft, err = e.draft(ctx, s.Request, s.Purchase); err != nil {
			return Outcome{}, err
		}
	}
	// The draft's ID is drawn outside the write, so a taken one means drafting again
	// (Request), not running the write again (write).
	var out Outcome
	err := e.writeOnce(ctx, func(o *op) (err error) {
		out, err = o.request(s)
		return err
	})
	return out, err
}

// draft is what a request can know before its transaction, worked out off the store's
// single writer (why it may, and what the write still decides: ahead.go): the accounts
// that its numbers and merchant code name, the new payment, its code and the code's
// message. The payee's accounts are kept (payeeCache): a request that arrives while its
// account is being opened may miss it, as if it had come a moment earlier.
type draft struct {
	payer     string         // international form; "" when the payer is not a number
	payerAcct ledger.Account // what never changes of it (payeeCache); ID "" when the number has no account
	invalid   error          // the request cannot be served at all (unknown payment type)
	// payee is the refusal the payee earns (unknown merchant, ...), or ProblemNone.
	payee     Problem
	payeeVars map[string]string
	clearing  bool  // airtime: the carrier's clearing account is made in the transaction
	amount    int64 // a purchase's total (math.MaxInt64 past any limit); else the amount asked

	p    *Payment  // the payment to start; the decision sets its times, on a copy
	code otp.Drawn // its code, drawn for its binding
	text string    // the code message
}

// draft reads what r needs before its transaction, and computes what it can: the payee's
// refusal, or the new payment with its code and code message. Which payee is refused and
// why is the rules' (payee); refusals are given by the transaction, in their order. pu is
// a purchase's items as priced already, or nil: they are priced here.
func (e *Engine) draft(ctx context.Context, r Request, pu *purchase) (*draft, error) {
	d := &draft{amount: r.Amount}
	payer, err := e.Normalize(r.Payer)
	if err != nil {
		return d, nil
	}
	d.payer = payer
	// The payer's account is looked up by number like a transfer's payee (payeeCache),
	// and for what never changes: its status is read inside the write (numberState).
	acct, err := e.payees.account(ctx, "msisdn:"+payer, func(ctx context.Context) (ledger.Account, error) {
		return e.ledger.AccountByMSISDN(ctx, payer)
	})
	if errors.Is(err, ledger.ErrNotFound) {
		return d, nil
	}
	if err != nil {
		return nil, err
	}
	d.payerAcct = acct
	var f payeeFacts
	switch r.Type {
	case MerchantPayment:
		f.account, f.till, err = e.merchantByCode(ctx, r.Merchant)
	case TransferPayment, AirtimePayment, WithdrawalPayment:
		if f.to, d.payee = e.rules.recipient(r, payer); d.payee != ProblemNone {
			return d, nil
		}
		if r.Type != AirtimePayment { // a transfer's wallet, a withdrawal's agent: found by number
			f.account, err = e.payees.account(ctx, "msisdn:"+f.to, func(ctx context.Context) (ledger.Account, error) {
				return e.ledger.AccountByMSISDN(ctx, f.to)
			})
		} else if carrier, ok := e.carrierFor(f.to); ok {
			f.carrier = carrier
			f.clearing, err = e.ledger.Account(ctx, clearingAccountID(carrier))
		}
	default:
		d.invalid = fmt.Errorf("%w: payment type %q", ErrInvalid, r.Type)
		return d, nil
	}
	if err != nil && !errors.Is(err, ledger.ErrNotFound) {
		return nil, err
	}
	p := &Payment{
		ID: e.newPaymentID(), Type: r.Type, Channel: r.Channel, State: StatePendingOTP,
		PayerMSISDN: payer, PayerAccount: acct.ID, Amount: r.Amount, Currency: e.cfg.Currency,
		Reference: r.Reference,
	}
	if d.payee, d.payeeVars, d.clearing = e.rules.payee(r, f, p); d.payee != ProblemNone {
		return d, nil
	}
	if r.Type == MerchantPayment {
		if p.Escrow, err = e.guaranteed(ctx, p.PayeeAccount); err != nil {
			return nil, err
		}
	}
	key := "otp"
	if len(r.Items) > 0 {
		if pu == nil {
			if pu, err = e.priceBuy(ctx, r); err != nil {
				return nil, err
			}
		}
		if pu.unknown != "" {
			d.payee, d.payeeVars = ProblemUnknownProduct, map[string]string{"payee": p.payeeLabel(), "product": pu.unknown}
			return d, nil
		}
		if d.amount = pu.total; pu.total < e.cfg.MinAmount || pu.total > e.cfg.MaxAmount {
			return d, nil // refused for its amount
		}
		p.Amount, p.Items, key = pu.total, pu.items, "otp_buy"
	}
	if d.code, err = e.otp.Draw(bindingOf(p)); err != nil {
		return nil, fmt.Errorf("draw code: %w", err)
	}
	if r.Type == WithdrawalPayment {
		key = "otp_withdraw"
	}
	p.Fee, _ = e.rules.fee(p.Type, p.Amount) // past the tariff: the decision refuses it
	d.text = e.texts.RenderCode(withFee(key, p), e.vars(p), d.code.Code, e.digits)
	d.p = p
	return d, nil
}

// priceBuy prices a purchase's items from the catalogue of the merchant whose code r
// names; nil when there is no such merchant (the request is refused for that).
func (e *Engine) priceBuy(ctx context.Context, r Request) (*purchase, error) {
	m, _, err := e.merchantByCode(ctx, r.Merchant)
	switch {
	case errors.Is(err, ledger.ErrNotFound):
		return nil, nil
	case err != nil:
		return nil, err
	case m.Type != ledger.Merchant:
		return nil, nil
	}
	pu, err := price(ctx, e.products, m.ID, r.Items)
	if err != nil {
		return nil, err
	}
	return &pu, nil
}

// request is the request's applier: it reads the number's state, decides, takes the
// steps the decision asks for (the overdue payment's expiry, the hold) and writes the
// decision.
func (o *op) request(s requestSnapshot) (Outcome, error) {
	e := o.e
	s.Now = o.now
	var err error
	if s.StoreClosed, err = o.storeClosed(s.Draft); err != nil {
		return Outcome{}, err
	}
	if s.Draft != nil && s.Draft.payer != "" && s.Draft.payerAcct.ID != "" {
		n, err := o.snap.numberState(s.Draft.payer, s.Draft.payerAcct.ID, e.startOfDay(o.now).UnixMicro())
		if err != nil {
			return Outcome{}, err
		}
		s.PayerStatus, s.LockedUntil, s.Spent, s.Tier = n.payerStatus, n.lockedUntil, n.spent, n.tier
		if n.pending != "" {
			if s.Pending, err = o.snap.payment(n.pending); err != nil {
				return Outcome{}, err
			}
		}
		if s.Risk, err = o.riskFacts(s); err != nil {
			return Outcome{}, err
		}
	}
	for {
		d := e.rules.request(s)
		switch d.Step {
		case overdueStep:
			expiry, next := e.rules.overdue(s)
			if _, err := o.apply(expiry); err != nil {
				return Outcome{}, err
			}
			s = next
		case holdStep:
			h, err := o.hold(s.Draft)
			if err != nil {
				return Outcome{}, err
			}
			s.Hold = h
		default:
			if d.Err != nil {
				return Outcome{}, d.Err
			}
			return o.apply(d)
		}
	}
}

// hold holds the drafted payment's amount, making the carrier's clearing account first
// when the draft found none, and returns the ledger's refusal, if any, with what tells
// the refusals apart. The hold is the request's first write of its own: when it is
// refused nothing else has been written, and the ledger undoes its own partial work.
func (o *op) hold(d *draft) (holdResult, error) {
	p := d.p
	if d.clearing {
		clearing, err := o.lt.SystemAccount(o.ctx, ledger.AirtimeClearing, p.Carrier, o.e.cfg.Currency)
		if err != nil {
			return holdResult{}, err
		}
		if clearing.ID != p.PayeeAccount {
			return holdResult{}, fmt.Errorf("airtime clearing account is %s, not %s", clearing.ID, p.PayeeAccount)
		}
	}
	credit := p.PayeeAccount
	if p.Escrow { // a guaranteed payment is held for escrow, and posted there
		var err error
		if credit, err = o.escrowAccount(); err != nil {
			return holdResult{}, err
		}
	}
	// The funds check covers amount + fee (fees.go): read before any hold is written.
	if h, ok, err := o.checkFeeFunds(p); !ok || err != nil {
		return h, err
	}
	_, err := o.lt.Hold(o.ctx, ledger.HoldRequest{
		Key: p.ID + ":hold", Debit: p.PayerAccount, Credit: credit,
		Amount: p.Amount, PaymentID: p.ID, Kind: string(p.Type),
	})
	switch {
	case err == nil:
		return holdResult{asked: true}, o.holdFees(p)
	case errors.Is(err, ledger.ErrIdempotencyConflict):
		// The hold's key is the payment's ID: another payment has it.
		return holdResult{}, fmt.Errorf("hold %s: %w", p.ID, errPaymentIDTaken)
	case errors.Is(err, ledger.ErrInsufficientFunds):
		now, err := o.lt.Account(o.ctx, p.PayerAccount)
		return holdResult{asked: true, insufficient: true, available: now.Balance.Available}, err
	case errors.Is(err, ledger.ErrAccountInactive):
		now, err := o.lt.Account(o.ctx, p.PayerAccount)
		return holdResult{asked: true, inactive: true, payerActive: now.Status == ledger.Active}, err
	}
	return holdResult{}, err
}

func idOf(p *Payment) string {
	if p == nil {
		return ""
	}
	return p.ID
}

// replyTo is where a reply to a number as the channel gave it goes.
func (e *Engine) replyTo(raw string) string {
	if n, err := e.Normalize(raw); err == nil {
		return n
	}
	return raw
}

func outcomeLabel(p Problem, ok string) string {
	if p == ProblemNone {
		return ok
	}
	return string(p)
}
