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
	var a ledger.Account
	err := e.write(ctx, func(o *op) (err error) {
		a, err = o.lt.CreateAccount(o.ctx, na)
		return err
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
		key := "deposit:" + ref
		prev, err := scanPayment(o.tx.QueryRowContext(o.ctx, `SELECT `+paymentColumns+` FROM payments WHERE request_key = ?`, key))
		if err == nil {
			if prev.PayeeAccount != d.Account || prev.Amount != d.Amount {
				return fmt.Errorf("%w: reference %q was used for another deposit", ErrConflict, ref)
			}
			p = prev
			return nil
		}
		acct, err := o.lt.Account(o.ctx, d.Account)
		if errors.Is(err, ledger.ErrNotFound) || err == nil && acct.Type.IsSystem() {
			return fmt.Errorf("%w: account %q", ErrNotFound, d.Account)
		}
		if err != nil {
			return err
		}
		cash, err := o.lt.SystemAccount(o.ctx, ledger.Cash, e.cfg.Currency, e.cfg.Currency)
		if err != nil {
			return err
		}
		p = &Payment{ID: e.newPaymentID(), Type: DepositPayment, Channel: ChannelAPI, State: StateCompleted,
			PayerAccount: cash.ID, PayeeAccount: acct.ID, PayeeName: acct.Name, PayeeCode: acct.Code,
			PayeeMSISDN: acct.MSISDN, Amount: d.Amount, Currency: e.cfg.Currency, Reference: ref,
			CreatedAt: o.now, UpdatedAt: o.now}
		tr, err := o.lt.Transfer(o.ctx, ledger.TransferRequest{Key: key, Debit: cash.ID, Credit: acct.ID,
			Amount: d.Amount, PaymentID: p.ID, Kind: string(DepositPayment)})
		if errors.Is(err, ledger.ErrAccountInactive) {
			return fmt.Errorf("%w: account %s is not active", ErrInvalid, acct.ID)
		}
		if err != nil {
			return err
		}
		p.TransferID = tr.ID
		if err := insertPayment(o.ctx, o.tx, p, key); err != nil {
			return err
		}
		if acct.MSISDN != "" {
			after, err := o.lt.Account(o.ctx, acct.ID)
			if err != nil {
				return err
			}
			v := e.vars(p)
			v["balance"] = e.money(after.Balance.Posted)
			if err := o.sms(acct.MSISDN, "deposit", p.ID, e.texts.Render("deposit_notice", v), false); err != nil {
				return err
			}
		}
		id, amount := p.ID, p.Amount
		o.after = append(o.after, func() {
			e.transitions.WithLabelValues(string(DepositPayment), string(StateCompleted)).Inc()
			e.log.Info().Str("payment", id).Str("event", "deposit").Str("account", acct.ID).Int64("amount", amount).Msg("deposit booked")
		})
		return nil
	})
	return p, err
}

// Payment returns one payment by ID.
func (e *Engine) Payment(ctx context.Context, id string) (*Payment, error) {
	if !ValidPaymentID(id) {
		return nil, ErrNotFound
	}
	return loadPayment(ctx, e.db.Reader(), id)
}

// Payments lists the payments that msisdn made or received, newest first.
func (e *Engine) Payments(ctx context.Context, msisdn string, limit int) ([]*Payment, error) {
	n, err := e.Normalize(msisdn)
	if err != nil {
		return nil, fmt.Errorf("%w: msisdn: %q is not a phone number", ErrInvalid, msisdn)
	}
	if limit <= 0 || limit > 100 {
		limit = 20
	}
	return paymentsOf(ctx, e.db.Reader(), n, limit)
}

// Ledger is the ledger the engine books into, for read-only queries.
func (e *Engine) Ledger() *ledger.Ledger { return e.ledger }
