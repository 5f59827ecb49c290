package payswitch

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/payswitch/payswitch/ledger"
)

// Request asks to start a payment that the payer then confirms with a code.
type Request struct {
	Channel   Channel
	Type      PaymentType // MerchantPayment, TransferPayment or AirtimePayment
	Payer     string      // the payer's number as the channel saw it
	Merchant  string      // merchant code, for MerchantPayment
	Recipient string      // number as typed, for TransferPayment and AirtimePayment
	Amount    int64       // minor units
	Reference string
}

// Outcome is the engine's answer to a phone user. Payment is the payment concerned (the
// new one, or the one that blocks a new request); Problem is empty on success and names
// the refusal otherwise; Text is what to tell the user, in the engine's words.
type Outcome struct {
	Payment *Payment
	Problem Problem
	Text    string
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
)

// Request holds the funds for a new payment, issues its code and queues the code SMS, all
// in one transaction. A refusal moves no money; when the channel is SMS the refusal is
// also queued as the reply.
func (e *Engine) Request(ctx context.Context, r Request) (Outcome, error) {
	// The controls that need no transaction come first: the rate limit is memory, and
	// the SIM-swap check is a call to the carrier that must not hold the writer.
	payer := e.replyTo(r.Payer)
	if ok, tell := e.limits.allow(payer, e.now()); !ok {
		e.rateLimited.Inc()
		out := Outcome{Problem: ProblemTooManyTries, Text: e.texts.Render(string(ProblemTooManyTries), nil)}
		if tell && r.Channel == ChannelSMS {
			return out, e.write(ctx, func(o *op) error { return o.sms(payer, "reply", "", out.Text, false) })
		}
		return out, nil
	}
	swap := e.checkSIMSwap(ctx, r.Payer, r.Amount)

	var out Outcome
	err := e.write(ctx, func(o *op) error {
		var err error
		if swap != ProblemNone {
			out = o.refuse(swap, nil, map[string]string{})
			if swap == ProblemSIMSwapped {
				if err := o.freezeAfterSwap(payer); err != nil {
					return err
				}
			}
		} else if out, err = o.request(r); err != nil {
			return err
		}
		if !out.OK() && r.Channel == ChannelSMS {
			return o.sms(payer, "reply", idOf(out.Payment), out.Text, false)
		}
		return nil
	})
	if err != nil {
		return Outcome{}, err
	}
	e.requests.WithLabelValues(string(r.Channel), outcomeLabel(out.Problem, "requested")).Inc()
	return out, nil
}

func (o *op) refuse(p Problem, pay *Payment, vars map[string]string) Outcome {
	if vars == nil {
		vars = map[string]string{}
		if pay != nil {
			vars = o.e.vars(pay)
		}
	}
	return Outcome{Payment: pay, Problem: p, Text: o.e.texts.Render(string(p), vars)}
}

