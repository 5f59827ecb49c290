package payswitch

import (
	"context"
	"fmt"

	"github.com/payswitch/payswitch/ledger"
)

// The reads below let the channels (api, ivr) look at the books through the engine
// rather than reach around it into the ledger: a channel asks the engine, the engine
// asks the ledger. They are read-only and read the committed state, off the store's
// writer.

// Account returns the account with id; an unknown one is ledger.ErrNotFound.
func (e *Engine) Account(ctx context.Context, id string) (ledger.Account, error) {
	return e.ledger.Account(ctx, id)
}

// AccountByMSISDN returns the account of the number msisdn (normalised by the caller);
// none is ledger.ErrNotFound.
func (e *Engine) AccountByMSISDN(ctx context.Context, msisdn string) (ledger.Account, error) {
	return e.ledger.AccountByMSISDN(ctx, msisdn)
}

// AccountByCode returns the account with the merchant code code, whatever its type;
// none is ledger.ErrNotFound. Merchant is the check a payment makes.
func (e *Engine) AccountByCode(ctx context.Context, code string) (ledger.Account, error) {
	return e.ledger.AccountByCode(ctx, code)
}

// Merchant returns the merchant whose code is code, as a merchant payment finds its
// payee: an unknown code, or one that is not a merchant's, is ledger.ErrNotFound. A
// store's till is its merchant's account, named "Merchant - Store" with the till as
// its code (whether the store is open is the payment's to check).
func (e *Engine) Merchant(ctx context.Context, code string) (ledger.Account, error) {
	a, till, err := e.merchantByCode(ctx, code)
	if err != nil {
		return ledger.Account{}, err
	}
	if a.Type != ledger.Merchant {
		return ledger.Account{}, fmt.Errorf("%w: no merchant with code %s", ledger.ErrNotFound, code)
	}
	if till.Store != "" {
		p := Payment{PayeeName: a.Name}
		payTill(&p, till)
		a.Name, a.Code = p.PayeeName, till.Code
	}
	return a, nil
}

// TrialBalance returns the posted debits and credits of every currency (see
// ledger.Ledger.TrialBalance).
func (e *Engine) TrialBalance(ctx context.Context) (map[string]ledger.Totals, error) {
	return e.ledger.TrialBalance(ctx)
}

// JournalHead returns the seq and hash of the journal's last entry (0 and
// ledger.GenesisHash when it is empty), which auditors compare with an export.
func (e *Engine) JournalHead(ctx context.Context) (seq int64, hash string, err error) {
	return e.ledger.Head(ctx)
}
