package main

import (
	"net"
	"net/http"
	"testing"
)

// TestMerchantAPIRefusals sends what a careless or hostile merchant might through a
// running switch's API: another merchant's things, a revoked key, operator routes,
// products and quantities that cannot be sold, numbers that cannot pay, bad ttls and
// webhook URLs, and requests to a number that is busy, that said STOP, or that had its
// day's worth. Each gets its status and error code, and no money moves.
func TestMerchantAPIRefusals(t *testing.T) {
	s := startSwitchWith(t, "5m", "requests:\n  per_number_per_day: 4\n")
	const carol, bob2 = "254700000003", "254700000004"
	w := s.open(map[string]string{"type": "wallet", "msisdn": alice, "name": "Alice"})
	c := s.open(map[string]string{"type": "wallet", "msisdn": carol, "name": "Carol"})
	frozen := s.open(map[string]string{"type": "wallet", "msisdn": bob2, "name": "Bob"})
	a := s.phone(alice)
	s.deposit(w.ID, 100000, "CASHIN-1")
	a.expect("deposited")
	if code := s.call("PATCH", "/api/v1/accounts/"+frozen.ID, opsToken, map[string]string{"status": "frozen", "reason": "lost phone"}, nil); code != http.StatusOK {
		t.Fatalf("freeze: %d", code)
	}
	ma := s.openShop("55501", "Mama Mboga", "")
	mb := s.openShop("55502", "Duka", "")
	ma.addProduct("12", "Sugar 1kg", 15000)
	ma.addProduct("99", "Motorbike", 15000000) // the largest payment
	other := ma.request(map[string]any{"msisdn": carol, "amount": 5000, "reference": "CAROL-1"})

	revoked := s.openShop("55503", "Old Shop", "")
	if code := s.call("DELETE", "/api/v1/merchants/"+revoked.id+"/keys/"+revoked.keyID, opsToken, nil, nil); code != http.StatusNoContent {
		t.Fatalf("revoke: %d", code)
	}
	req := func(body map[string]any) map[string]any {
		out := map[string]any{"msisdn": alice, "amount": 5000, "reference": "R-1"}
		for k, v := range body {
			out[k] = v
		}
		return out
	}
	item := func(product string, quantity int64) map[string]any {
		return map[string]any{"amount": 0, "items": []map[string]any{{"product": product, "quantity": quantity}}}
	}
	before := s.books(w.ID, c.ID, frozen.ID, ma.id, mb.id)
	A := "/api/v1/merchants/" + ma.id
	_, httpPort, _ := net.SplitHostPort(s.app.httpAddr)
	for _, tc := range []struct {
		name         string
		method, path string
		key          string
		body         any
		want         int
		code         string
	}{
		{"another's products", "GET", A + "/products", mb.key, nil, 404, "not_found"},
		{"another's product added", "POST", A + "/products", mb.key, map[string]any{"code": "13", "name": "Salt", "price": 100}, 404, "not_found"},
		{"another's webhook", "PUT", A + "/webhook", mb.key, map[string]string{"url": "https://b.example/hook", "secret": hookSecret}, 404, "not_found"},
		{"another's deliveries", "GET", A + "/webhook/deliveries", mb.key, nil, 404, "not_found"},
		{"another's payments", "GET", A + "/payments", mb.key, nil, 404, "not_found"},
		{"another's account", "GET", "/api/v1/accounts/" + ma.id, mb.key, nil, 404, "not_found"},
		{"another's request", "GET", "/api/v1/payment-requests/" + other.ID, mb.key, nil, 404, "not_found"},
		{"another's payment", "GET", "/api/v1/payments/" + other.ID, mb.key, nil, 404, "not_found"},
		{"a request as another", "POST", "/api/v1/payment-requests", mb.key, req(map[string]any{"merchant": ma.id}), 404, "not_found"},
		{"revoked key", "GET", "/api/v1/merchants/" + revoked.id + "/products", revoked.key, nil, 401, "unauthorized"},
		{"deposit", "POST", "/api/v1/deposits", ma.key, map[string]any{"account": ma.id, "amount": 100, "reference": "X"}, 403, "forbidden"},
		{"open an account", "POST", "/api/v1/accounts", ma.key, map[string]string{"type": "wallet", "msisdn": "254700000009", "name": "X"}, 403, "forbidden"},
		{"freeze", "PATCH", "/api/v1/accounts/" + w.ID, ma.key, map[string]string{"status": "frozen"}, 403, "forbidden"},
		{"own keys", "POST", A + "/keys", ma.key, map[string]string{"name": "more"}, 403, "forbidden"},
		{"trial balance", "GET", "/api/v1/ledger/trial-balance", ma.key, nil, 403, "forbidden"},
		{"payments by number", "GET", "/api/v1/payments?msisdn=" + alice, ma.key, nil, 403, "forbidden"},
		{"reverse", "POST", "/api/v1/payments/" + other.ID + "/reverse", ma.key, map[string]string{"reason": "x", "reference": "y"}, 403, "forbidden"},
		{"unknown product", "POST", "/api/v1/payment-requests", ma.key, req(item("13", 1)), 404, "unknown_product"},
		{"quantity 0", "POST", "/api/v1/payment-requests", ma.key, req(item("12", 0)), 400, "invalid_request"},
		{"quantity 10^12", "POST", "/api/v1/payment-requests", ma.key, req(item("12", 1_000_000_000_000)), 400, "invalid_request"},
		{"price × quantity over the largest payment", "POST", "/api/v1/payment-requests", ma.key, req(item("99", 2)), 400, "invalid_request"},
		{"amount and items", "POST", "/api/v1/payment-requests", ma.key, req(map[string]any{"items": []map[string]any{{"product": "12"}}}), 400, "invalid_request"},
		{"amount 0", "POST", "/api/v1/payment-requests", ma.key, req(map[string]any{"amount": 0}), 400, "invalid_request"},
		{"amount over the largest payment", "POST", "/api/v1/payment-requests", ma.key, req(map[string]any{"amount": 15000001}), 400, "invalid_request"},
		{"unknown number", "POST", "/api/v1/payment-requests", ma.key, req(map[string]any{"msisdn": "254700000077"}), 400, "invalid_request"},
		{"not a number", "POST", "/api/v1/payment-requests", ma.key, req(map[string]any{"msisdn": "alice"}), 400, "invalid_request"},
		{"frozen wallet", "POST", "/api/v1/payment-requests", ma.key, req(map[string]any{"msisdn": bob2}), 400, "invalid_request"},
		{"ttl 0s", "POST", "/api/v1/payment-requests", ma.key, req(map[string]any{"ttl": "0s"}), 400, "invalid_request"},
		{"ttl 30s", "POST", "/api/v1/payment-requests", ma.key, req(map[string]any{"ttl": "30s"}), 400, "invalid_request"},
		{"ttl 8760h", "POST", "/api/v1/payment-requests", ma.key, req(map[string]any{"ttl": "8760h"}), 400, "invalid_request"},
		{"no reference", "POST", "/api/v1/payment-requests", ma.key, req(map[string]any{"reference": ""}), 400, "invalid_request"},
		{"webhook ftp://", "PUT", A + "/webhook", ma.key, map[string]string{"url": "ftp://shop.example/hook", "secret": hookSecret}, 400, "invalid_request"},
		{"webhook at the switch", "PUT", A + "/webhook", ma.key, map[string]string{"url": "http://" + s.app.httpAddr + "/api/v1/deposits", "secret": hookSecret}, 400, "invalid_request"},
		{"webhook at the switch by name", "PUT", A + "/webhook", ma.key, map[string]string{"url": "http://localhost:" + httpPort + "/", "secret": hookSecret}, 400, "invalid_request"},
		{"webhook short secret", "PUT", A + "/webhook", ma.key, map[string]string{"url": "https://shop.example/hook", "secret": "short"}, 400, "invalid_request"},
		{"product price 0", "POST", A + "/products", ma.key, map[string]any{"code": "14", "name": "Free", "price": 0}, 400, "invalid_request"},
		{"product code of letters", "POST", A + "/products", ma.key, map[string]any{"code": "AB", "name": "X", "price": 100}, 400, "invalid_request"},
		{"product price over the largest payment", "POST", A + "/products", ma.key, map[string]any{"code": "15", "name": "X", "price": 15000001}, 400, "invalid_request"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var e apiError
			if got := s.call(tc.method, tc.path, tc.key, tc.body, &e); got != tc.want || e.Error.Code != tc.code {
				t.Fatalf("%s %s = %d %+v, want %d %s", tc.method, tc.path, got, e, tc.want, tc.code)
			}
		})
	}
	s.unchanged(before)

	refused := func(body map[string]any, want int, code string) apiError {
		t.Helper()
		var e apiError
		if got := ma.do("POST", "/api/v1/payment-requests", body, &e); got != want || e.Error.Code != code {
			t.Fatalf("request %v = %d %+v, want %d %s", body, got, e, want, code)
		}
		return e
	}
	decline := func(id string) {
		t.Helper()
		a.expect(id)
		a.send("NO")
		a.expect(id, "declined")
	}
	// One request waits for a number at a time (1 of the day's 4).
	first := ma.request(req(map[string]any{"reference": "BUSY-1"}))
	refused(req(map[string]any{"reference": "BUSY-2"}), 409, "payer_busy")
	if again := ma.request(req(map[string]any{"reference": "BUSY-1"})); again.ID != first.ID {
		t.Fatalf("the same reference: %s, then %s", first.ID, again.ID)
	}
	refused(req(map[string]any{"reference": "BUSY-1", "amount": 6000}), 409, "conflict")
	decline(first.ID)

	// STOP refuses one merchant's requests (2 of 4: the other merchant's), START takes them again (3).
	a.send("STOP 55501")
	a.expect("Mama Mboga", "can no longer send you requests")
	if e := refused(req(map[string]any{"reference": "STOPPED-1"}), 403, "payer_stopped"); e.Error.Message != "the number refused requests from this merchant: 2547****001" {
		t.Fatalf("payer_stopped says %q", e.Error.Message)
	}
	decline(mb.request(req(map[string]any{"reference": "B-1"})).ID)
	a.send("start 55501")
	a.expect("Mama Mboga", "can send you requests to pay again")
	decline(ma.request(req(map[string]any{"reference": "STARTED-1"})).ID)

	// The number's day holds 4 requests from all merchants.
	decline(ma.request(req(map[string]any{"reference": "DAY-4"})).ID)
	refused(req(map[string]any{"reference": "DAY-5"}), 429, "rate_limited")
	var e apiError
	if got := mb.do("POST", "/api/v1/payment-requests", req(map[string]any{"reference": "B-DAY-5"}), &e); got != 429 || e.Error.Code != "rate_limited" {
		t.Fatalf("another merchant's fifth request of the day: %d %+v", got, e)
	}
	s.unchanged(before)
}