func (o *op) request(r Request) (Outcome, error) {
	e := o.e
	payer, err := e.Normalize(r.Payer)
	if err != nil {
		return o.refuse(ProblemNoAccount, nil, nil), nil
	}
	acct, err := o.lt.AccountByMSISDN(o.ctx, payer)
	if errors.Is(err, ledger.ErrNotFound) || err == nil && acct.Type != ledger.Wallet && acct.Type != ledger.Agent {
		return o.refuse(ProblemNoAccount, nil, nil), nil
	}
	if err != nil {
		return Outcome{}, err
	}
	if acct.Status != ledger.Active {
		return o.refuse(ProblemAccountInactive, nil, nil), nil
	}
	if until, err := o.lockedUntil(payer); err != nil || !until.IsZero() {
		return o.refuseLocked(until), err
	}

	pending, err := loadPending(o.ctx, o.tx, payer)
	if err != nil {
		return Outcome{}, err
	}
	if pending != nil && !o.now.Before(pending.ExpiresAt) {
		// Its time is up but the sweeper has not got to it yet: expire it now.
		if err := o.expire(pending); err != nil {
			return Outcome{}, err
		}
		pending = nil
	}
	if pending != nil {
		return o.refuse(ProblemPendingExists, pending, nil), nil
	}

	if r.Amount < e.cfg.MinAmount {
		return o.refuse(ProblemBelowMin, nil, map[string]string{"min": e.money(e.cfg.MinAmount)}), nil
	}
	if r.Amount > e.cfg.MaxAmount {
		return o.refuse(ProblemAboveMax, nil, map[string]string{"max": e.money(e.cfg.MaxAmount)}), nil
	}
	day := e.startOfDay(o.now).UnixMicro()
	if e.cfg.DailyMax > 0 {
		var spent int64
		err := o.tx.QueryRowContext(o.ctx, `SELECT amount FROM daily_totals WHERE msisdn = ? AND day = ?`,
			payer, day).Scan(&spent)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return Outcome{}, fmt.Errorf("daily total: %w", err)
		}
		if spent+r.Amount > e.cfg.DailyMax {
			left := max(e.cfg.DailyMax-spent, 0)
			return o.refuse(ProblemDailyLimit, nil, map[string]string{
				"limit": e.money(e.cfg.DailyMax), "left": e.money(left)}), nil
		}
	}

	p := &Payment{
		ID: NewPaymentID(), Type: r.Type, Channel: r.Channel, State: StatePendingOTP,
		PayerMSISDN: payer, PayerAccount: acct.ID, Amount: r.Amount, Currency: e.cfg.Currency,
		Reference: r.Reference, CreatedAt: o.now, UpdatedAt: o.now,
	}
	switch r.Type {
	case MerchantPayment:
		m, err := o.lt.AccountByCode(o.ctx, r.Merchant)
		if errors.Is(err, ledger.ErrNotFound) || err == nil && m.Type != ledger.Merchant {
			return o.refuse(ProblemUnknownMerchant, nil, map[string]string{"code": r.Merchant}), nil
		}
		if err != nil {
			return Outcome{}, err
		}
		p.PayeeAccount, p.PayeeName, p.PayeeCode, p.PayeeMSISDN = m.ID, m.Name, m.Code, m.MSISDN
	case TransferPayment:
		to, err := e.Normalize(r.Recipient)
		if err != nil {
			return o.refuse(ProblemBadNumber, nil, nil), nil
		}
		if to == payer {
			return o.refuse(ProblemSelfPayment, nil, nil), nil
		}
		w, err := o.lt.AccountByMSISDN(o.ctx, to)
		if errors.Is(err, ledger.ErrNotFound) || err == nil && w.Type != ledger.Wallet && w.Type != ledger.Agent {
			return o.refuse(ProblemUnknownRecipient, nil, map[string]string{"number": Mask(to)}), nil
		}
		if err != nil {
			return Outcome{}, err
		}
		p.PayeeAccount, p.PayeeName, p.PayeeMSISDN = w.ID, w.Name, w.MSISDN
	case AirtimePayment:
		to := payer
		if r.Recipient != "" {
			if to, err = e.Normalize(r.Recipient); err != nil {
				return o.refuse(ProblemBadNumber, nil, nil), nil
			}
		}
		carrier, ok := e.carrierFor(to)
		if !ok {
			return o.refuse(ProblemAirtimeUnavailable, nil, map[string]string{"number": Mask(to)}), nil
		}
		clearing, err := o.lt.SystemAccount(o.ctx, ledger.AirtimeClearing, carrier, e.cfg.Currency)
		if err != nil {
			return Outcome{}, err
		}
		p.PayeeAccount, p.PayeeName, p.TargetMSISDN, p.Carrier = clearing.ID, carrier, to, carrier
	default:
		return Outcome{}, fmt.Errorf("%w: payment type %q", ErrInvalid, r.Type)
	}
	p.ExpiresAt = o.now.Add(e.ttl)

	// The hold is the first write: when it is refused nothing else has been written, and
	// the ledger undoes its own partial work.
	_, err = o.lt.Hold(o.ctx, ledger.HoldRequest{
		Key: p.ID + ":hold", Debit: p.PayerAccount, Credit: p.PayeeAccount,
		Amount: p.Amount, PaymentID: p.ID, Kind: string(p.Type),
	})
	switch {
	case errors.Is(err, ledger.ErrInsufficientFunds):
		return o.refuse(ProblemInsufficientFunds, nil, map[string]string{"available": e.money(acct.Balance.Available)}), nil
	case errors.Is(err, ledger.ErrAccountInactive):
		return o.refuse(ProblemPayeeInactive, nil, map[string]string{"payee": p.payeeLabel()}), nil
	case err != nil:
		return Outcome{}, err
	}
	if err := insertPayment(o.ctx, o.tx, p, ""); err != nil {
		return Outcome{}, err
	}
	if err := o.addDaily(payer, day, p.Amount); err != nil {
		return Outcome{}, err
	}
	code, exp, err := e.otp.Issue(o.ctx, o.tx, o.binding(p), o.now)
	if err != nil {
		return Outcome{}, fmt.Errorf("issue code: %w", err)
	}
	if !exp.Equal(p.ExpiresAt) {
		return Outcome{}, fmt.Errorf("issue code: expiry %v differs from the payment's %v", exp, p.ExpiresAt)
	}
	text := e.texts.RenderCode("otp", e.vars(p), code, e.digits)
	if err := o.sms(p.PayerMSISDN, "otp", p.ID, text, true); err != nil {
		return Outcome{}, err
	}
	if err := o.authEvent(p, r.Channel, "issued", ""); err != nil {
		return Outcome{}, err
	}
	id, typ, payerNum, amount := p.ID, p.Type, p.PayerMSISDN, p.Amount
	o.after = append(o.after, func() {
		e.transitions.WithLabelValues(string(typ), string(StatePendingOTP)).Inc()
		e.log.Info().Str("payment", id).Str("event", "requested").Str("type", string(typ)).
			Str("channel", string(r.Channel)).Str("payer", Mask(payerNum)).Int64("amount", amount).
			Msg("payment requested, code sent")
	})
	return Outcome{Payment: p}, nil
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

// addDaily counts amount against what msisdn has committed on day.
func (o *op) addDaily(msisdn string, day, amount int64) error {
	_, err := o.tx.ExecContext(o.ctx, `INSERT INTO daily_totals (msisdn, day, amount) VALUES (?, ?, ?)
		ON CONFLICT (msisdn, day) DO UPDATE SET amount = amount + excluded.amount`, msisdn, day, amount)
	return err
}

// subDaily gives amount back to msisdn's day when a payment did not happen.
func (o *op) subDaily(msisdn string, day, amount int64) error {
	_, err := o.tx.ExecContext(o.ctx, `UPDATE daily_totals SET amount = max(amount - ?, 0)
		WHERE msisdn = ? AND day = ?`, amount, msisdn, day)
	return err
}
