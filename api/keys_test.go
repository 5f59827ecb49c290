package api_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/payswitch/payswitch/api"
	"github.com/payswitch/payswitch/merchant"
)

func TestMerchantKeysRoutes(t *testing.T) {
	rig := newMerchantRig(t, nil)
	keysPath := "/api/v1/merchants/" + rig.m1.ID + "/keys"

	r := rig.do(opsToken, "POST", keysPath, `{"name":"web-shop"}`)
	if r.status != http.StatusCreated || r.json["name"] != "web-shop" || r.json["created_at"] != "2026-12-07T09:00:00Z" ||
		r.json["revoked"] != false {
		t.Fatalf("create: %d %s", r.status, r.body)
	}
	key, _ := r.json["key"].(string)
	id, _ := r.json["id"].(string)
	if !strings.HasPrefix(key, merchant.KeyPrefix) || id == "" {
		t.Fatalf("create: key %q, id %q", key, id)
	}

	// The list has the key's ID and name, never a key.
	r = rig.do(opsToken, "GET", keysPath, "")
	if r.status != http.StatusOK || !strings.Contains(r.body, id) || strings.Contains(r.body, merchant.KeyPrefix) {
		t.Fatalf("list: %d %s", r.status, r.body)
	}
	if ks, _ := r.json["keys"].([]any); len(ks) != 2 {
		t.Fatalf("list: %d keys, want the rig's and the new one: %s", len(ks), r.body)
	}

	// The new key works, for its merchant only.
	if r := rig.do(key, "GET", "/api/v1/accounts/"+rig.m1.ID, ""); r.status != http.StatusOK || r.json["id"] != rig.m1.ID {
		t.Fatalf("the new key reads its account: %d %s", r.status, r.body)
	}

	for _, tc := range []struct {
		name, token, method, path, body string
		status                          int
		code                            string
	}{
		{"an auditor creates", audToken, "POST", keysPath, `{"name":"x"}`, 403, "forbidden"},
		{"a merchant creates its own", key, "POST", keysPath, `{"name":"x"}`, 403, "forbidden"},
		{"a merchant lists its own", key, "GET", keysPath, "", 403, "forbidden"},
		{"a merchant revokes its own", key, "DELETE", keysPath + "/" + id, "", 403, "forbidden"},
		{"an auditor lists", audToken, "GET", keysPath, "", 403, "forbidden"},
		{"a wallet's keys", opsToken, "POST", "/api/v1/merchants/" + rig.walletAccount() + "/keys", `{"name":"x"}`, 404, "not_found"},
		{"an unknown merchant", opsToken, "POST", "/api/v1/merchants/ACNOPE/keys", `{"name":"x"}`, 404, "not_found"},
		{"no name", opsToken, "POST", keysPath, `{}`, 400, "invalid_request"},
		{"a long name", opsToken, "POST", keysPath, `{"name":"` + strings.Repeat("n", 65) + `"}`, 400, "invalid_request"},
		{"bad JSON", opsToken, "POST", keysPath, `{"name":`, 400, "invalid_request"},
		{"an unknown field", opsToken, "POST", keysPath, `{"name":"x","role":"operator"}`, 400, "invalid_request"},
		{"revoking an unknown key", opsToken, "DELETE", keysPath + "/mk_0000000000000000", "", 404, "not_found"},
		{"revoking through another merchant", opsToken, "DELETE", "/api/v1/merchants/" + rig.m2.ID + "/keys/" + id, "", 404, "not_found"},
	} {
		if r := rig.do(tc.token, tc.method, tc.path, tc.body); r.status != tc.status || r.code() != tc.code {
			t.Errorf("%s: %d %s, want %d %s", tc.name, r.status, r.body, tc.status, tc.code)
		}
	}

	if r := rig.do(opsToken, "DELETE", keysPath+"/"+id, ""); r.status != http.StatusNoContent || r.body != "" {
		t.Fatalf("revoke: %d %q", r.status, r.body)
	}
	if r := rig.do(key, "GET", "/api/v1/accounts/"+rig.m1.ID, ""); r.status != http.StatusUnauthorized || r.code() != "unauthorized" {
		t.Fatalf("a revoked key: %d %s, want 401", r.status, r.body)
	}
	if r := rig.do(opsToken, "DELETE", keysPath+"/"+id, ""); r.status != http.StatusNoContent {
		t.Fatalf("revoking again: %d %s, want 204", r.status, r.body)
	}
	r = rig.do(opsToken, "GET", keysPath, "")
	if !strings.Contains(r.body, `"revoked":true,"revoked_at":"2026-12-07T09:00:00Z"`) {
		t.Fatalf("the list does not show the revocation: %s", r.body)
	}
	// The other key of the merchant still works.
	if r := rig.do(rig.key1, "GET", "/api/v1/accounts/"+rig.m1.ID, ""); r.status != http.StatusOK {
		t.Fatalf("the merchant's other key after a revoke: %d %s", r.status, r.body)
	}
}

