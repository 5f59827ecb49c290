package api

import (
	"context"

	"github.com/payswitch/payswitch/ledger"
	payswitch "github.com/payswitch/payswitch/switch"
)

// Engine is what the API needs of the payment engine; *payswitch.Engine has it. The
// books are read through the engine too (Account ... JournalHead), not through the
// ledger behind it, so that the engine stays the one way in.
type Engine interface {
	Currency() string
	Normalize(msisdn string) (string, error)

	OpenAccount(ctx context.Context, r payswitch.OpenAccount) (ledger.Account, error)
	Deposit(ctx context.Context, d payswitch.Deposit) (*payswitch.Payment, error)
	OperatorTopup(ctx context.Context, r payswitch.OperatorTopup) (*payswitch.Payment, error)
	Reverse(ctx context.Context, id string, r payswitch.Reversal) (*payswitch.Payment, error)
	SetAccountStatus(ctx context.Context, c payswitch.AccountStatusChange) (ledger.Account, error)

	Payment(ctx context.Context, id string) (*payswitch.Payment, error)
	Payments(ctx context.Context, msisdn string, limit int) ([]*payswitch.Payment, error)
	Account(ctx context.Context, id string) (ledger.Account, error)
	AccountByMSISDN(ctx context.Context, msisdn string) (ledger.Account, error)
	AccountByCode(ctx context.Context, code string) (ledger.Account, error)
	TrialBalance(ctx context.Context) (map[string]ledger.Totals, error)
	JournalHead(ctx context.Context) (seq int64, hash string, err error)
}

var _ Engine = (*payswitch.Engine)(nil)
