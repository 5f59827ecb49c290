package main

import (
	"context"
	"fmt"
	"github.com/payswitch/payswitch/tools/internal/apiclient"
	"net/http"
	"net/url"
	"time"
)

// client speaks the switch's operator API (CONTRACT.md section 3).
type client struct {
	base  string // http://host:port
	token string
	hc    *http.Client
}

func newClient(addr, token string) *client {
	return &client{base: "http://" + addr, token: token, hc: &http.Client{Timeout: 10 * time.Second}}
}

// balance is an account's balance as the API shows it.
type balance struct {
	Posted    int64 `json:"posted"`
	Held      int64 `json:"held"`
	Available int64 `json:"available"`
}

type account struct {
	ID      string  `json:"id"`
	Type    string  `json:"type"`
	MSISDN  string  `json:"msisdn"`
	Code    string  `json:"code"`
	Balance balance `json:"balance"`
}

type payment struct {
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

type trialBalance struct {
	Balanced   bool `json:"balanced"`
	Currencies map[string]struct {
		Debits  int64 `json:"debits"`
		Credits int64 `json:"credits"`
	} `json:"currencies"`
}

type health struct {
	Status string `json:"status"`
}

// do calls the API; see apiclient.Client.Do.
func (c *client) do(ctx context.Context, method, path string, body any, want int, out any) error {
	api := apiclient.Client{Base: c.base, Token: c.token, HTTP: c.hc}
	return api.Do(ctx, method, path, body, want, out)
}

func (c *client) openAccount(ctx context.Context, typ, msisdn, code, name string) (account, error) {
	var a account
	err := c.do(ctx, http.MethodPost, "/api/v1/accounts",
		map[string]string{"type": typ, "msisdn": msisdn, "code": code, "name": name}, http.StatusCreated, &a)
	return a, err
}

func (c *client) deposit(ctx context.Context, accountID string, amount int64, ref string) (payment, error) {
	var p payment
	err := c.do(ctx, http.MethodPost, "/api/v1/deposits",
		map[string]any{"account": accountID, "amount": amount, "reference": ref}, http.StatusCreated, &p)
	return p, err
}

func (c *client) account(ctx context.Context, id string) (account, error) {
	var a account
	err := c.do(ctx, http.MethodGet, "/api/v1/accounts/"+url.PathEscape(id), nil, http.StatusOK, &a)
	return a, err
}

func (c *client) payment(ctx context.Context, id string) (payment, error) {
	var p payment
	err := c.do(ctx, http.MethodGet, "/api/v1/payments/"+url.PathEscape(id), nil, http.StatusOK, &p)
	return p, err
}

// paymentsLimit is the most GET /api/v1/payments returns; crashtest keeps every number
// below it so that one page is the whole history.
const paymentsLimit = 100

func (c *client) payments(ctx context.Context, msisdn string) ([]payment, error) {
	var out struct {
		Payments []payment `json:"payments"`
	}
	err := c.do(ctx, http.MethodGet, fmt.Sprintf("/api/v1/payments?msisdn=%s&limit=%d", url.QueryEscape(msisdn), paymentsLimit),
		nil, http.StatusOK, &out)
	return out.Payments, err
}

func (c *client) trialBalance(ctx context.Context) (trialBalance, error) {
	var tb trialBalance
	err := c.do(ctx, http.MethodGet, "/api/v1/ledger/trial-balance", nil, http.StatusOK, &tb)
	return tb, err
}

// healthy reports whether /healthz answers 200 with every link bound.
func (c *client) healthy(ctx context.Context) bool {
	var h health
	return c.do(ctx, http.MethodGet, "/healthz", nil, http.StatusOK, &h) == nil && h.Status == "ok"
}
