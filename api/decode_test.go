package api_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/rs/zerolog"

	"github.com/payswitch/payswitch/api"
	"github.com/payswitch/payswitch/internal/switchtest"
)

const opsToken = "ops-token"

// apiServer is the API of a real engine behind a real HTTP listener.
type apiServer struct {
	rig *switchtest.Rig
	url string
}

func startAPI(t *testing.T) *apiServer {
	t.Helper()
	rig := switchtest.New(t, switchtest.Options{})
	srv, err := api.New(rig.Engine, api.Config{Tokens: []api.Token{{Name: "ops", Token: opsToken, Role: api.Operator}},
		MaxBodyBytes: 4 << 10, Log: zerolog.Nop()})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv)
	t.Cleanup(hs.Close)
	return &apiServer{rig: rig, url: hs.URL}
}

// apiAnswer is a response: its status, Allow header and, for an error, its code and
// message.
type apiAnswer struct {
	status  int
	allow   string
	code    string
	message string
	body    string
}

func (s *apiServer) do(t *testing.T, method, path, body string) apiAnswer {
	t.Helper()
	req, err := http.NewRequest(method, s.url+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+opsToken)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	a := apiAnswer{status: resp.StatusCode, allow: resp.Header.Get("Allow"), body: string(b)}
	var e struct {
		Error struct{ Code, Message string }
	}
	if json.Unmarshal(b, &e) == nil {
		a.code, a.message = e.Error.Code, e.Error.Message
	}
	return a
}

func TestDuplicateKeysAreRefused(t *testing.T) {
	s := startAPI(t)
	w := s.rig.Wallet("254700000001", 0)
	cases := []struct {
		name, path, body, msg string
	}{
		{"deposit amount twice", "/api/v1/deposits",
			`{"account":"` + w.ID + `","amount":100,"amount":999999,"reference":"D1"}`, `key "amount" appears twice`},
		{"deposit amount twice in another case", "/api/v1/deposits",
			`{"account":"` + w.ID + `","amount":100,"AMOUNT":999999,"reference":"D2"}`, `key "AMOUNT" appears twice`},
		{"deposit account twice", "/api/v1/deposits",
			`{"account":"` + w.ID + `","amount":100,"reference":"D3","account":"other"}`, `key "account" appears twice`},
		{"account name twice", "/api/v1/accounts",
			`{"type":"wallet","msisdn":"254700000002","name":"Bob","name":"Mallory"}`, `key "name" appears twice`},
		{"nested duplicate", "/api/v1/accounts",
			`{"type":"wallet","msisdn":"254700000002","name":"Bob","x":[1,{"a":1,"b":{"c":1,"c":2}}]}`, `key "c" appears twice in x[1].b`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			a := s.do(t, "POST", c.path, c.body)
			if a.status != http.StatusBadRequest || a.code != "invalid_request" || !strings.Contains(a.message, c.msg) {
				t.Fatalf("got %d %s %q, want 400 invalid_request with %q", a.status, a.code, a.message, c.msg)
			}
		})
	}
	if b := s.rig.Balance(w.ID); b.Posted != 0 {
		t.Fatalf("a refused body moved money: balance %+v", b)
	}
	if n := len(s.rig.Payments("254700000002")); n != 0 {
		t.Fatalf("payments of a refused account: %d", n)
	}

	// The same keys in different objects are no duplicates, and a good body still works.
	if a := s.do(t, "POST", "/api/v1/accounts", `{"type":"wallet","msisdn":"254700000002","name":"Bob"}`); a.status != http.StatusCreated {
		t.Fatalf("good account: %d %s", a.status, a.body)
	}
	if a := s.do(t, "POST", "/api/v1/deposits", `{"account":"`+w.ID+`","amount":100,"reference":"D9"}`); a.status != http.StatusCreated {
		t.Fatalf("good deposit: %d %s", a.status, a.body)
	}
	if b := s.rig.Balance(w.ID); b.Posted != 100 {
		t.Fatalf("balance after the good deposit: %+v", b)
	}
	// Unknown fields stay refused.
	if a := s.do(t, "POST", "/api/v1/deposits", `{"account":"`+w.ID+`","amount":100,"reference":"D8","memo":"x"}`); a.status != http.StatusBadRequest || !strings.Contains(a.message, "memo") {
		t.Fatalf("unknown field: %d %s", a.status, a.body)
	}
}

