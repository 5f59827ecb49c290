package apiclient

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"time"
)

// Balance is an account's balance as the API shows it (minor units).
type Balance struct {
	Posted    int64 `json:"posted"`
	Held      int64 `json:"held"`
	Available int64 `json:"available"`
}

// Account is the part of an API account the tools read.
type Account struct {
	ID      string  `json:"id"`
	Type    string  `json:"type"`
	MSISDN  string  `json:"msisdn"`
	Code    string  `json:"code"`
	Balance Balance `json:"balance"`
}

// Payment is the part of an API payment the tools read.
type Payment struct {
	ID          string    `json:"id"`
	Type        string    `json:"type"`
	Channel     string    `json:"channel"`
	State       string    `json:"state"`
	Payer       string    `json:"payer"`
	Payee       string    `json:"payee"`
	Amount      int64     `json:"amount"`
	Currency    string    `json:"currency"`
	PayerMSISDN string    `json:"payer_msisdn"`
	Reference   string    `json:"reference"`
	CreatedAt   time.Time `json:"created_at"`
	UpdatedAt   time.Time `json:"updated_at"`
}

// PaymentsLimit is the most GET /api/v1/payments returns in one page.
const PaymentsLimit = 100

// OpenAccount opens an account from the request's fields (type, msisdn, code, name).
func (c *Client) OpenAccount(ctx context.Context, req map[string]string) (Account, error) {
	var a Account
	err := c.Do(ctx, http.MethodPost, "/api/v1/accounts", req, http.StatusCreated, &a)
	return a, err
}

// Deposit cashes amount into the account, once per reference.
func (c *Client) Deposit(ctx context.Context, accountID string, amount int64, ref string) (Payment, error) {
	var p Payment
	err := c.Do(ctx, http.MethodPost, "/api/v1/deposits",
		map[string]any{"account": accountID, "amount": amount, "reference": ref}, http.StatusCreated, &p)
	return p, err
}

// Account reads one account.
func (c *Client) Account(ctx context.Context, id string) (Account, error) {
	var a Account
	err := c.Do(ctx, http.MethodGet, "/api/v1/accounts/"+url.PathEscape(id), nil, http.StatusOK, &a)
	return a, err
}

// Payment reads one payment.
func (c *Client) Payment(ctx context.Context, id string) (Payment, error) {
	var p Payment
	err := c.Do(ctx, http.MethodGet, "/api/v1/payments/"+url.PathEscape(id), nil, http.StatusOK, &p)
	return p, err
}

// Payments reads the newest PaymentsLimit payments of a number.
func (c *Client) Payments(ctx context.Context, msisdn string) ([]Payment, error) {
	var out struct {
		Payments []Payment `json:"payments"`
	}
	err := c.Do(ctx, http.MethodGet, fmt.Sprintf("/api/v1/payments?msisdn=%s&limit=%d", url.QueryEscape(msisdn), PaymentsLimit),
		nil, http.StatusOK, &out)
	return out.Payments, err
}
