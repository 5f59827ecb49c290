package api_test

import (
	"context"
	"net/http/httptest"
	"path/filepath"
	"regexp"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/payswitch/payswitch/api"
	"github.com/payswitch/payswitch/internal/switchtest"
	"github.com/payswitch/payswitch/ledger"
	"github.com/payswitch/payswitch/merchant"
	"github.com/payswitch/payswitch/otp"
	"github.com/payswitch/payswitch/outbox"
	"github.com/payswitch/payswitch/store"
	payswitch "github.com/payswitch/payswitch/switch"
)

// escrowRig is the API over a real engine whose merchants' escrow setting is the real
// merchant.Guarantees, on one SQLite file, served over HTTP on loopback.
type escrowRig struct {
	*merchantRig
	outbox *outbox.Outbox
	shop   ledger.Account
}

func newEscrowRig(t *testing.T) *escrowRig {
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
	g := merchant.NewGuarantees(db, merchant.Options{Now: clock.Now})
	ob := outbox.New(db, clock.Now)
	e, err := payswitch.New(switchtest.DefaultConfig(), payswitch.Deps{DB: db, Ledger: ledger.New(db, clock.Now), OTP: iss,
		Outbox: ob, Now: clock.Now, After: clock.After, Log: zerolog.Nop(), Escrow: g})
	if err != nil {
		t.Fatal(err)
	}
	s, err := api.New(e, api.Config{Tokens: []api.Token{{Name: "ops", Token: opsToken, Role: api.Operator},
		{Name: "aud", Token: audToken, Role: api.Auditor}}, Log: zerolog.Nop(), Now: clock.Now,
		Guarantees: g, Escrow: e})
	if err != nil {
		t.Fatal(err)
	}
	rig := &escrowRig{merchantRig: &merchantRig{t: t, clock: clock, engine: e}, outbox: ob}
	rig.srv = httptest.NewServer(s)
	t.Cleanup(rig.srv.Close)
	if rig.shop, err = e.OpenAccount(ctx, payswitch.OpenAccount{Type: ledger.Merchant, Name: "Shop", Code: "55501"}); err != nil {
		t.Fatal(err)
	}
	return rig
}

var sixDigits = regexp.MustCompile(`\b[0-9]{6}\b`)

// paidInEscrow is a payment of KES 150 to the shop from a new wallet, confirmed by its code.
func (rig *escrowRig) paidInEscrow() *payswitch.Payment {
	rig.t.Helper()
	p := rig.pay("55501", 15000)
	ms, err := rig.outbox.List(context.Background(), p.PayerMSISDN, 1)
	if err != nil || len(ms) != 1 {
		rig.t.Fatalf("code message: %v %v", ms, err)
	}
	out, err := rig.engine.Confirm(context.Background(), payswitch.ChannelSMS, p.PayerMSISDN, "",
		sixDigits.FindString(ms[0].Text))
	if err != nil || !out.OK() || out.Payment.State != payswitch.StateInEscrow {
		rig.t.Fatalf("confirm: %+v %v", out, err)
	}
	return out.Payment
}

func TestMerchantEscrowSetting(t *testing.T) {
	rig := newEscrowRig(t)
	path := "/api/v1/merchants/" + rig.shop.ID
	for _, c := range []struct {
		token, body string
		status      int
		code        string
	}{
		{audToken, `{"escrow": true}`, 403, "forbidden"},
		{opsToken, `{}`, 400, "invalid_request"},
		{opsToken, `{"escrow": "yes"}`, 400, "invalid_request"},
		{opsToken, `{"escrow": true, "tier": 2}`, 400, "invalid_request"},
	} {
		if r := rig.do(c.token, "PATCH", path, c.body); r.status != c.status || r.code() != c.code {
			t.Fatalf("%s: %d %s, want %d %s", c.body, r.status, r.body, c.status, c.code)
		}
	}
	if r := rig.do(opsToken, "PATCH", "/api/v1/merchants/AC-NONE", `{"escrow": true}`); r.status != 404 {
		t.Fatalf("unknown merchant: %d %s", r.status, r.body)
	}
	w := rig.wallet()
	a, err := rig.engine.AccountByMSISDN(context.Background(), w)
	if err != nil {
		t.Fatal(err)
	}
	if r := rig.do(opsToken, "PATCH", "/api/v1/merchants/"+a.ID, `{"escrow": true}`); r.status != 404 {
		t.Fatalf("a wallet as a merchant: %d %s", r.status, r.body)
	}
	if p := rig.pay("55501", 15000); p.Escrow {
		t.Fatal("a payment before escrow was set on is guaranteed")
	}
	r := rig.do(opsToken, "PATCH", path, `{"escrow": true}`)
	if r.status != 200 || r.json["escrow"] != true || r.json["id"] != rig.shop.ID {
		t.Fatalf("escrow on: %d %s", r.status, r.body)
	}
	if p := rig.pay("55501", 15000); !p.Escrow {
		t.Fatal("a payment after escrow was set on is not guaranteed")
	}
	if r := rig.do(opsToken, "PATCH", path, `{"escrow": false}`); r.status != 200 || r.json["escrow"] != false {
		t.Fatalf("escrow off: %d %s", r.status, r.body)
	}
}

