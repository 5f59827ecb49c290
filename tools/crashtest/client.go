package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
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

// do sends body (when not nil) as JSON and decodes a response of status want into out.
func (c *client) do(ctx context.Context, method, path string, body any, want int, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil {
		return fmt.Errorf("%s %s: read: %w", method, path, err)
	}
	if resp.StatusCode != want {
		return fmt.Errorf("%s %s: status %d, want %d: %s", method, path, resp.StatusCode, want, bytes.TrimSpace(b))
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			return fmt.Errorf("%s %s: decode: %w", method, path, err)
		}
	}
	return nil
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
