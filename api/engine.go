package api

import (
	"context"
	"time"

	"github.com/payswitch/payswitch/ledger"
	"github.com/payswitch/payswitch/merchant"
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
	// KYC tiers (contract section 14).
	SetAccountTier(ctx context.Context, c payswitch.AccountTierChange) (ledger.Account, error)
	AccountTier(ctx context.Context, id string) (int, error)

	Payment(ctx context.Context, id string) (*payswitch.Payment, error)
	Payments(ctx context.Context, msisdn string, limit int) ([]*payswitch.Payment, error)
	Account(ctx context.Context, id string) (ledger.Account, error)
	AccountByMSISDN(ctx context.Context, msisdn string) (ledger.Account, error)
	AccountByCode(ctx context.Context, code string) (ledger.Account, error)
	TrialBalance(ctx context.Context) (map[string]ledger.Totals, error)
	JournalHead(ctx context.Context) (seq int64, hash string, err error)
	MerchantPayments(ctx context.Context, merchantID string, f payswitch.MerchantPaymentFilter) ([]*payswitch.Payment, string, error)

	// Refunds (contract section 11; api/refunds.go).
	Refund(ctx context.Context, r payswitch.RefundRequest) (*payswitch.Refund, bool, error)
	Refunds(ctx context.Context, paymentID, merchantID string) ([]*payswitch.Refund, error)
}

var _ Engine = (*payswitch.Engine)(nil)

// MerchantKeys issues and checks merchants' API keys; *merchant.Keys has it. A token that
// is not a live key is an error wrapping merchant.ErrBadKey.
type MerchantKeys interface {
	Create(ctx context.Context, merchantID, name string) (merchant.Key, string, error)
	Revoke(ctx context.Context, merchantID, keyID string) error
	List(ctx context.Context, merchantID string) ([]merchant.Key, error)
	Authenticate(ctx context.Context, token string) (merchantID, keyID string, err error)
}

// Catalog keeps merchants' products; *merchant.Catalog has it.
type Catalog interface {
	Add(ctx context.Context, merchantID string, p payswitch.Product) (merchant.CatalogEntry, error)
	Retire(ctx context.Context, merchantID, code string) error
	List(ctx context.Context, merchantID string, withRetired bool) ([]merchant.CatalogEntry, error)
}

var (
	_ MerchantKeys = (*merchant.Keys)(nil)
	_ Catalog      = (*merchant.Catalog)(nil)
)

// Requests starts merchants' requests to pay and operators' airtime reminders (the
// engine). Its refusals wrap payswitch.ErrInvalid (400), ErrUnknownProduct (404),
// ErrPayerBusy (409), ErrPayerStopped (403), ErrRequestBlocked (403: graded block by the
// risk rules), ErrRateLimited (429) or ErrConflict (409: the reference was used for
// another request).
type Requests interface {
	RequestPayment(ctx context.Context, r payswitch.PaymentRequest) (*payswitch.Payment, error)
}

// Webhooks keeps merchants' webhook endpoints and reports their deliveries. An error
// about the input (a URL or secret it does not accept) has a method InvalidInput
// returning true: the API answers it with 400.
type Webhooks interface {
	SetEndpoint(ctx context.Context, merchantID, url, secret string) error
	Deliveries(ctx context.Context, merchantID string, limit int) ([]WebhookDelivery, error)
}

// WebhookDelivery is one attempt to deliver an event to a merchant, or the next one
// planned, as GET /api/v1/merchants/{id}/webhook/deliveries lists it.
type WebhookDelivery struct {
	EventID string    // the event's ID, the same on every attempt
	Type    string    // the event's type, e.g. payment.completed
	State   string    // e.g. pending, delivered, failed
	Attempt int       // 1 for the first attempt
	Status  int       // the endpoint's HTTP status; 0 when none came
	Error   string    // why the attempt failed, if it did
	At      time.Time // when it was made
	NextAt  time.Time // when the next attempt is due; zero when none is
}
