package payswitch

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/payswitch/payswitch/ledger"
	"github.com/payswitch/payswitch/otp"
	"github.com/payswitch/payswitch/outbox"
	"github.com/payswitch/payswitch/store"
)

// kycEngine is an engine on a real database in a temporary directory, with key as its
// id numbers' key, for the internal tests of kyc.go.
func kycEngine(t *testing.T, key []byte) *Engine {
	t.Helper()
	db, err := store.Open(filepath.Join(t.TempDir(), "kyc.db"), store.Options{Synchronous: "OFF"},
		ledger.Schema, otp.Schema, outbox.Schema, Schema)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	iss, err := otp.NewIssuer([]byte("0123456789abcdef0123456789abcdef"), otp.Config{Digits: 6, TTL: 5 * time.Minute, MaxAttempts: 3})
	if err != nil {
		t.Fatal(err)
	}
	now := func() time.Time { return time.Date(2026, 12, 6, 9, 0, 0, 0, time.UTC) }
	e, err := New(Config{Currency: "KES", Shortcode: "22333", CountryCode: "254", MinAmount: 100,
		MaxAmount: 15000000, DailyMax: 30000000, IDNumberKey: key},
		Deps{DB: db, Ledger: ledger.New(db, now), OTP: iss, Outbox: outbox.New(db, now), Now: now, Log: zerolog.Nop()})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// TestIDNumberMatches: LOCK's check of an id number against the one recorded at tier 2
// compares digests inside the write; a wallet with none on file is not recorded, and a
// lowered wallet keeps its number unless the change forgot it.
func TestIDNumberMatches(t *testing.T) {
	ctx := context.Background()
	e := kycEngine(t, []byte("id key of this test"))
	w, err := e.OpenAccount(ctx, OpenAccount{Type: ledger.Wallet, Name: "Amina", MSISDN: "254700000001"})
	if err != nil {
		t.Fatal(err)
	}
	check := func(id string) (bool, bool) {
		t.Helper()
		var m, rec bool
		if err := e.write(ctx, func(o *op) (err error) {
			m, rec, err = o.idNumberMatches(w.ID, id)
			return err
		}); err != nil {
			t.Fatal(err)
		}
		return m, rec
	}
	if m, rec := check("12345678"); m || rec {
		t.Fatalf("no number on file: matches %v, recorded %v", m, rec)
	}
	change := func(c AccountTierChange) {
		t.Helper()
		c.Account, c.Reason, c.Actor = w.ID, "documents seen", "ops-anne"
		if _, err := e.SetAccountTier(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	change(AccountTierChange{Tier: TierFull, IDNumber: "12345678"})
	for _, tc := range []struct {
		id      string
		matches bool
	}{{"12345678", true}, {"12345679", false}, {"1234567", false}, {"1234 5678", false}, {"", false}} {
		if m, rec := check(tc.id); m != tc.matches || !rec {
			t.Errorf("%q: matches %v, recorded %v; want %v, true", tc.id, m, rec, tc.matches)
		}
	}
	var digest string
	if err := e.db.Reader().QueryRowContext(ctx, `SELECT id_digest FROM wallet_kyc WHERE account_id = ?`, w.ID).Scan(&digest); err != nil {
		t.Fatal(err)
	}
	if digest == "" || digest == "12345678" || digest != idNumberDigest([]byte("id key of this test"), "12345678") {
		t.Fatalf("stored %q: want the keyed digest, never the number", digest)
	}
	change(AccountTierChange{Tier: TierBasic})
	if m, rec := check("12345678"); !m || !rec {
		t.Fatalf("lowered, kept: matches %v, recorded %v", m, rec)
	}
	change(AccountTierChange{Tier: TierUnregistered, ForgetIDNumber: true})
	if m, rec := check("12345678"); m || rec {
		t.Fatalf("forgotten: matches %v, recorded %v", m, rec)
	}
	// Another switch's key cannot test the numbers of this one's copy.
	if idNumberDigest([]byte("another key"), "12345678") == digest {
		t.Fatal("the digest does not depend on the key")
	}
}

// TestDefaultTierSQL: the queries' tier of a wallet without a row is DefaultTier.
func TestDefaultTierSQL(t *testing.T) {
	if defaultTierSQL != "1" || DefaultTier != 1 {
		t.Fatalf("defaultTierSQL %q, DefaultTier %d", defaultTierSQL, DefaultTier)
	}
}
