package payswitch

import (
	"context"
	"errors"
	"time"

	"github.com/payswitch/payswitch/store"
)

// The types of contract section 10 that several packages share: the engine decides
// requests to pay and purchases of products, package merchant keeps the catalogue and the
// keys, package webhook delivers the events, package api serves them.

// The states of a merchant's request to pay (contract section 10).
const (
	StateRequested State = "requested" // pushed to the phone, nothing held, waiting for the code
	StateDeclined  State = "declined"  // the payer answered NO
)

// ErrUnknownProduct: no product with that code, or a retired one, for the merchant.
var ErrUnknownProduct = errors.New("payswitch: unknown product")

// ErrPayerBusy: a request to pay already waits for the number (409 payer_busy).
var ErrPayerBusy = errors.New("payswitch: a request already waits for this number")

// PaymentRequest is a merchant's request to pay pushed to a phone, or an operator's
// airtime reminder (Type AirtimePayment, no Merchant).
type PaymentRequest struct {
	Merchant    string      // the merchant's account ID
	Type        PaymentType // MerchantPayment ("" too) or AirtimePayment
	MSISDN      string      // the payer, as the caller typed it
	Amount      int64       // minor units; or Items
	Items       []ItemRequest
	Reference   string // the merchant's: the same one again returns the same payment
	Description string
	TTL         time.Duration // 0: the default validity
	// Operator is set when an operator's token made the request, not a merchant's key.
	Operator bool
	// Escrow makes the payment guaranteed (contract section 11), whatever the merchant's
	// setting; a merchant with escrow on has every payment guaranteed anyway.
	Escrow bool
}

// ItemRequest is a product and quantity a request or a BUY asks for.
type ItemRequest struct {
	Product  string
	Quantity int64
}

// Item is what a payment bought: the product's code and name and its unit price when
// bought, so that a later change of the catalogue does not change past payments.
type Item struct {
	Product  string `json:"product"`
	Name     string `json:"name"`
	Quantity int64  `json:"quantity"`
	Price    int64  `json:"price"`
}

// Product is one entry of a merchant's catalogue, as a purchase reads it.
type Product struct {
	Code  string
	Name  string
	Price int64
}

// ProductCatalog finds a merchant's product for a purchase (package merchant has it).
// A retired or unknown product is ErrUnknownProduct.
type ProductCatalog interface {
	Product(ctx context.Context, merchantID, code string) (Product, error)
}

// EventSink queues an event for a merchant's system in the transaction tx of the change
// it reports (package webhook has it): eventType is one of contract section 10's types,
// subject the payment it is about (an event per merchant, type and subject at most),
// data the payment's JSON. A merchant without a webhook gets nothing queued.
type EventSink interface {
	Enqueue(ctx context.Context, tx store.Tx, merchantID, eventType, subject string, data []byte, at time.Time) error
}