func TestAPIErrorTexts(t *testing.T) {
	s := startAPI(t)
	w := s.rig.Wallet("254700000001", 0)
	cases := []struct {
		name, method, path, body string
		status                   int
		code, msg                string
	}{
		{"deposit over the maximum", "POST", "/api/v1/deposits", `{"account":"` + w.ID + `","amount":100000000000001,"reference":"R1"}`,
			400, "invalid_request", "amount: at most 100000000000000 (KES 1,000,000,000,000.00)"},
		{"negative deposit", "POST", "/api/v1/deposits", `{"account":"` + w.ID + `","amount":-5,"reference":"R2"}`,
			400, "invalid_request", "amount: must be a positive whole number of minor units"},
		{"top-up over the maximum", "POST", "/api/v1/airtime/topups", `{"from":"x","msisdn":"254700000001","amount":100000000000001,"reference":"R3"}`,
			400, "invalid_request", "amount: at most 100000000000000"},
		{"array body", "POST", "/api/v1/deposits", `[{"account":"x"}]`, 400, "invalid_request", "the body must be a JSON object"},
		{"string body", "POST", "/api/v1/accounts", `"wallet"`, 400, "invalid_request", "the body must be a JSON object"},
		{"two objects", "POST", "/api/v1/accounts", `{"type":"wallet"} {}`, 400, "invalid_request", "one JSON object expected"},
		{"cut short", "POST", "/api/v1/accounts", `{"type":"wallet"`, 400, "invalid_request", "ends inside its JSON object"},
		{"empty body", "POST", "/api/v1/accounts", ``, 400, "invalid_request", "empty body"},
		{"oversized body", "POST", "/api/v1/accounts", `{"name":"` + strings.Repeat("a", 8<<10) + `"}`,
			413, "body_too_large", "larger than the limit of 4096 bytes"},
		{"GET on a POST route", "GET", "/api/v1/deposits", ``, 405, "method_not_allowed", "/api/v1/deposits does not take GET; it takes POST"},
		{"DELETE on a GET route", "DELETE", "/api/v1/payments/AAAAAAAAAA", ``, 405, "method_not_allowed", "it takes GET, HEAD"},
		{"unknown path", "GET", "/api/v1/nothing", ``, 404, "not_found", "no such endpoint"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			a := s.do(t, c.method, c.path, c.body)
			if a.status != c.status || a.code != c.code || !strings.Contains(a.message, c.msg) {
				t.Fatalf("got %d %s %q, want %d %s with %q", a.status, a.code, a.message, c.status, c.code, c.msg)
			}
		})
	}
	a := s.do(t, "PUT", "/api/v1/accounts", `{}`)
	if a.status != 405 || a.allow != "GET, HEAD, POST" {
		t.Fatalf("PUT /api/v1/accounts: %d Allow %q, want 405 Allow \"GET, HEAD, POST\"", a.status, a.allow)
	}
}

// TestAmountLimitIsTheEngines pins the API's named limit to the engine's: the largest
// amount the API lets through, the engine books.
func TestAmountLimitIsTheEngines(t *testing.T) {
	s := startAPI(t)
	w := s.rig.Wallet("254700000001", 0)
	if a := s.do(t, "POST", "/api/v1/deposits", `{"account":"`+w.ID+`","amount":100000000000000,"reference":"MAX"}`); a.status != http.StatusCreated {
		t.Fatalf("deposit of the maximum: %d %s", a.status, a.body)
	}
}
