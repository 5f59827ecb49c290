package api_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/payswitch/payswitch/api"
	"github.com/payswitch/payswitch/internal/switchtest"
	"github.com/payswitch/payswitch/ledger"
	"github.com/payswitch/payswitch/merchant"
	"github.com/payswitch/payswitch/otp"
	"github.com/payswitch/payswitch/outbox"
	"github.com/payswitch/payswitch/sales"
	"github.com/payswitch/payswitch/store"
	payswitch "github.com/payswitch/payswitch/switch"
)

// The auditor's token of a merchantRig's configuration; the operator's is opsToken.
const audToken = "aud-token-0123456789"

// merchantRig is the API of a real engine, with the real merchant keys and catalogue,
// on one SQLite file in a temporary directory, served over HTTP on loopback. Requests to
// pay and webhooks are in-test implementations (fakeRequests, fakeWebhooks) of the API's
// interfaces. m1 and m2 are two merchants, each with a live key.
type merchantRig struct {
	t        *testing.T
	srv      *httptest.Server
	clock    *switchtest.Clock
	engine   *payswitch.Engine
	keys     *merchant.Keys
	catalog  *merchant.Catalog
	requests *fakeRequests
	hooks    *fakeWebhooks
	outbox   *outbox.Outbox   // what the engine queued: codes and receipts, in clear
	stores   *merchant.Stores // contract section 11: stores and sales (stores_test.go)
	sales    *sales.Reports
	ledger   *ledger.Ledger
	m1, m2   ledger.Account
	key1     string // m1's key
	key2     string // m2's key
	wallets  int    // wallets opened so far by wallet
}

// newMerchantRig builds a rig; configure, when set, changes the API's configuration
// before the server is made (to leave a part unconfigured, say).
func newMerchantRig(t *testing.T, configure func(*api.Config)) *merchantRig {
	t.Helper()
	ctx := context.Background()
	db, err := store.Open(filepath.Join(t.TempDir(), "api.db"), store.Options{Synchronous: "OFF"},
		ledger.Schema, otp.Schema, outbox.Schema, payswitch.Schema, merchant.Schema)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	clock := switchtest.NewClock(time.Date(2026, 12, 7, 9, 0, 0, 0, time.UTC), 0)
	iss, err := otp.NewIssuer(switchtest.Secret, otp.Config{})
	if err != nil {
		t.Fatal(err)
	}
	ob := outbox.New(db, clock.Now)
	e, err := payswitch.New(switchtest.DefaultConfig(), payswitch.Deps{DB: db, Ledger: ledger.New(db, clock.Now), OTP: iss,
		Outbox: ob, Now: clock.Now, After: clock.After, Log: zerolog.Nop()})
	if err != nil {
		t.Fatal(err)
	}
	opts := merchant.Options{Now: clock.Now}
	rig := &merchantRig{t: t, clock: clock, engine: e, keys: merchant.NewKeys(db, opts), catalog: merchant.NewCatalog(db, opts),
		hooks: &fakeWebhooks{endpoints: map[string]string{}}, outbox: ob}
	rig.requests = &fakeRequests{rig: rig, byRef: map[string]*payswitch.Payment{}}
	rig.ledger = ledger.New(db, clock.Now)
	rig.stores = merchant.NewStores(db, opts, func(s string) (string, error) { return payswitch.NormalizeMSISDN(s, "254") })
	rig.sales = sales.New(db.Reader(), payswitch.PaymentStores, time.UTC)
	cfg := api.Config{Tokens: []api.Token{{Name: "ops", Token: opsToken, Role: api.Operator},
		{Name: "aud", Token: audToken, Role: api.Auditor}}, Log: zerolog.Nop(), Now: clock.Now,
		Keys: rig.keys, Catalog: rig.catalog, Requests: rig.requests, Webhooks: rig.hooks,
		Stores: rig.stores, Sales: rig.sales}
	if configure != nil {
		configure(&cfg)
	}
	s, err := api.New(e, cfg)
	if err != nil {
		t.Fatal(err)
	}
	rig.srv = httptest.NewServer(s)
	t.Cleanup(rig.srv.Close)
	for i, m := range []*ledger.Account{&rig.m1, &rig.m2} {
		if *m, err = e.OpenAccount(ctx, payswitch.OpenAccount{Type: ledger.Merchant, Name: fmt.Sprintf("Shop %d", i+1),
			Code: fmt.Sprintf("5550%d", i+1)}); err != nil {
			t.Fatal(err)
		}
	}
	if _, rig.key1, err = rig.keys.Create(ctx, rig.m1.ID, "till"); err != nil {
		t.Fatal(err)
	}
	if _, rig.key2, err = rig.keys.Create(ctx, rig.m2.ID, "till"); err != nil {
		t.Fatal(err)
	}
	return rig
}

