package api_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/payswitch/payswitch/api"
	payswitch "github.com/payswitch/payswitch/switch"
)

// page is one answer of GET /api/v1/merchants/{id}/payments.
type page struct {
	Payments []struct {
		ID    string `json:"id"`
		Payee string `json:"payee"`
		State string `json:"state"`
	} `json:"payments"`
	NextCursor *string `json:"next_cursor"`
}

// allPages follows next_cursor from query's first page to its last and returns the IDs
// in the order the pages gave them.
func (rig *merchantRig) allPages(token, merchantID, query string) []string {
	rig.t.Helper()
	var ids []string
	cursor := ""
	for range 50 {
		q := query
		if cursor != "" {
			q += "&cursor=" + url.QueryEscape(cursor)
		}
		r := rig.do(token, "GET", "/api/v1/merchants/"+merchantID+"/payments?"+q, "")
		if r.status != http.StatusOK {
			rig.t.Fatalf("page %q: %d %s", q, r.status, r.body)
		}
		if _, ok := r.json["next_cursor"]; !ok {
			rig.t.Fatalf("no next_cursor in %s", r.body)
		}
		var p page
		if err := json.Unmarshal([]byte(r.body), &p); err != nil {
			rig.t.Fatal(err)
		}
		for _, x := range p.Payments {
			if x.Payee != merchantID {
				rig.t.Fatalf("payment %s to %s listed for %s", x.ID, x.Payee, merchantID)
			}
			ids = append(ids, x.ID)
		}
		if p.NextCursor == nil {
			return ids
		}
		cursor = *p.NextCursor
	}
	rig.t.Fatal("the pages never end")
	return nil
}

func TestMerchantPaymentsRoute(t *testing.T) {
	rig := newMerchantRig(t, nil)
	start := rig.clock.Now()
	// Five payments to m1 at two instants (three share one), one to m2 between them.
	var ids []string
	for i := range 5 {
		if i == 3 {
			rig.pay("55502", 700)
			rig.clock.Advance(time.Minute)
		}
		ids = append(ids, rig.pay("55501", 1000+int64(i)).ID)
	}
	// Newest first: the later minute first, and within a minute the greater ID first
	// (IDs made by one engine grow with time).
	newestFirst := []string{ids[4], ids[3], ids[2], ids[1], ids[0]}
	for _, limit := range []string{"1", "2", "5", "100"} {
		if got := rig.allPages(rig.key1, rig.m1.ID, "limit="+limit); strings.Join(got, " ") != strings.Join(newestFirst, " ") {
			t.Fatalf("limit %s: %v, want %v", limit, got, newestFirst)
		}
	}
	if got := rig.allPages(audToken, rig.m1.ID, "limit=2"); len(got) != 5 {
		t.Fatalf("an auditor's pages: %v", got)
	}
	if got := rig.allPages(rig.key2, rig.m2.ID, ""); len(got) != 1 {
		t.Fatalf("m2's own: %v", got)
	}
	from := url.QueryEscape(start.Add(time.Minute).Format(time.RFC3339))
	if got := rig.allPages(opsToken, rig.m1.ID, "limit=1&from="+from); strings.Join(got, " ") != strings.Join(newestFirst[:2], " ") {
		t.Fatalf("from the second minute: %v", got)
	}
	to := url.QueryEscape(start.Add(time.Minute).Format(time.RFC3339))
	if got := rig.allPages(opsToken, rig.m1.ID, "to="+to); strings.Join(got, " ") != strings.Join(newestFirst[2:], " ") {
		t.Fatalf("before the second minute: %v", got)
	}
	if _, err := rig.engine.Cancel(context.Background(), payswitch.ChannelSMS, "254700000001", ids[0]); err != nil {
		t.Fatal(err)
	}
	if got := rig.allPages(rig.key1, rig.m1.ID, "state=cancelled"); len(got) != 1 || got[0] != ids[0] {
		t.Fatalf("cancelled ones: %v", got)
	}

	base := "/api/v1/merchants/" + rig.m1.ID + "/payments"
	for _, tc := range []struct {
		name, token, path string
		status            int
		code              string
	}{
		{"another merchant's", rig.key2, base, 404, "not_found"},
		{"a wallet's", opsToken, "/api/v1/merchants/" + rig.walletAccount() + "/payments", 404, "not_found"},
		{"a limit of 0", rig.key1, base + "?limit=0", 400, "invalid_request"},
		{"a limit of 101", rig.key1, base + "?limit=101", 400, "invalid_request"},
		{"a date without a time", rig.key1, base + "?from=2026-12-07", 400, "invalid_request"},
		{"a made-up cursor", rig.key1, base + "?cursor=abc", 400, "invalid_request"},
		{"to before from", rig.key1, base + "?from=2026-12-08T00:00:00Z&to=2026-12-07T00:00:00Z", 400, "invalid_request"},
		{"no token", "", base, 401, "unauthorized"},
	} {
		if r := rig.do(tc.token, "GET", tc.path, ""); r.status != tc.status || r.code() != tc.code {
			t.Errorf("%s: %d %s, want %d %s", tc.name, r.status, r.body, tc.status, tc.code)
		}
	}
}

