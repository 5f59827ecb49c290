package api

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/payswitch/payswitch/ledger"
	"github.com/payswitch/payswitch/otp"
	"github.com/payswitch/payswitch/outbox"
	"github.com/payswitch/payswitch/store"
	payswitch "github.com/payswitch/payswitch/switch"
)

// newTestAPI serves the API of a real engine on a database in a temporary directory,
// with one operator token, over real HTTP on loopback, with clock as its clock.
func newTestAPI(t *testing.T, log zerolog.Logger, clock func() time.Time) *httptest.Server {
	t.Helper()
	db, err := store.Open(filepath.Join(t.TempDir(), "api.db"), store.Options{Synchronous: "OFF"},
		ledger.Schema, otp.Schema, outbox.Schema, payswitch.Schema)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	secret := []byte("0123456789abcdef0123456789abcdef")
	iss, err := otp.NewIssuer(secret, otp.Config{})
	if err != nil {
		t.Fatal(err)
	}
	ob, err := outbox.NewSealed(db, nil, secret)
	if err != nil {
		t.Fatal(err)
	}
	e, err := payswitch.New(payswitch.Config{Currency: "KES", Shortcode: "22333", CountryCode: "254"},
		payswitch.Deps{DB: db, Ledger: ledger.New(db, nil), OTP: iss, Outbox: ob, Log: zerolog.Nop()})
	if err != nil {
		t.Fatal(err)
	}
	srv, err := New(e, Config{Tokens: []Token{{Name: "ops", Token: "ops-token-0123456789", Role: Operator}},
		Log: log, Now: clock})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(srv)
	t.Cleanup(ts.Close)
	return ts
}

func get(t *testing.T, ts *httptest.Server, token string) int {
	t.Helper()
	req, _ := http.NewRequest("GET", ts.URL+"/api/v1/ledger/trial-balance", nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := ts.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// Attack: ten bad tokens from an address (a neighbour behind the same NAT, any process
// on the switch's machine) locked the operator's valid token out too. The token is
// checked first now: the valid one always works, and only bad ones get 429.
func TestBadTokensDoNotLockOutTheValidToken(t *testing.T) {
	var logs bytes.Buffer
	now := time.Date(2026, 12, 6, 9, 0, 0, 0, time.UTC)
	ts := newTestAPI(t, zerolog.New(&logs), func() time.Time { return now })
	for i := range 10 {
		if code := get(t, ts, "guess-"+strings.Repeat("x", i)); code != http.StatusUnauthorized {
			t.Fatalf("bad token %d: %d, want 401", i+1, code)
		}
	}
	if code := get(t, ts, "ops-token-0123456789"); code != http.StatusOK {
		t.Fatalf("the valid token after ten bad ones: %d, want 200", code)
	}
	for _, bad := range []string{"guess-again", ""} {
		if code := get(t, ts, bad); code != http.StatusTooManyRequests {
			t.Fatalf("bad token %q after ten: %d, want 429", bad, code)
		}
	}
	if code := get(t, ts, "ops-token-0123456789"); code != http.StatusOK {
		t.Fatalf("the valid token while bad ones get 429: %d, want 200", code)
	}
	if n := strings.Count(logs.String(), "too many bad API tokens"); n != 1 {
		t.Fatalf("the limit was logged %d times, want once:\n%s", n, logs.String())
	}
	if strings.Contains(logs.String(), "guess") || strings.Contains(logs.String(), "ops-token") {
		t.Fatalf("a token reached the log:\n%s", logs.String())
	}
	now = now.Add(61 * time.Second)
	if code := get(t, ts, "guess-later"); code != http.StatusUnauthorized {
		t.Fatalf("a bad token after the window: %d, want 401", code)
	}
}
