package console

import (
	"context"
	"io"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/payswitch/payswitch/ledger"
)

// tierBackend is the stub with a wallet at tier 2 and a merchant, and the tiers it keeps.
type tierBackend struct{ stubBackend }

func (tierBackend) Account(_ context.Context, id string) (ledger.Account, error) {
	switch id {
	case "ACWALLET":
		return ledger.Account{ID: id, Type: ledger.Wallet, Name: "Amina <b>", Status: ledger.Active, Currency: "KES"}, nil
	case "ACSHOP":
		return ledger.Account{ID: id, Type: ledger.Merchant, Name: "Shop", Status: ledger.Active, Currency: "KES"}, nil
	}
	return ledger.Account{}, ErrNotFound
}

func (tierBackend) AccountTier(_ context.Context, id string) (int, error) { return 2, nil }

// TestAccountPageShowsTheTier: a wallet's page shows its tier; a merchant's shows none.
func TestAccountPageShowsTheTier(t *testing.T) {
	c, err := New(tierBackend{}, Config{Now: func() time.Time { return time.Date(2026, 3, 1, 8, 0, 0, 0, time.UTC) },
		Tokens: []Token{{Name: "ops", Token: "ops-secret", Role: Operator}}})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(c)
	t.Cleanup(srv.Close)
	cl := client()
	signIn(t, cl, srv.URL, "ops-secret")
	page := func(id string) string {
		t.Helper()
		resp, err := cl.Get(srv.URL + "/console/accounts/" + id)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 {
			t.Fatalf("%s: %d %s", id, resp.StatusCode, b)
		}
		return string(b)
	}
	w := page("ACWALLET")
	if !strings.Contains(w, `<dt>Tier</dt><dd id="tier">2 (full KYC)</dd>`) || strings.Contains(w, "Amina <b>") {
		t.Fatalf("wallet page: %s", w)
	}
	if m := page("ACSHOP"); strings.Contains(m, `id="tier"`) {
		t.Fatalf("a merchant shows a tier: %s", m)
	}
}