// TestAnotherMerchantsLooksUnknown: whatever a key asks of another merchant answers
// exactly as something that does not exist, so that it learns nothing of it.
func TestAnotherMerchantsLooksUnknown(t *testing.T) {
	rig := newMerchantRig(t, nil)
	p := rig.pay("55501", 1000)
	same := func(what string, theirs, unknown reply, theirID, unknownID string) {
		t.Helper()
		if theirs.status != http.StatusNotFound || theirs.status != unknown.status ||
			strings.ReplaceAll(theirs.body, theirID, "ID") != strings.ReplaceAll(unknown.body, unknownID, "ID") {
			t.Errorf("%s: another merchant's answers %d %s; an unknown one %d %s", what, theirs.status, theirs.body, unknown.status, unknown.body)
		}
	}
	for _, route := range []struct{ method, path, body string }{
		{"GET", "/payments", ""},
		{"GET", "/products", ""},
		{"POST", "/products", `{"code":"1","name":"x","price":1}`},
		{"DELETE", "/products/1", ""},
		{"PUT", "/webhook", `{"url":"https://x.example/","secret":"0123456789abcdef"}`},
		{"GET", "/webhook/deliveries", ""},
	} {
		theirs := rig.do(rig.key2, route.method, "/api/v1/merchants/"+rig.m1.ID+route.path, route.body)
		unknown := rig.do(rig.key2, route.method, "/api/v1/merchants/ACUNKNOWN1"+route.path, route.body)
		same(route.method+" "+route.path, theirs, unknown, rig.m1.ID, "ACUNKNOWN1")
	}
	same("an account", rig.do(rig.key2, "GET", "/api/v1/accounts/"+rig.m1.ID, ""),
		rig.do(opsToken, "GET", "/api/v1/accounts/ACUNKNOWN1", ""), rig.m1.ID, "ACUNKNOWN1")
	w := rig.walletAccount()
	same("a wallet's account", rig.do(rig.key2, "GET", "/api/v1/accounts/"+w, ""),
		rig.do(rig.key2, "GET", "/api/v1/accounts/ACUNKNOWN1", ""), w, "ACUNKNOWN1")
	same("a payment", rig.do(rig.key2, "GET", "/api/v1/payments/"+p.ID, ""),
		rig.do(rig.key2, "GET", "/api/v1/payments/ZZZZZZZZZZ", ""), p.ID, "ZZZZZZZZZZ")
	same("a request", rig.do(rig.key2, "GET", "/api/v1/payment-requests/"+p.ID, ""),
		rig.do(rig.key2, "GET", "/api/v1/payment-requests/ZZZZZZZZZZ", ""), p.ID, "ZZZZZZZZZZ")
	if r := rig.do(rig.key1, "GET", "/api/v1/payments/"+p.ID, ""); r.status != http.StatusOK {
		t.Fatalf("its own payment: %d %s", r.status, r.body)
	}
}