// reply is an API answer: its status, its body as text and, when the body is a JSON
// object, decoded.
type reply struct {
	status int
	body   string
	json   map[string]any
	header http.Header
}

// code is the error code of an error answer.
func (r reply) code() string {
	e, _ := r.json["error"].(map[string]any)
	c, _ := e["code"].(string)
	return c
}

// message is the error message of an error answer.
func (r reply) message() string {
	e, _ := r.json["error"].(map[string]any)
	m, _ := e["message"].(string)
	return m
}

// do sends method path with body (none when "") and token (none when "").
func (rig *merchantRig) do(token, method, path, body string) reply {
	rig.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, rig.srv.URL+path, rd)
	if err != nil {
		rig.t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := rig.srv.Client().Do(req)
	if err != nil {
		rig.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		rig.t.Fatal(err)
	}
	out := reply{status: resp.StatusCode, body: string(b), header: resp.Header}
	if len(b) > 0 {
		if err := json.Unmarshal(b, &out.json); err != nil {
			rig.t.Fatalf("%s %s: %d, body not a JSON object: %q", method, path, resp.StatusCode, b)
		}
		if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
			rig.t.Fatalf("%s %s: content type %q", method, path, ct)
		}
	}
	return out
}

// wallet opens a new wallet with KES 10,000 and returns its number.
func (rig *merchantRig) wallet() string {
	rig.t.Helper()
	rig.wallets++
	msisdn := fmt.Sprintf("2547000%05d", rig.wallets)
	ctx := context.Background()
	a, err := rig.engine.OpenAccount(ctx, payswitch.OpenAccount{Type: ledger.Wallet, Name: "W", MSISDN: msisdn})
	if err != nil {
		rig.t.Fatal(err)
	}
	if _, err := rig.engine.Deposit(ctx, payswitch.Deposit{Account: a.ID, Amount: 1000000, Reference: "seed-" + msisdn}); err != nil {
		rig.t.Fatal(err)
	}
	return msisdn
}

// pay starts a payment of amount from a new wallet to the merchant with code (by SMS,
// waiting for its code) and returns it.
func (rig *merchantRig) pay(code string, amount int64) *payswitch.Payment {
	rig.t.Helper()
	out, err := rig.engine.Request(context.Background(), payswitch.Request{Channel: payswitch.ChannelSMS,
		Type: payswitch.MerchantPayment, Payer: rig.wallet(), Merchant: code, Amount: amount})
	if err != nil || !out.OK() {
		rig.t.Fatalf("pay %s: %+v %v", code, out, err)
	}
	return out.Payment
}

// Numbers for which fakeRequests refuses as the engine would.
const (
	busyNumber    = "254799000001"
	stoppedNumber = "254799000002"
	limitedNumber = "254799000003"
	blockedNumber = "254799000004" // graded block by the risk rules
)

// fakeRequests starts requests to pay as the engine's RequestPayment will, near enough
// for the API: a merchant's request becomes a real payment by the engine (from the SMS
// channel, which the API does not look at), priced through the real catalogue when it
// has items; the same merchant and reference again return the same payment; three
// numbers are refused.
type fakeRequests struct {
	rig   *merchantRig
	mu    sync.Mutex // guards byRef and got
	byRef map[string]*payswitch.Payment
	got   []payswitch.PaymentRequest
}

