package main

import (
	"context"
	"net/http"
	"time"

	"github.com/payswitch/payswitch/tools/internal/apiclient"
)

// client speaks the switch's operator API (CONTRACT.md section 3).
type client struct{ apiclient.Client }

func newClient(addr, token string) *client {
	return &client{apiclient.Client{Base: "http://" + addr, Token: token, HTTP: &http.Client{Timeout: 10 * time.Second}}}
}

// The API's resources, as apiclient reads them.
type (
	balance = apiclient.Balance
	account = apiclient.Account
	payment = apiclient.Payment
)

// paymentsLimit is the most GET /api/v1/payments returns; crashtest keeps every number
// below it so that one page is the whole history.
const paymentsLimit = apiclient.PaymentsLimit

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

func (c *client) openAccount(ctx context.Context, typ, msisdn, code, name string) (account, error) {
	return c.OpenAccount(ctx, map[string]string{"type": typ, "msisdn": msisdn, "code": code, "name": name})
}

func (c *client) trialBalance(ctx context.Context) (trialBalance, error) {
	var tb trialBalance
	err := c.Do(ctx, http.MethodGet, "/api/v1/ledger/trial-balance", nil, http.StatusOK, &tb)
	return tb, err
}

// healthy reports whether /healthz answers 200 with every link bound.
func (c *client) healthy(ctx context.Context) bool {
	var h health
	return c.Do(ctx, http.MethodGet, "/healthz", nil, http.StatusOK, &h) == nil && h.Status == "ok"
}
