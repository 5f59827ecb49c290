package payswitch

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/payswitch/payswitch/ledger"
)

// OpenAccount is an operator's request to open an account.
type OpenAccount struct {
	Type   ledger.AccountType // wallet, merchant or agent
	Name   string
	MSISDN string // required for wallets and agents; where a merchant's notices go
	Code   string // merchant code (till number)
	// Tier, for a wallet, is its KYC tier (nil: DefaultTier); IDNumber is required
	// with TierFull (see AccountTierChange).
	Tier     *int
	IDNumber string
}

// OpenAccount opens a customer, merchant or agent account in the switch's currency.
// A taken number or code is ErrConflict; bad fields are ErrInvalid naming the field.
func (e *Engine) OpenAccount(ctx context.Context, r OpenAccount) (ledger.Account, error) {
	name := strings.TrimSpace(r.Name)
	if name == "" || utf8.RuneCountInString(name) > 60 || !printable(name) {
		return ledger.Account{}, fmt.Errorf("%w: name: 1 to 60 printable characters", ErrInvalid)
	}
	na := ledger.NewAccount{Type: r.Type, Currency: e.cfg.Currency, Name: name}
	switch r.Type {
	case ledger.Wallet, ledger.Agent:
		if r.Code != "" {
			return ledger.Account{}, fmt.Errorf("%w: code: only merchants have a code", ErrInvalid)
		}
	case ledger.Merchant:
		if !ValidMerchantCode(r.Code) {
			return ledger.Account{}, fmt.Errorf("%w: code: 3 to 12 digits", ErrInvalid)
		}
		na.Code = r.Code
	default:
		return ledger.Account{}, fmt.Errorf("%w: type: want wallet, merchant or agent", ErrInvalid)
	}
	if r.MSISDN != "" || r.Type != ledger.Merchant {
		n, err := e.Normalize(r.MSISDN)
		if err != nil {
			return ledger.Account{}, fmt.Errorf("%w: msisdn: %q is not a phone number", ErrInvalid, r.MSISDN)
		}
		na.MSISDN = n
	}
	tier, err := e.rules.openingTier(r)
	if err != nil {
		return ledger.Account{}, err
	}
	var a ledger.Account
	err = e.write(ctx, func(o *op) (err error) {
		if a, err = o.lt.CreateAccount(o.ctx, na); err != nil || tier == nil {
			return err
		}
		tier.Account = a.ID
		return o.changeTier(*tier)
	})
	if errors.Is(err, ledger.ErrDuplicate) {
		return ledger.Account{}, fmt.Errorf("%w: msisdn or code already has an account", ErrConflict)
	}
	if err == nil {
		e.log.Info().Str("account", a.ID).Str("type", string(a.Type)).Str("msisdn", Mask(a.MSISDN)).Msg("account opened")
	}
	return a, err
}

// Deposit is cash brought to an agent or operator and credited to an account.
type Deposit struct {
	Account   string
	Amount    int64
	Reference string // the idempotency key: the same reference again changes nothing
}

// Deposit credits an account from the switch's cash float. Repeating a reference returns
// the first deposit; the same reference with another account or amount is ErrConflict.
func (e *Engine) Deposit(ctx context.Context, d Deposit) (*Payment, error) {
	ref, err := checkReference(d.Reference)
	if err != nil {
		return nil, err
	}
	if d.Amount <= 0 || d.Amount > maxAmount {
		return nil, fmt.Errorf("%w: amount: a positive number of minor units", ErrInvalid)
	}
	var p *Payment
	err = e.write(ctx, func(o *op) error {
		s, err := o.booking(ref, "deposit:"+ref, d.Account, func() (ledger.Account, error) {
			return o.lt.SystemAccount(o.ctx, ledger.Cash, e.cfg.Currency, e.cfg.Currency)
		})
		if err != nil {
			return err
		}
		if s.Prev == nil && s.Account != nil && s.Account.Type == ledger.Wallet {
			if s.Room, err = o.payeeRoom(s.Account.ID); err != nil {
				return err
			}
		}
		dec := e.rules.deposit(s, d.Account, d.Amount)
		if dec.Err != nil {
			return dec.Err
		}
		out, err := o.apply(dec)
		if err != nil {
			return e.rules.bookingRefused(*s.Account, err)
		}
		p = out.Payment
		return nil
	})
	return p, err
}

// booking reads an operator's booking's snapshot: the payment booked earlier under key,
// or else the account named id (nil when there is none), the system account on the
// other side (made by the ledger on first use) and a new payment ID.
func (o *op) booking(ref, key, id string, system func() (ledger.Account, error)) (bookingSnapshot, error) {
	s := bookingSnapshot{Now: o.now, Reference: ref, Key: key}
	prev, err := o.snap.booked(key)
	if err != nil || prev != nil {
		s.Prev = prev
		return s, err
	}
	a, err := o.lt.Account(o.ctx, id)
	switch {
	case errors.Is(err, ledger.ErrNotFound):
		return s, nil
	case err != nil:
		return s, err
	}
	s.Account = &a
	if s.System, err = system(); err != nil {
		return s, err
	}
	s.NewID = o.e.newPaymentID()
	return s, nil
}

// Payment returns one payment by ID, with its items.
func (e *Engine) Payment(ctx context.Context, id string) (*Payment, error) {
	if !ValidPaymentID(id) {
		return nil, ErrNotFound
	}
	p, err := loadPayment(ctx, e.db.Reader(), id)
	if err != nil {
		return nil, err
	}
	if p.Items, err = itemsOf(ctx, e.db.Reader(), id); err != nil {
		return nil, err
	}
	return p, nil
}

// Payments lists the payments that msisdn made or received, newest first, with their items.
func (e *Engine) Payments(ctx context.Context, msisdn string, limit int) ([]*Payment, error) {
	n, err := e.Normalize(msisdn)
	if err != nil {
		return nil, fmt.Errorf("%w: msisdn: %q is not a phone number", ErrInvalid, msisdn)
	}
	if limit <= 0 || limit > 100 {
		limit = 20
	}
	ps, err := paymentsOf(ctx, e.db.Reader(), n, limit)
	if err != nil {
		return nil, err
	}
	if err := withItems(ctx, e.db.Reader(), ps); err != nil {
		return nil, err
	}
	return ps, nil
}
