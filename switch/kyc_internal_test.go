package payswitch

import (
	"context"
	"fmt"
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

// TestLockMatchesTheTierPatch: LOCK checks an id number against the one the tiers'
// PATCH recorded at tier 2, under the same key: the right number freezes the wallet, a
// wrong one does not; a wallet with none on file, or lowered from tier 2, cannot be
// locked by SMS; a lowered wallet keeps its digest unless the change forgot it.
func TestLockMatchesTheTierPatch(t *testing.T) {
	ctx := context.Background()
	e := kycEngine(t, []byte("id key of this test"))
	w, err := e.OpenAccount(ctx, OpenAccount{Type: ledger.Wallet, Name: "Amina", MSISDN: "254700000001"})
	if err != nil {
		t.Fatal(err)
	}
	sender := 0
	// check sends LOCK for the wallet with id from a new number (each sender has its
	// own limit) and reports whether it froze the wallet, which it then reactivates.
	check := func(id string) bool {
		t.Helper()
		sender++
		if _, err := e.LockWallet(ctx, ChannelSMS, fmt.Sprintf("2547001000%02d", sender), "254700000001", id); err != nil {
			t.Fatal(err)
		}
		a, err := e.Account(ctx, w.ID)
		if err != nil {
			t.Fatal(err)
		}
		if a.Status != ledger.Frozen {
			return false
		}
		if _, err := e.SetAccountStatus(ctx, AccountStatusChange{Account: w.ID, Status: ledger.Active,
			Reason: "owner seen", Actor: "ops-anne"}); err != nil {
			t.Fatal(err)
		}
		return true
	}
	if check("12345678") {
		t.Fatal("no number on file: locked")
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
	}{{"12345679", false}, {"12345678", true}} {
		if m := check(tc.id); m != tc.matches {
			t.Errorf("%q: locked %v; want %v", tc.id, m, tc.matches)
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
	if check("12345678") {
		t.Fatal("lowered from tier 2: locked")
	}
	var kept string
	if err := e.db.Reader().QueryRowContext(ctx, `SELECT id_digest FROM wallet_kyc WHERE account_id = ?`, w.ID).Scan(&kept); err != nil || kept != digest {
		t.Fatalf("lowered: digest %q, %v; want it kept", kept, err)
	}
	change(AccountTierChange{Tier: TierUnregistered, ForgetIDNumber: true})
	if err := e.db.Reader().QueryRowContext(ctx, `SELECT id_digest FROM wallet_kyc WHERE account_id = ?`, w.ID).Scan(&kept); err != nil || kept != "" {
		t.Fatalf("forgotten: digest %q, %v", kept, err)
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
