package api_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/payswitch/payswitch/api"
	payswitch "github.com/payswitch/payswitch/switch"
)

func TestPaymentRequestRoutes(t *testing.T) {
	rig := newMerchantRig(t, nil)
	ctx := context.Background()
	if _, err := rig.catalog.Add(ctx, rig.m1.ID, payswitch.Product{Code: "12", Name: "Sugar 1kg", Price: 15000}); err != nil {
		t.Fatal(err)
	}
	const path = "/api/v1/payment-requests"
	payer := rig.wallet()

	body := `{"msisdn":"` + payer + `","amount":15000,"reference":"INV-7","description":"Order 7","ttl":"10m"}`
	r := rig.do(rig.key1, "POST", path, body)
	if r.status != http.StatusCreated || r.json["payee"] != rig.m1.ID || r.json["amount"] != 15000.0 {
		t.Fatalf("a merchant's request: %d %s", r.status, r.body)
	}
	id, _ := r.json["id"].(string)
	want := payswitch.PaymentRequest{Merchant: rig.m1.ID, Type: payswitch.MerchantPayment, MSISDN: payer, Amount: 15000,
		Reference: "INV-7", Description: "Order 7", TTL: 10 * time.Minute}
	if got := rig.requests.last(); got.Merchant != want.Merchant || got.Type != want.Type || got.MSISDN != want.MSISDN ||
		got.Amount != want.Amount || got.Reference != want.Reference || got.Description != want.Description ||
		got.TTL != want.TTL || got.Operator || got.Items != nil {
		t.Fatalf("the engine was asked for %+v, want %+v", got, want)
	}
	// The same reference again: 201 with the same payment.
	if r := rig.do(rig.key1, "POST", path, body); r.status != http.StatusCreated || r.json["id"] != id {
		t.Fatalf("the same reference again: %d %s, want 201 with %s", r.status, r.body, id)
	}
	// Naming its own merchant is the same as naming none.
	if r := rig.do(rig.key1, "POST", path, `{"merchant":"`+rig.m1.ID+`","msisdn":"`+payer+`","amount":15000,"reference":"INV-7"}`); r.status != http.StatusCreated || r.json["id"] != id {
		t.Fatalf("naming its own merchant: %d %s", r.status, r.body)
	}

	// Reading it back: GET /api/v1/payment-requests/{id} and /api/v1/payments/{id}.
	for _, p := range []string{path + "/" + id, "/api/v1/payments/" + id} {
		for _, tok := range []string{rig.key1, opsToken, audToken} {
			if r := rig.do(tok, "GET", p, ""); r.status != http.StatusOK || r.json["id"] != id {
				t.Errorf("GET %s: %d %s", p, r.status, r.body)
			}
		}
		if r := rig.do(rig.key2, "GET", p, ""); r.status != http.StatusNotFound || r.code() != "not_found" {
			t.Errorf("another merchant's GET %s: %d %s", p, r.status, r.body)
		}
	}

	// Items are priced by the catalogue behind the engine.
	r = rig.do(rig.key1, "POST", path, `{"msisdn":"`+rig.wallet()+`","items":[{"product":"12","quantity":2},{"product":"12"}],"reference":"INV-8"}`)
	if r.status != http.StatusCreated || r.json["amount"] != 45000.0 {
		t.Fatalf("a request with items: %d %s", r.status, r.body)
	}
	if got := rig.requests.last().Items; len(got) != 2 || got[0] != (payswitch.ItemRequest{Product: "12", Quantity: 2}) ||
		got[1] != (payswitch.ItemRequest{Product: "12", Quantity: 1}) {
		t.Fatalf("items asked for: %+v, want 12×2 and 12×1 (the default quantity)", got)
	}

	// An operator names the merchant; an airtime reminder names none.
	r = rig.do(opsToken, "POST", path, `{"merchant":"`+rig.m2.ID+`","msisdn":"`+rig.wallet()+`","amount":500,"reference":"OPS-1"}`)
	if r.status != http.StatusCreated || r.json["payee"] != rig.m2.ID || !rig.requests.last().Operator {
		t.Fatalf("an operator's request for m2: %d %s (operator %v)", r.status, r.body, rig.requests.last().Operator)
	}
	r = rig.do(opsToken, "POST", path, `{"type":"airtime","msisdn":"254700000555","amount":500,"reference":"AIR-1"}`)
	if last := rig.requests.last(); r.status != http.StatusCreated || last.Type != payswitch.AirtimePayment || last.Merchant != "" {
		t.Fatalf("an airtime reminder: %d %s, asked %+v", r.status, r.body, last)
	}

	asked := rig.requests.asked()
	for _, tc := range []struct {
		name, token, body string
		status            int
		code              string
	}{
		{"another merchant's", rig.key1, `{"merchant":"` + rig.m2.ID + `","msisdn":"254700000555","amount":500,"reference":"X"}`, 404, "not_found"},
		{"a merchant's airtime", rig.key1, `{"type":"airtime","msisdn":"254700000555","amount":500,"reference":"X"}`, 403, "forbidden"},
		{"an auditor's", audToken, `{"merchant":"` + rig.m1.ID + `","msisdn":"254700000555","amount":500,"reference":"X"}`, 403, "forbidden"},
		{"an operator's without merchant", opsToken, `{"msisdn":"254700000555","amount":500,"reference":"X"}`, 400, "invalid_request"},
		{"a wallet as merchant", opsToken, `{"merchant":"` + rig.walletAccount() + `","msisdn":"254700000555","amount":500,"reference":"X"}`, 404, "not_found"},
		{"an unknown merchant", opsToken, `{"merchant":"ACNOPE","msisdn":"254700000555","amount":500,"reference":"X"}`, 404, "not_found"},
		{"airtime with a merchant", opsToken, `{"type":"airtime","merchant":"` + rig.m1.ID + `","msisdn":"254700000555","amount":500,"reference":"X"}`, 400, "invalid_request"},
		{"an unknown type", rig.key1, `{"type":"refund","msisdn":"254700000555","amount":500,"reference":"X"}`, 400, "invalid_request"},
		{"no reference", rig.key1, `{"msisdn":"254700000555","amount":500}`, 400, "invalid_request"},
		{"no msisdn", rig.key1, `{"amount":500,"reference":"X"}`, 400, "invalid_request"},
		{"no amount nor items", rig.key1, `{"msisdn":"254700000555","reference":"X"}`, 400, "invalid_request"},
		{"a negative amount", rig.key1, `{"msisdn":"254700000555","amount":-5,"reference":"X"}`, 400, "invalid_request"},
		{"amount and items", rig.key1, `{"msisdn":"254700000555","amount":500,"items":[{"product":"12"}],"reference":"X"}`, 400, "invalid_request"},
		{"a zero quantity", rig.key1, `{"msisdn":"254700000555","items":[{"product":"12","quantity":0}],"reference":"X"}`, 400, "invalid_request"},
		{"a bad product code", rig.key1, `{"msisdn":"254700000555","items":[{"product":"sugar"}],"reference":"X"}`, 400, "invalid_request"},
		{"too many items", rig.key1, `{"msisdn":"254700000555","items":[` + strings.Repeat(`{"product":"12"},`, 50) + `{"product":"12"}],"reference":"X"}`, 400, "invalid_request"},
		{"a ttl in words", rig.key1, `{"msisdn":"254700000555","amount":500,"reference":"X","ttl":"ten minutes"}`, 400, "invalid_request"},
		{"a negative ttl", rig.key1, `{"msisdn":"254700000555","amount":500,"reference":"X","ttl":"-5m"}`, 400, "invalid_request"},
		{"a ttl in seconds as a number", rig.key1, `{"msisdn":"254700000555","amount":500,"reference":"X","ttl":600}`, 400, "invalid_request"},
		{"an unknown field", rig.key1, `{"msisdn":"254700000555","amount":500,"reference":"X","callback":"https://x"}`, 400, "invalid_request"},
		{"bad JSON", rig.key1, `{"msisdn":`, 400, "invalid_request"},
		{"an array", rig.key1, `[{"msisdn":"254700000555"}]`, 400, "invalid_request"},
	} {
		if r := rig.do(tc.token, "POST", path, tc.body); r.status != tc.status || r.code() != tc.code {
			t.Errorf("%s: %d %s, want %d %s", tc.name, r.status, r.body, tc.status, tc.code)
		}
	}
	if n := rig.requests.asked(); n != asked {
		t.Fatalf("refused requests reached the engine: %d more", n-asked)
	}

	// The engine's refusals, each with its status.
	for _, tc := range []struct {
		name, body string
		status     int
		code       string
	}{
		{"an unknown product", `{"msisdn":"` + rig.wallet() + `","items":[{"product":"99"}],"reference":"E1"}`, 404, "unknown_product"},
		{"a busy payer", `{"msisdn":"` + busyNumber + `","amount":500,"reference":"E2"}`, 409, "payer_busy"},
		{"a payer who stopped the merchant", `{"msisdn":"` + stoppedNumber + `","amount":500,"reference":"E3"}`, 403, "payer_stopped"},
		{"too many requests", `{"msisdn":"` + limitedNumber + `","amount":500,"reference":"E4"}`, 429, "rate_limited"},
		{"a request the risk rules block", `{"msisdn":"` + blockedNumber + `","amount":500,"reference":"E5"}`, 403, "request_blocked"},
	} {
		if r := rig.do(rig.key1, "POST", path, tc.body); r.status != tc.status || r.code() != tc.code {
			t.Errorf("%s: %d %s, want %d %s", tc.name, r.status, r.body, tc.status, tc.code)
		}
	}
	if r := rig.do(rig.key1, "POST", path, `{"msisdn":"`+busyNumber+`","amount":500,"reference":"E2"}`); strings.Contains(r.body, busyNumber) {
		t.Fatalf("an answer shows the whole number: %s", r.body)
	}
	// A blocked request's answer does not say which list matched, the number's or the merchant's.
	blocked := rig.do(rig.key1, "POST", path, `{"msisdn":"`+blockedNumber+`","amount":500,"reference":"E5"}`)
	if msg := strings.ToLower(blocked.body); strings.Contains(msg, "list") || strings.Contains(msg, "merchant") ||
		strings.Contains(msg, "number") || !strings.Contains(msg, "cannot be sent") {
		t.Fatalf("blocked answer %s", blocked.body)
	}
}

func TestPaymentRequestsNotConfigured(t *testing.T) {
	rig := newMerchantRig(t, func(c *api.Config) { c.Requests = nil })
	r := rig.do(rig.key1, "POST", "/api/v1/payment-requests", `{"msisdn":"254700000555","amount":500,"reference":"X"}`)
	if r.status != http.StatusNotImplemented || r.code() != "not_configured" {
		t.Fatalf("%d %s, want 501", r.status, r.body)
	}
}
