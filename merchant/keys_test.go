package merchant_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/payswitch/payswitch/internal/pgtest"

	"github.com/payswitch/payswitch/merchant"
)

func testKeyLifecycle(t *testing.T) {
	ctx := context.Background()
	db, opts, clock := openDB(t)
	keys := merchant.NewKeys(db, opts)

	k, token, err := keys.Create(ctx, "AC-M1", "  web-shop ")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(token, merchant.KeyPrefix) || len(token) != len(merchant.KeyPrefix)+43 {
		t.Fatalf("key %q: want %s and 43 base64url characters", token, merchant.KeyPrefix)
	}
	if k.Name != "web-shop" || k.MerchantID != "AC-M1" || !k.CreatedAt.Equal(clock.Now()) || k.Revoked() {
		t.Fatalf("created %+v", k)
	}
	m, id, err := keys.Authenticate(ctx, token)
	if err != nil || m != "AC-M1" || id != k.ID {
		t.Fatalf("authenticate: %q %q %v", m, id, err)
	}

	// Only the digest is stored: the key appears nowhere in the table.
	var digest []byte
	var row string
	if err := db.Reader().QueryRowContext(ctx, `SELECT digest, id || name || merchant_id || created_at
		FROM merchant_keys`).Scan(&digest, &row); err != nil {
		t.Fatal(err)
	}
	if sum := sha256.Sum256([]byte(token)); !bytes.Equal(digest, sum[:]) ||
		strings.Contains(row, token[len(merchant.KeyPrefix):]) {
		t.Fatalf("stored %x and %q for the key %q: want its SHA-256 only", digest, row, token)
	}

	// Another merchant cannot revoke it; it is not theirs, so it is not found.
	if err := keys.Revoke(ctx, "AC-M2", k.ID); !errors.Is(err, merchant.ErrNotFound) {
		t.Fatalf("another merchant revokes: %v, want ErrNotFound", err)
	}
	if _, _, err := keys.Authenticate(ctx, token); err != nil {
		t.Fatalf("after another merchant's revoke: %v", err)
	}
	if err := keys.Revoke(ctx, "AC-M1", "mk_nope"); !errors.Is(err, merchant.ErrNotFound) {
		t.Fatalf("unknown key: %v", err)
	}

	clock.Advance(time.Hour)
	if err := keys.Revoke(ctx, "AC-M1", k.ID); err != nil {
		t.Fatal(err)
	}
	if _, _, err := keys.Authenticate(ctx, token); !errors.Is(err, merchant.ErrBadKey) {
		t.Fatalf("revoked key authenticates: %v", err)
	}
	clock.Advance(time.Hour)
	if err := keys.Revoke(ctx, "AC-M1", k.ID); err != nil {
		t.Fatalf("revoking again: %v, want nothing changed", err)
	}
	list, err := keys.List(ctx, "AC-M1")
	if err != nil || len(list) != 1 || !list[0].RevokedAt.Equal(clock.Now().Add(-time.Hour)) || list[0].Name != "web-shop" {
		t.Fatalf("list %+v %v: want the key revoked at the first revoke", list, err)
	}
	if list, err := keys.List(ctx, "AC-M2"); err != nil || len(list) != 0 {
		t.Fatalf("another merchant's list %+v %v", list, err)
	}
}

func testAuthenticateRefusesWhatIsNotALiveKey(t *testing.T) {
	ctx := context.Background()
	db, opts, _ := openDB(t)
	keys := merchant.NewKeys(db, opts)
	_, token, err := keys.Create(ctx, "AC-M1", "pos")
	if err != nil {
		t.Fatal(err)
	}
	flipped := []byte(token)
	flipped[len(flipped)-1] ^= 1
	for name, tok := range map[string]string{
		"empty":           "",
		"no prefix":       token[len(merchant.KeyPrefix):],
		"another prefix":  "psk_test_" + token[len(merchant.KeyPrefix):],
		"one bit off":     string(flipped),
		"too long":        token + "A",
		"truncated":       token[:len(token)-1],
		"an operator one": "ops-token-0123456789",
	} {
		if m, id, err := keys.Authenticate(ctx, tok); !errors.Is(err, merchant.ErrBadKey) || m != "" || id != "" {
			t.Errorf("%s: %q %q %v, want ErrBadKey", name, m, id, err)
		}
	}
}

func testKeyNamesAndCaps(t *testing.T) {
	ctx := context.Background()
	db, opts, clock := openDB(t)
	opts.MaxKeys = 3
	keys := merchant.NewKeys(db, opts)
	for name, bad := range map[string]string{"empty": "", "blank": "   ", "too long": strings.Repeat("k", 65),
		"control": "a\x00b", "newline": "a\nb", "bad UTF-8": "a\xffb"} {
		if _, _, err := keys.Create(ctx, "AC-M1", bad); !errors.Is(err, merchant.ErrInvalid) {
			t.Errorf("name %s: %v, want ErrInvalid", name, err)
		}
	}
	if _, _, err := keys.Create(ctx, "", "x"); !errors.Is(err, merchant.ErrInvalid) {
		t.Errorf("no merchant: %v", err)
	}
	if _, _, err := keys.Create(ctx, "AC-M1", strings.Repeat("é", 64)); err != nil {
		t.Errorf("64 characters: %v", err)
	}
	var ids []string
	for range 2 {
		k, _, err := keys.Create(ctx, "AC-M1", "k")
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, k.ID)
	}
	if _, _, err := keys.Create(ctx, "AC-M1", "one too many"); !errors.Is(err, merchant.ErrLimit) {
		t.Fatalf("fourth live key: %v, want ErrLimit", err)
	}
	if _, _, err := keys.Create(ctx, "AC-M2", "other merchant"); err != nil {
		t.Fatalf("the cap is per merchant: %v", err)
	}
	if err := keys.Revoke(ctx, "AC-M1", ids[0]); err != nil {
		t.Fatal(err)
	}
	if _, _, err := keys.Create(ctx, "AC-M1", "after a revoke"); err != nil {
		t.Fatalf("a revoked key frees its place: %v", err)
	}

	// Rotating keys for ever keeps the last hundred revoked ones, no more.
	for range 120 {
		clock.Advance(time.Second)
		k, _, err := keys.Create(ctx, "AC-M2", "rotated")
		if err != nil {
			t.Fatal(err)
		}
		if err := keys.Revoke(ctx, "AC-M2", k.ID); err != nil {
			t.Fatal(err)
		}
	}
	list, err := keys.List(ctx, "AC-M2")
	if err != nil {
		t.Fatal(err)
	}
	revoked, live := 0, 0
	for _, k := range list {
		if k.Revoked() {
			revoked++
		} else {
			live++
		}
	}
	if revoked != 100 || live != 1 {
		t.Fatalf("after 120 rotations: %d revoked and %d live listed, want 100 and 1", revoked, live)
	}
	if newest := list[len(list)-1]; !newest.Revoked() || !newest.CreatedAt.Equal(clock.Now()) {
		t.Fatalf("the newest revoked key was dropped: %+v", newest)
	}
}

func TestKeyLifecycle(t *testing.T) { pgtest.Both(t, testKeyLifecycle) }

func TestAuthenticateRefusesWhatIsNotALiveKey(t *testing.T) {
	pgtest.Both(t, testAuthenticateRefusesWhatIsNotALiveKey)
}

func TestKeyNamesAndCaps(t *testing.T) { pgtest.Both(t, testKeyNamesAndCaps) }
