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
)

// TestPatchAccountStatus freezes and reactivates through PATCH /api/v1/accounts/{id}
// and checks each refusal's status, and that the token's name is recorded as who.
func TestPatchAccountStatus(t *testing.T) {
	rig := switchtest.New(t, switchtest.Options{})
	srv, err := api.New(rig.Engine, api.Config{Tokens: []api.Token{
		{Name: "ops-anne", Token: "ops-token", Role: api.Operator},
		{Name: "aud", Token: "aud-token", Role: api.Auditor}}, Log: zerolog.Nop()})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv)
	t.Cleanup(hs.Close)
	w := rig.Wallet("254700000001", 100)
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
	path := "/api/v1/accounts/" + w.ID
	for _, tc := range []struct {
		name, token, path, body string
		status                  int
		has                     string
	}{
		{"an auditor may not", "aud-token", path, `{"status":"frozen","reason":"fraud"}`, 403, "forbidden"},
		{"no reason", "ops-token", path, `{"status":"frozen"}`, 400, "reason"},
		{"an empty reason", "ops-token", path, `{"status":"frozen","reason":" "}`, 400, "reason"},
		{"a bad status", "ops-token", path, `{"status":"closed","reason":"x"}`, 400, "status"},
		{"no status", "ops-token", path, `{"reason":"x"}`, 400, "status"},
		{"a tier without a reason", "ops-token", path, `{"tier":2,"id_number":"12345678"}`, 400, "reason"},
		{"an id number with a status", "ops-token", path, `{"status":"frozen","reason":"x","id_number":"1"}`, 400, "not both"},
		{"an unknown field", "ops-token", path, `{"status":"frozen","reason":"x","colour":"red"}`, 400, "colour"},
		{"an unknown account", "ops-token", "/api/v1/accounts/ACNOPE", `{"status":"frozen","reason":"x"}`, 404, "not_found"},
		{"no change", "ops-token", path, `{"status":"active","reason":"x"}`, 409, "already active"},
		{"freeze", "ops-token", path, `{"status":"frozen","reason":"phone stolen"}`, 200, `"status":"frozen"`},
		{"freeze again", "ops-token", path, `{"status":"frozen","reason":"phone stolen"}`, 409, "already frozen"},
		{"the account shows it", "aud-token", path, "", 200, `"status":"frozen"`},
		{"reactivate", "ops-token", path, `{"status":"active","reason":"owner at the branch"}`, 200, `"status":"active"`},
	} {
		method := http.MethodPatch
		if tc.body == "" {
			method = http.MethodGet
		}
		if code, body := do(tc.token, method, tc.path, tc.body); code != tc.status || !strings.Contains(body, tc.has) {
			t.Errorf("%s: %d %s, want %d with %q", tc.name, code, body, tc.status, tc.has)
		}
	}
	_, body := do("ops-token", http.MethodGet, path, "")
	var got map[string]any
	if err := json.Unmarshal([]byte(body), &got); err != nil || got["balance"] == nil || got["id"] != w.ID {
		t.Fatalf("GET after changes: %s", body)
	}
	cs, err := rig.Engine.AccountChanges(context.Background(), w.ID, 10)
	if err != nil || len(cs) != 2 || cs[1].Actor != "ops-anne" || cs[1].Reason != "phone stolen" || cs[0].New != "active" {
		t.Fatalf("history %+v, %v", cs, err)
	}
}