// walletAccount opens a wallet and returns its account ID.
func (rig *merchantRig) walletAccount() string {
	rig.t.Helper()
	a, err := rig.engine.AccountByMSISDN(context.Background(), rig.wallet())
	if err != nil {
		rig.t.Fatal(err)
	}
	return a.ID
}

// TestMerchantKeyOnOperatorRoutes: a merchant key gets 403 on every route not marked for
// merchants, its own merchant's or not.
func TestMerchantKeyOnOperatorRoutes(t *testing.T) {
	rig := newMerchantRig(t, nil)
	for _, tc := range []struct{ method, path, body string }{
		{"POST", "/api/v1/accounts", `{"type":"wallet","msisdn":"254700000777","name":"X"}`},
		{"GET", "/api/v1/accounts?code=55501", ""},
		{"PATCH", "/api/v1/accounts/" + rig.m1.ID, `{"status":"frozen","reason":"x"}`},
		{"POST", "/api/v1/deposits", `{"account":"` + rig.m1.ID + `","amount":100,"reference":"R"}`},
		{"GET", "/api/v1/payments?msisdn=254700000001", ""},
		{"POST", "/api/v1/payments/AAAAAAAAAA/reverse", `{"reason":"x","reference":"y"}`},
		{"POST", "/api/v1/airtime/topups", `{"from":"x","msisdn":"254700000001","amount":100,"reference":"T"}`},
		{"GET", "/api/v1/ledger/trial-balance", ""},
		{"GET", "/api/v1/merchants/" + rig.m1.ID + "/keys", ""},
	} {
		r := rig.do(rig.key1, tc.method, tc.path, tc.body)
		if r.status != http.StatusForbidden || r.code() != "forbidden" || !strings.Contains(r.message(), "merchant key") {
			t.Errorf("%s %s: %d %s, want 403", tc.method, tc.path, r.status, r.body)
		}
	}
	if a, err := rig.engine.Account(context.Background(), rig.m1.ID); err != nil || a.Status != "active" || a.Balance.Posted != 0 {
		t.Fatalf("a refused request changed the merchant: %+v %v", a, err)
	}
}

// TestMerchantKeysShareTheBadTokenLimit: a guessed merchant key counts as a bad token,
// and a real key keeps working while the address's bad tokens get 429.
func TestMerchantKeysShareTheBadTokenLimit(t *testing.T) {
	rig := newMerchantRig(t, nil)
	guess := merchant.KeyPrefix + strings.Repeat("A", 43)
	for i := range 10 {
		if r := rig.do(guess, "GET", "/api/v1/accounts/"+rig.m1.ID, ""); r.status != http.StatusUnauthorized {
			t.Fatalf("guess %d: %d", i+1, r.status)
		}
	}
	if r := rig.do(guess, "GET", "/api/v1/accounts/"+rig.m1.ID, ""); r.status != http.StatusTooManyRequests {
		t.Fatalf("the eleventh guess: %d, want 429", r.status)
	}
	if r := rig.do(rig.key1, "GET", "/api/v1/accounts/"+rig.m1.ID, ""); r.status != http.StatusOK {
		t.Fatalf("a real key among guesses: %d", r.status)
	}
}

// failingKeys is a MerchantKeys whose lookups fail, as when the database cannot be read.
type failingKeys struct{ api.MerchantKeys }

func (failingKeys) Authenticate(context.Context, string) (string, string, error) {
	return "", "", errors.New("merchant: look up key: database is locked")
}

// TestKeyLookupFailureIsNotABadToken: when the keys cannot be read the answer is an
// error of the switch, not a 401 that would tell a merchant its key is wrong, and it
// does not count against the address.
func TestKeyLookupFailureIsNotABadToken(t *testing.T) {
	rig := newMerchantRig(t, func(c *api.Config) { c.Keys = failingKeys{c.Keys} })
	for range 12 {
		if r := rig.do(rig.key1, "GET", "/api/v1/accounts/"+rig.m1.ID, ""); r.status != http.StatusInternalServerError || r.code() != "internal" {
			t.Fatalf("a failed lookup: %d %s, want 500", r.status, r.body)
		}
	}
	if r := rig.do(opsToken, "GET", "/api/v1/accounts/"+rig.m1.ID, ""); r.status != http.StatusOK {
		t.Fatalf("the operator's token while key lookups fail: %d", r.status)
	}
}

// TestWithoutMerchantKeys: a switch configured without keys accepts none and answers
// the keys routes with 501.
func TestWithoutMerchantKeys(t *testing.T) {
	rig := newMerchantRig(t, func(c *api.Config) { c.Keys = nil })
	if r := rig.do(rig.key1, "GET", "/api/v1/accounts/"+rig.m1.ID, ""); r.status != http.StatusUnauthorized {
		t.Fatalf("a key with no keys configured: %d", r.status)
	}
	for _, m := range []string{"POST", "GET"} {
		r := rig.do(opsToken, m, "/api/v1/merchants/"+rig.m1.ID+"/keys", `{"name":"x"}`)
		if r.status != http.StatusNotImplemented || r.code() != "not_configured" {
			t.Fatalf("%s keys: %d %s, want 501", m, r.status, r.body)
		}
	}
}
