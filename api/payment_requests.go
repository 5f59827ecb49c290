package api

import (
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/payswitch/payswitch/merchant"
	payswitch "github.com/payswitch/payswitch/switch"
)

// Bounds of a request's items, so that one body cannot ask the engine to price a
// thousand lines: a request is a bill, not a warehouse order.
const (
	maxRequestItems = 50
	maxItemQuantity = 1_000_000
)

// paymentRequestBody is the body of POST /api/v1/payment-requests (contract section 10).
type paymentRequestBody struct {
	Merchant    string            `json:"merchant"` // operators only; a merchant key means its own
	Type        string            `json:"type"`     // "", "merchant_payment" or "airtime" (operators)
	MSISDN      string            `json:"msisdn"`
	Amount      int64             `json:"amount"`
	Items       []requestItemBody `json:"items"`
	Reference   string            `json:"reference"`
	Description string            `json:"description"`
	TTL         string            `json:"ttl"`    // a Go duration: "10m"
	Escrow      bool              `json:"escrow"` // guaranteed (contract section 11)
}

type requestItemBody struct {
	Product  string `json:"product"`
	Quantity *int64 `json:"quantity"` // 1 when left out
}

// requestPayment pushes a merchant's request to pay to a phone, or an operator's airtime
// reminder. It answers 201 with the payment, also when the reference was used before
// for the same request: the answer is then the first request's payment, as a repeated
// deposit's is, so that a client that retries cannot tell the two apart and need not.
func (s *Server) requestPayment(w http.ResponseWriter, r *http.Request) error {
	var body paymentRequestBody
	if err := decode(r, &body); err != nil {
		return err
	}
	req, err := s.paymentRequest(r, body)
	if err != nil {
		return err
	}
	p, err := s.cfg.Requests.RequestPayment(r.Context(), req)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, paymentView(p))
	return nil
}

// paymentRequest checks body as r's caller sent it and makes it the engine's request.
// What only the engine can judge (the number, the reference's form, the TTL's bounds,
// the items' prices) is left to it.
func (s *Server) paymentRequest(r *http.Request, body paymentRequestBody) (payswitch.PaymentRequest, error) {
	c := callerOf(r)
	req := payswitch.PaymentRequest{MSISDN: body.MSISDN, Amount: body.Amount, Reference: body.Reference,
		Description: body.Description, Operator: c.role == Operator, Escrow: body.Escrow}
	switch payswitch.PaymentType(body.Type) {
	case "", payswitch.MerchantPayment:
		req.Type = payswitch.MerchantPayment
		id := body.Merchant
		if c.role == Merchant && id == "" {
			id = c.merchant
		}
		if id == "" {
			return req, fmt.Errorf("%w: merchant: the merchant's account ID is required with an operator's token", payswitch.ErrInvalid)
		}
		a, err := s.merchantAccount(r, id)
		if err != nil {
			return req, err
		}
		req.Merchant = a.ID
	case payswitch.AirtimePayment:
		if c.role == Merchant {
			return req, fmt.Errorf("%w: only an operator may send an airtime reminder", errForbidden)
		}
		if body.Merchant != "" || len(body.Items) > 0 {
			return req, fmt.Errorf("%w: an airtime reminder has no merchant and no items", payswitch.ErrInvalid)
		}
		req.Type = payswitch.AirtimePayment
	default:
		return req, fmt.Errorf("%w: type: merchant_payment (the default) or airtime", payswitch.ErrInvalid)
	}
	if strings.TrimSpace(body.MSISDN) == "" {
		return req, fmt.Errorf("%w: msisdn: the payer's number is required", payswitch.ErrInvalid)
	}
	if strings.TrimSpace(body.Reference) == "" {
		return req, fmt.Errorf("%w: reference: required; the same reference again returns the same payment", payswitch.ErrInvalid)
	}
	switch {
	case body.Amount != 0 && len(body.Items) > 0:
		return req, fmt.Errorf("%w: give amount or items, not both", payswitch.ErrInvalid)
	case len(body.Items) > 0:
		items, err := requestItems(body.Items)
		if err != nil {
			return req, err
		}
		req.Items = items
	default:
		if err := s.checkAmount(body.Amount); err != nil {
			return req, err
		}
	}
	if body.TTL != "" {
		d, err := time.ParseDuration(body.TTL)
		if err != nil || d <= 0 {
			return req, fmt.Errorf("%w: ttl: a positive duration such as \"10m\" or \"1h30m\"", payswitch.ErrInvalid)
		}
		req.TTL = d
	}
	return req, nil
}

// requestItems checks a request's items: product codes as a catalogue has them, and
// quantities from 1 (the default) to maxItemQuantity.
func requestItems(body []requestItemBody) ([]payswitch.ItemRequest, error) {
	if len(body) > maxRequestItems {
		return nil, fmt.Errorf("%w: items: at most %d", payswitch.ErrInvalid, maxRequestItems)
	}
	items := make([]payswitch.ItemRequest, 0, len(body))
	for i, it := range body {
		if !merchant.ValidProductCode(it.Product) {
			return nil, fmt.Errorf("%w: items[%d].product: a product code of 1 to 6 digits", payswitch.ErrInvalid, i)
		}
		q := int64(1)
		if it.Quantity != nil {
			q = *it.Quantity
		}
		if q < 1 || q > maxItemQuantity {
			return nil, fmt.Errorf("%w: items[%d].quantity: 1 to %d", payswitch.ErrInvalid, i, maxItemQuantity)
		}
		items = append(items, payswitch.ItemRequest{Product: it.Product, Quantity: q})
	}
	return items, nil
}