var _ api.Requests = (*fakeRequests)(nil)

func (f *fakeRequests) RequestPayment(ctx context.Context, r payswitch.PaymentRequest) (*payswitch.Payment, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.got = append(f.got, r)
	switch r.MSISDN {
	case busyNumber:
		return nil, fmt.Errorf("%w: %s", payswitch.ErrPayerBusy, payswitch.Mask(r.MSISDN))
	case stoppedNumber:
		return nil, payswitch.ErrPayerStopped
	case limitedNumber:
		return nil, fmt.Errorf("%w: try again in a minute", payswitch.ErrRateLimited)
	case blockedNumber:
		return nil, payswitch.ErrRequestBlocked
	}
	key := r.Merchant + "/" + r.Reference
	if p, ok := f.byRef[key]; ok {
		return p, nil
	}
	if r.Type == payswitch.AirtimePayment {
		p := &payswitch.Payment{ID: "AIRTIME001", Type: payswitch.AirtimePayment, Channel: payswitch.ChannelAPI,
			State: payswitch.StateRequested, PayerMSISDN: r.MSISDN, TargetMSISDN: r.MSISDN, Amount: r.Amount, Currency: "KES"}
		f.byRef[key] = p
		return p, nil
	}
	amount := r.Amount
	for _, it := range r.Items {
		p, err := f.rig.catalog.Product(ctx, r.Merchant, it.Product)
		if err != nil {
			return nil, err
		}
		amount += p.Price * it.Quantity
	}
	m, err := f.rig.engine.Account(ctx, r.Merchant)
	if err != nil {
		return nil, err
	}
	out, err := f.rig.engine.Request(ctx, payswitch.Request{Channel: payswitch.ChannelSMS, Type: payswitch.MerchantPayment,
		Payer: r.MSISDN, Merchant: m.Code, Amount: amount})
	if err != nil {
		return nil, err
	}
	if !out.OK() {
		return nil, fmt.Errorf("%w: %s", payswitch.ErrInvalid, out.Problem)
	}
	f.byRef[key] = out.Payment
	return out.Payment, nil
}

// last is the last request the fake was asked for.
func (f *fakeRequests) last() payswitch.PaymentRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.got) == 0 {
		return payswitch.PaymentRequest{}
	}
	return f.got[len(f.got)-1]
}

// asked is how many requests the fake was asked for.
func (f *fakeRequests) asked() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.got)
}

// fakeWebhooks keeps endpoints in memory, refuses a secret shorter than 16 bytes as the
// webhook package will (with an error that says InvalidInput), and lists two
// deliveries for every merchant.
type fakeWebhooks struct {
	mu        sync.Mutex // guards endpoints and limit
	endpoints map[string]string
	limit     int // the limit Deliveries was last asked for
}

var _ api.Webhooks = (*fakeWebhooks)(nil)

type invalidWebhook struct{ msg string }

func (e invalidWebhook) Error() string      { return "webhook: " + e.msg }
func (e invalidWebhook) InvalidInput() bool { return true }

var errWebhookStore = errors.New("webhook: the store is on fire")

func (f *fakeWebhooks) SetEndpoint(_ context.Context, merchantID, url, secret string) error {
	if len(secret) < 16 {
		return fmt.Errorf("set endpoint: %w", invalidWebhook{"secret: at least 16 bytes"})
	}
	if strings.Contains(url, "fire") {
		return errWebhookStore
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.endpoints[merchantID] = url
	return nil
}

func (f *fakeWebhooks) Deliveries(_ context.Context, merchantID string, limit int) ([]api.WebhookDelivery, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.limit = limit
	at := time.Date(2026, 12, 7, 9, 0, 0, 0, time.UTC)
	return []api.WebhookDelivery{
		{EventID: "ev_2", Type: "payment.completed", State: "pending", Attempt: 2, Status: 503, Error: "503 Service Unavailable",
			At: at.Add(time.Minute), NextAt: at.Add(3 * time.Minute)},
		{EventID: "ev_1", Type: "request.declined", State: "delivered", Attempt: 1, Status: 200, At: at},
	}, nil
}
