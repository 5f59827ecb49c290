package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/payswitch/payswitch/tools/internal/apiclient"
)

// client talks to the switch's operator API.
type client struct{ apiclient.Client }

func newClient(base, token string) *client {
	tr := &http.Transport{MaxIdleConns: 128, MaxIdleConnsPerHost: 128, IdleConnTimeout: time.Minute}
	return &client{apiclient.Client{Base: base, Token: token, HTTP: &http.Client{Transport: tr, Timeout: 30 * time.Second}}}
}

// payment is the API's payment, as apiclient reads it.
type payment = apiclient.Payment

// paymentsLimit is the most GET /api/v1/payments returns.
const paymentsLimit = apiclient.PaymentsLimit

// withToken is a client of the same switch, over the same connections, with another
// bearer token (a merchant's key).
func (c *client) withToken(token string) *client {
	return &client{apiclient.Client{Base: c.Base, Token: token, HTTP: c.HTTP}}
}

// createMerchantKey makes a key for merchant id and returns the key itself.
func (c *client) createMerchantKey(ctx context.Context, id, name string) (string, error) {
	var out struct {
		Key string `json:"key"`
	}
	err := c.Do(ctx, http.MethodPost, "/api/v1/merchants/"+url.PathEscape(id)+"/keys", map[string]string{"name": name},
		http.StatusCreated, &out)
	if err == nil && out.Key == "" {
		err = fmt.Errorf("POST /api/v1/merchants/%s/keys: no key in the answer", id)
	}
	return out.Key, err
}

// setWebhook sets merchant id's webhook endpoint.
func (c *client) setWebhook(ctx context.Context, id, endpoint, secret string) error {
	return c.Do(ctx, http.MethodPut, "/api/v1/merchants/"+url.PathEscape(id)+"/webhook",
		map[string]string{"url": endpoint, "secret": secret}, http.StatusOK, nil)
}

// requestPayment asks msisdn to pay amount to the key's merchant, once per reference.
func (c *client) requestPayment(ctx context.Context, msisdn string, amount int64, reference string) (payment, error) {
	var p payment
	err := c.Do(ctx, http.MethodPost, "/api/v1/payment-requests", map[string]any{"msisdn": msisdn, "amount": amount,
		"reference": reference, "description": requestDescription, "ttl": requestTTL}, http.StatusCreated, &p)
	if err == nil && p.ID == "" {
		err = errors.New("POST /api/v1/payment-requests: no payment ID in the answer")
	}
	return p, err
}

func (c *client) trialBalance(ctx context.Context) (balanced bool, raw string, err error) {
	var r json.RawMessage
	if err := c.Do(ctx, http.MethodGet, "/api/v1/ledger/trial-balance", nil, http.StatusOK, &r); err != nil {
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
