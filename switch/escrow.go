package payswitch

import (
	"context"
	"errors"
	"fmt"

	"github.com/payswitch/payswitch/ledger"
)

// EscrowMerchants says which merchants' payments are guaranteed (*merchant.Guarantees):
// Guaranteed reports, as last committed, whether merchantID has escrow on.
type EscrowMerchants interface {
	Guaranteed(ctx context.Context, merchantID string) (bool, error)
}

// guaranteed reports whether a payment to the merchant account merchantID is made
// guaranteed by its merchant's setting (Deps.Escrow; none: no merchant's is).
func (e *Engine) guaranteed(ctx context.Context, merchantID string) (bool, error) {
	if e.escrowMerchants == nil {
		return false, nil
	}
	on, err := e.escrowMerchants.Guaranteed(ctx, merchantID)
	if err != nil {
		return false, fmt.Errorf("escrow of merchant %s: %w", merchantID, err)
	}
	return on, nil
}

// escrowAccount is the escrow account of the switch's currency, made on first use.
func (o *op) escrowAccount() (string, error) {
	a, err := o.lt.SystemAccount(o.ctx, ledger.Escrow, o.e.cfg.Currency, o.e.cfg.Currency)
	if err != nil {
		return "", fmt.Errorf("escrow account: %w", err)
	}
	return a.ID, nil
}

// ReleaseEscrow is the payer's RELEASE <paymentID> from msisdn: the payment held in
// escrow is paid to its merchant (completed). Refusals are answered (by SMS for
// ChannelSMS) and change nothing.
func (e *Engine) ReleaseEscrow(ctx context.Context, ch Channel, msisdn, paymentID string) (Outcome, error) {
	return e.payerEscrow(ctx, ch, msisdn, paymentID, EvRelease)
}

// DisputeEscrow is the payer's DISPUTE <paymentID> from msisdn: the payment held in
// escrow stays there, disputed, until an operator settles it (SettleEscrow).
func (e *Engine) DisputeEscrow(ctx context.Context, ch Channel, msisdn, paymentID string) (Outcome, error) {
	return e.payerEscrow(ctx, ch, msisdn, paymentID, EvDispute)
}

func (e *Engine) payerEscrow(ctx context.Context, ch Channel, msisdn, paymentID string, ev Event) (Outcome, error) {
	var out Outcome
	err := e.write(ctx, func(o *op) error {
		s, err := o.escrowSnapshot(paymentID)
		if err != nil {
			return err
		}
		s.Channel, s.ReplyTo = ch, e.replyTo(msisdn)
		if n, err := e.Normalize(msisdn); err == nil {
			s.From = n
		}
		out, err = o.apply(e.rules.payerEscrow(s, ev))
		return err
	})
	if err != nil {
		return Outcome{}, err
	}
	e.requests.WithLabelValues(string(ch), outcomeLabel(out.Problem, string(ev))).Inc()
	return out, nil
}

// SettleEscrow is an operator's settling of a guaranteed payment in escrow or disputed:
// released to the merchant (completed) or refunded to the payer (refunded). Refusals:
// ErrInvalid (the action or reason), ErrNotFound, ErrNotInEscrow (the payment is not
// held: never was, or was settled already) and ErrConflict (the account to be paid is
// frozen or closed); nothing is written.
func (e *Engine) SettleEscrow(ctx context.Context, id string, a EscrowSettlement) (*Payment, error) {
	if a.Action != EscrowRelease && a.Action != EscrowRefund {
		return nil, fmt.Errorf("%w: action: %q, want release or refund", ErrInvalid, a.Action)
	}
	var err error
	if a.Reason, err = checkReason(a.Reason, true); err != nil {
		return nil, err
	}
	if !ValidPaymentID(id) {
		return nil, ErrNotFound
	}
	var p *Payment
	err = e.write(ctx, func(o *op) error {
		s, err := o.escrowSnapshot(id)
		if err != nil {
			return err
		}
		d := e.rules.settleEscrow(s, a)
		if d.Err != nil {
			return d.Err
		}
		out, err := o.apply(d)
		p = out.Payment
		return err
	})
	if err != nil {
		return nil, err
	}
	e.log.Info().Str("payment", p.ID).Str("event", "escrow_settled").Str("action", string(a.Action)).
		Str("reason", a.Reason).Msg("operator settled a payment in escrow")
	return p, nil
}

// escrowSnapshot reads what a step of the guaranteed payment id depends on: the payment
// (none for an ID that is not one, or names nothing) and, while its money is held, the
// escrow account and the accounts of both sides.
func (o *op) escrowSnapshot(id string) (escrowSnapshot, error) {
	s := escrowSnapshot{Now: o.now, ID: id}
	if !ValidPaymentID(id) {
		return s, nil
	}
	p, err := o.snap.payment(id)
	switch {
	case errors.Is(err, ErrNotFound):
		return s, nil
	case err != nil:
		return s, err
	}
	if err := o.loadItems(p); err != nil { // its merchant hears of it, with its items
		return s, err
	}
	s.Payment = p
	if !p.Escrow || !held(p) {
		return s, nil
	}
	if s.Escrow, err = o.escrowAccount(); err != nil {
		return s, err
	}
	for _, side := range []struct {
		id  string
		acc **ledger.Account
	}{{p.PayerAccount, &s.Payer}, {p.PayeeAccount, &s.Payee}} {
		a, err := o.lt.Account(o.ctx, side.id)
		if err != nil {
			return s, fmt.Errorf("account %s of %s: %w", side.id, p.ID, err)
		}
		*side.acc = &a
	}
	return s, nil
}