func TestWebhookRoutes(t *testing.T) {
	rig := newMerchantRig(t, nil)
	path := "/api/v1/merchants/" + rig.m1.ID + "/webhook"
	const secret = "whsec-0123456789abcdef"
	r := rig.do(rig.key1, "PUT", path, `{"url":"https://shop.example/payswitch","secret":"`+secret+`"}`)
	if r.status != http.StatusOK || r.json["url"] != "https://shop.example/payswitch" || strings.Contains(r.body, secret) {
		t.Fatalf("set: %d %s", r.status, r.body)
	}
	if got := rig.hooks.endpoints[rig.m1.ID]; got != "https://shop.example/payswitch" {
		t.Fatalf("endpoint kept: %q", got)
	}
	if r := rig.do(opsToken, "PUT", path, `{"url":"http://10.0.0.5:8080/hook","secret":"`+secret+`"}`); r.status != http.StatusOK {
		t.Fatalf("an operator sets it: %d %s", r.status, r.body)
	}
	for _, tc := range []struct {
		name, token, body string
		status            int
		code              string
	}{
		{"ftp", rig.key1, `{"url":"ftp://shop.example/","secret":"` + secret + `"}`, 400, "invalid_request"},
		{"no scheme", rig.key1, `{"url":"shop.example/hook","secret":"` + secret + `"}`, 400, "invalid_request"},
		{"no host", rig.key1, `{"url":"https:///hook","secret":"` + secret + `"}`, 400, "invalid_request"},
		{"a javascript URL", rig.key1, `{"url":"javascript:alert(1)","secret":"` + secret + `"}`, 400, "invalid_request"},
		{"credentials in the URL", rig.key1, `{"url":"https://user:pw@shop.example/","secret":"` + secret + `"}`, 400, "invalid_request"},
		{"a long URL", rig.key1, `{"url":"https://shop.example/` + strings.Repeat("a", 2048) + `","secret":"` + secret + `"}`, 400, "invalid_request"},
		{"no URL", rig.key1, `{"secret":"` + secret + `"}`, 400, "invalid_request"},
		{"no secret", rig.key1, `{"url":"https://shop.example/"}`, 400, "invalid_request"},
		{"a secret the webhooks refuse", rig.key1, `{"url":"https://shop.example/","secret":"short"}`, 400, "invalid_request"},
		{"the webhooks fail", rig.key1, `{"url":"https://fire.example/","secret":"` + secret + `"}`, 500, "internal"},
		{"an unknown field", rig.key1, `{"url":"https://shop.example/","secret":"` + secret + `","events":["x"]}`, 400, "invalid_request"},
		{"an auditor", audToken, `{"url":"https://shop.example/","secret":"` + secret + `"}`, 403, "forbidden"},
		{"POST instead of PUT", rig.key1, "", 405, "method_not_allowed"},
	} {
		method := "PUT"
		if tc.body == "" {
			method = "POST"
		}
		if r := rig.do(tc.token, method, path, tc.body); r.status != tc.status || r.code() != tc.code {
			t.Errorf("%s: %d %s, want %d %s", tc.name, r.status, r.body, tc.status, tc.code)
		}
	}
	if r := rig.do(rig.key1, "PUT", path, `{"url":"https://shop.example/","secret":"short"}`); !strings.Contains(r.message(), "at least 16") {
		t.Fatalf("the webhooks' reason is not passed on: %s", r.body)
	}
	if got := rig.hooks.endpoints[rig.m1.ID]; got != "http://10.0.0.5:8080/hook" {
		t.Fatalf("a refused PUT changed the endpoint to %q", got)
	}

	r = rig.do(rig.key1, "GET", path+"/deliveries?limit=5", "")
	if r.status != http.StatusOK || rig.hooks.limit != 5 {
		t.Fatalf("deliveries: %d %s (limit %d)", r.status, r.body, rig.hooks.limit)
	}
	var got struct {
		Deliveries []map[string]any `json:"deliveries"`
	}
	if err := json.Unmarshal([]byte(r.body), &got); err != nil || len(got.Deliveries) != 2 {
		t.Fatalf("deliveries: %s %v", r.body, err)
	}
	d := got.Deliveries[0]
	if d["event_id"] != "ev_2" || d["type"] != "payment.completed" || d["state"] != "pending" || d["attempt"] != 2.0 ||
		d["status"] != 503.0 || d["at"] != "2026-12-07T09:01:00Z" || d["next_at"] != "2026-12-07T09:03:00Z" {
		t.Fatalf("first delivery: %v", d)
	}
	if _, ok := got.Deliveries[1]["next_at"]; ok {
		t.Fatalf("a delivered event has a next attempt: %v", got.Deliveries[1])
	}
	if r := rig.do(audToken, "GET", path+"/deliveries", ""); r.status != http.StatusOK || rig.hooks.limit != 20 {
		t.Fatalf("an auditor's deliveries: %d (limit %d)", r.status, rig.hooks.limit)
	}
	if r := rig.do(rig.key1, "GET", path+"/deliveries?limit=500", ""); r.status != http.StatusBadRequest {
		t.Fatalf("a limit of 500: %d", r.status)
	}
}

func TestWebhooksNotConfigured(t *testing.T) {
	rig := newMerchantRig(t, func(c *api.Config) { c.Webhooks = nil })
	path := "/api/v1/merchants/" + rig.m1.ID + "/webhook"
	if r := rig.do(rig.key1, "PUT", path, `{"url":"https://x.example/","secret":"0123456789abcdef"}`); r.status != http.StatusNotImplemented {
		t.Fatalf("PUT: %d %s", r.status, r.body)
	}
	if r := rig.do(rig.key1, "GET", path+"/deliveries", ""); r.status != http.StatusNotImplemented {
		t.Fatalf("GET: %d %s", r.status, r.body)
	}
}
