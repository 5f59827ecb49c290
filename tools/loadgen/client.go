package main

import (
	"context"
	"encoding/json"
	"fmt"
	"github.com/payswitch/payswitch/tools/internal/apiclient"
	"net/http"
	"net/url"
	"sync"
	"time"
)

// client talks to the switch's operator API.
type client struct {
	base  string // http://host:port
	token string
	hc    *http.Client
}

func newClient(base, token string) *client {
	tr := &http.Transport{MaxIdleConns: 128, MaxIdleConnsPerHost: 128, IdleConnTimeout: time.Minute}
	return &client{base: base, token: token, hc: &http.Client{Transport: tr, Timeout: 30 * time.Second}}
}

// account is the part of an API account loadgen reads.
type account struct {
	ID      string `json:"id"`
	Balance struct {
		Posted    int64 `json:"posted"`
		Held      int64 `json:"held"`
		Available int64 `json:"available"`
	} `json:"balance"`
}

// payment is the part of an API payment loadgen reads.
type payment struct {
	ID     string `json:"id"`
	Type   string `json:"type"`
	State  string `json:"state"`
	Payer  string `json:"payer"`
	Payee  string `json:"payee"`
	Amount int64  `json:"amount"`
}

// do calls the API; see apiclient.Client.Do.
func (c *client) do(ctx context.Context, method, path string, body any, want int, out any) error {
	api := apiclient.Client{Base: c.base, Token: c.token, HTTP: c.hc}
	return api.Do(ctx, method, path, body, want, out)
}

func (c *client) openAccount(ctx context.Context, req map[string]string) (account, error) {
	var a account
	err := c.do(ctx, http.MethodPost, "/api/v1/accounts", req, http.StatusCreated, &a)
	return a, err
}

func (c *client) deposit(ctx context.Context, accountID string, amount int64, ref string) error {
	return c.do(ctx, http.MethodPost, "/api/v1/deposits",
		map[string]any{"account": accountID, "amount": amount, "reference": ref}, http.StatusCreated, nil)
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

// paymentsLimit is the most GET /api/v1/payments returns.
const paymentsLimit = 100

func (c *client) payments(ctx context.Context, msisdn string) ([]payment, error) {
	var r struct {
		Payments []payment `json:"payments"`
	}
	err := c.do(ctx, http.MethodGet, fmt.Sprintf("/api/v1/payments?msisdn=%s&limit=%d", url.QueryEscape(msisdn), paymentsLimit),
		nil, http.StatusOK, &r)
	return r.Payments, err
}

func (c *client) trialBalance(ctx context.Context) (balanced bool, raw string, err error) {
	var r json.RawMessage
	if err := c.do(ctx, http.MethodGet, "/api/v1/ledger/trial-balance", nil, http.StatusOK, &r); err != nil {
		return false, "", err
	}
	var tb struct {
		Balanced bool `json:"balanced"`
	}
	if err := json.Unmarshal(r, &tb); err != nil {
		return false, "", err
	}
	return tb.Balanced, string(r), nil
}

// parallel calls f(i) for i in [0, n) on at most workers goroutines and returns the
// first error; after an error no new calls start.
func parallel(ctx context.Context, n, workers int, f func(ctx context.Context, i int) error) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	next := make(chan int)
	var wg sync.WaitGroup
	for range min(workers, n) {
		wg.Go(func() {
			for i := range next {
				if err := f(ctx, i); err != nil {
					cancel(err)
				}
			}
		})
	}
feed:
	for i := range n {
		select {
		case next <- i:
		case <-ctx.Done():
			break feed
		}
	}
	close(next)
	wg.Wait()
	if err := context.Cause(ctx); err != nil {
		return err
	}
	return nil
}
