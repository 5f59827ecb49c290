package api_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/rs/zerolog"

	"github.com/payswitch/payswitch/api"
	"github.com/payswitch/payswitch/internal/switchtest"
	payswitch "github.com/payswitch/payswitch/switch"
)

// TestAccountTiers: a wallet's tier in its JSON, opening at a tier, PATCH of a tier with
// and without an id number, and a deposit refused by the tier's balance cap, through
// real HTTP on a real engine.
func TestAccountTiers(t *testing.T) {
	rig := switchtest.New(t, switchtest.Options{Config: func(c *payswitch.Config) {
		c.Tiers = [3]payswitch.Tier{{MaxBalance: 500000, MaxPayment: 100000, DailyMax: 200000},
			{MaxBalance: 10000000, MaxPayment: 7000000, DailyMax: 14000000},
			{MaxBalance: 50000000, MaxPayment: 15000000, DailyMax: 30000000}}
		c.IDNumberKey = []byte("api test id key")
	}})
	srv, err := api.New(rig.Engine, api.Config{Tokens: []api.Token{
		{Name: "ops-anne", Token: "ops-token", Role: api.Operator},
		{Name: "aud", Token: "aud-token", Role: api.Auditor}}, Log: zerolog.Nop()})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv)
	t.Cleanup(hs.Close)
	do := func(token, method, path, body string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest(method, hs.URL+path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	tierOf := func(body string) any {
		t.Helper()
		var v map[string]any
		if err := json.Unmarshal([]byte(body), &v); err != nil {
			t.Fatalf("%v: %s", err, body)
		}
		return v["tier"]
	}
	// Opened without a tier: tier 1. With one: that tier; tier 2 wants an id number.
	code, body := do("ops-token", "POST", "/api/v1/accounts", `{"type":"wallet","name":"Amina","msisdn":"0700000001"}`)
	if code != 201 || tierOf(body) != 1.0 {
		t.Fatalf("open: %d %s", code, body)
	}
	var w struct{ ID string }
	_ = json.Unmarshal([]byte(body), &w)
	if code, body = do("ops-token", "POST", "/api/v1/accounts", `{"type":"wallet","name":"B","msisdn":"0700000002","tier":0}`); code != 201 || tierOf(body) != 0.0 {
		t.Fatalf("open at tier 0: %d %s", code, body)
	}
	if code, body = do("ops-token", "POST", "/api/v1/accounts", `{"type":"wallet","name":"C","msisdn":"0700000003","tier":2}`); code != 400 || !strings.Contains(body, "id_number") {
		t.Fatalf("open at tier 2 without an id number: %d %s", code, body)
	}
	if code, body = do("ops-token", "POST", "/api/v1/accounts", `{"type":"wallet","name":"C","msisdn":"0700000003","tier":2,"id_number":"27182818"}`); code != 201 || tierOf(body) != 2.0 || strings.Contains(body, "27182818") {
		t.Fatalf("open at tier 2: %d %s", code, body)
	}
	code, body = do("ops-token", "POST", "/api/v1/accounts", `{"type":"merchant","name":"Shop","code":"55501","msisdn":"0700000900"}`)
	if code != 201 || tierOf(body) != nil {
		t.Fatalf("a merchant shows no tier: %d %s", code, body)
	}
	var m struct{ ID string }
	_ = json.Unmarshal([]byte(body), &m)

	path := "/api/v1/accounts/" + w.ID
	for _, tc := range []struct {
		name, token, path, body string
		status                  int
		has                     string
	}{
		{"an auditor may not", "aud-token", path, `{"tier":0,"reason":"x"}`, 403, "forbidden"},
		{"tier 2 without an id number", "ops-token", path, `{"tier":2,"reason":"documents seen"}`, 400, "id_number"},
		{"an id number with letters", "ops-token", path, `{"tier":2,"id_number":"AB123456","reason":"documents seen"}`, 400, "without spaces or letters"},
		{"an id number with spaces", "ops-token", path, `{"tier":2,"id_number":"123 45678","reason":"documents seen"}`, 400, "5 to 20 digits"},
		{"tier 3", "ops-token", path, `{"tier":3,"reason":"x"}`, 400, "tier is 0, 1 or 2"},
		{"a tier as a string", "ops-token", path, `{"tier":"2","reason":"x"}`, 400, "invalid_request"},
		{"an id number alone", "ops-token", path, `{"id_number":"12345678","reason":"x"}`, 400, "tier"},
		{"nothing to change", "ops-token", path, `{"reason":"x"}`, 400, "status"},
		{"a merchant has no tier", "ops-token", "/api/v1/accounts/" + m.ID, `{"tier":0,"reason":"x"}`, 400, "only wallets have tiers"},
		{"the same tier", "ops-token", path, `{"tier":1,"reason":"x"}`, 409, "already at tier 1"},
		{"raise to 2", "ops-token", path, `{"tier":2,"id_number":"31415926","reason":"national id seen"}`, 200, `"tier":2`},
		{"the account shows it", "aud-token", path, "", 200, `"tier":2`},
		{"lower to 0", "ops-token", path, `{"tier":0,"reason":"compliance"}`, 200, `"tier":0`},
	} {
		method := http.MethodPatch
		if tc.body == "" {
			method = http.MethodGet
		}
		code, body := do(tc.token, method, tc.path, tc.body)
		if code != tc.status || !strings.Contains(body, tc.has) {
			t.Errorf("%s: %d %s, want %d with %q", tc.name, code, body, tc.status, tc.has)
		}
		if strings.Contains(body, "31415926") || strings.Contains(body, "AB123456") {
			t.Errorf("%s: the answer shows the id number: %s", tc.name, body)
		}
	}
	cs, err := rig.Engine.AccountChanges(context.Background(), w.ID, 10)
	if err != nil || len(cs) != 3 || cs[0].Field != "tier" || cs[0].Old != "2" || cs[0].New != "0" || cs[0].Actor != "ops-anne" {
		t.Fatalf("history %+v, %v", cs, err)
	}
	// At tier 0 the wallet holds KES 5,000 at most: a deposit past it is refused.
	if code, body = do("ops-token", "POST", "/api/v1/deposits", `{"account":"`+w.ID+`","amount":500001,"reference":"d1"}`); code != 409 ||
		!strings.Contains(body, `"balance_cap"`) || !strings.Contains(body, "maximum balance of KES 5,000.00") {
		t.Fatalf("deposit over the cap: %d %s", code, body)
	}
	if b := rig.Balance(w.ID); b.Posted != 0 {
		t.Fatalf("a refused deposit moved %+v", b)
	}
	if code, body = do("ops-token", "POST", "/api/v1/deposits", `{"account":"`+w.ID+`","amount":500000,"reference":"d1"}`); code != 201 {
		t.Fatalf("deposit up to the cap: %d %s", code, body)
	}
}