func TestSettleEscrowRoute(t *testing.T) {
	rig := newEscrowRig(t)
	if r := rig.do(opsToken, "PATCH", "/api/v1/merchants/"+rig.shop.ID, `{"escrow": true}`); r.status != 200 {
		t.Fatalf("escrow on: %d %s", r.status, r.body)
	}
	p := rig.paidInEscrow()
	if r := rig.do(audToken, "GET", "/api/v1/payments/"+p.ID, ""); r.status != 200 || r.json["state"] != "in_escrow" ||
		r.json["escrow"] != true || r.json["release_at"] != "2026-12-14T09:00:00Z" {
		t.Fatalf("payment in escrow: %d %s", r.status, r.body)
	}
	path := "/api/v1/payments/" + p.ID + "/escrow"
	for _, c := range []struct {
		token, path, body string
		status            int
		code              string
	}{
		{audToken, path, `{"action":"refund","reason":"x"}`, 403, "forbidden"},
		{opsToken, path, `{"action":"keep","reason":"x"}`, 400, "invalid_request"},
		{opsToken, path, `{"action":"refund"}`, 400, "invalid_request"},
		{opsToken, path, `{"action":"refund","reason":"x","amount":5}`, 400, "invalid_request"},
		{opsToken, "/api/v1/payments/BCDFGHJKLM/escrow", `{"action":"refund","reason":"x"}`, 404, "not_found"},
		{opsToken, "/api/v1/payments/nonsense/escrow", `{"action":"refund","reason":"x"}`, 404, "not_found"},
	} {
		if r := rig.do(c.token, "POST", c.path, c.body); r.status != c.status || r.code() != c.code {
			t.Fatalf("%s %s: %d %s, want %d %s", c.path, c.body, r.status, r.body, c.status, c.code)
		}
	}
	r := rig.do(opsToken, "POST", path, `{"action":"refund","reason":"goods never came"}`)
	if r.status != 200 || r.json["state"] != "refunded" {
		t.Fatalf("refund: %d %s", r.status, r.body)
	}
	payer, err := rig.engine.Account(context.Background(), p.PayerAccount)
	if err != nil || payer.Balance.Posted != 1000000 {
		t.Fatalf("payer after refund: %+v %v", payer.Balance, err)
	}
	for _, body := range []string{`{"action":"refund","reason":"again"}`, `{"action":"release","reason":"again"}`} {
		if r := rig.do(opsToken, "POST", path, body); r.status != 409 || r.code() != "not_in_escrow" {
			t.Fatalf("%s after the refund: %d %s", body, r.status, r.body)
		}
	}
	q := rig.paidInEscrow()
	r = rig.do(opsToken, "POST", "/api/v1/payments/"+q.ID+"/escrow", `{"action":"release","reason":"delivered"}`)
	if r.status != 200 || r.json["state"] != "completed" {
		t.Fatalf("release: %d %s", r.status, r.body)
	}
	if shop, err := rig.engine.Account(context.Background(), rig.shop.ID); err != nil || shop.Balance.Posted != 15000 {
		t.Fatalf("shop after release: %+v %v", shop.Balance, err)
	}
	plain := rig.pay("55501", 100)
	if r := rig.do(opsToken, "POST", "/api/v1/payments/"+plain.ID+"/escrow", `{"action":"release","reason":"x"}`); r.status != 409 {
		t.Fatalf("a payment waiting for its code: %d %s", r.status, r.body)
	}
}

// A request to pay passes "escrow" on to the engine; without the parts, the routes are 501.
func TestEscrowRequestAndUnconfigured(t *testing.T) {
	rig := newMerchantRig(t, nil)
	r := rig.do(rig.key1, "POST", "/api/v1/payment-requests",
		`{"msisdn":"`+rig.wallet()+`","amount":500,"reference":"E-1","escrow":true}`)
	if r.status != 201 {
		t.Fatalf("request: %d %s", r.status, r.body)
	}
	if got := rig.requests.got; len(got) != 1 || !got[0].Escrow {
		t.Fatalf("the engine was asked %+v, want escrow", got)
	}
	for _, c := range []struct{ method, path, body string }{
		{"PATCH", "/api/v1/merchants/" + rig.m1.ID, `{"escrow": true}`},
		{"POST", "/api/v1/payments/BCDFGHJKLM/escrow", `{"action":"release","reason":"x"}`},
	} {
		if r := rig.do(opsToken, c.method, c.path, c.body); r.status != 501 || r.code() != "not_configured" {
			t.Fatalf("%s %s unconfigured: %d %s", c.method, c.path, r.status, r.body)
		}
	}
}
