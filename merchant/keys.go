package merchant

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"database/sql"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/payswitch/payswitch/store"
)

// KeyPrefix begins every merchant key, so that a key pasted where it should not be (a
// log, a repository) is recognised for what it is, and so that a bearer token that is
// not one costs no lookup.
const KeyPrefix = "psk_live_"

// keyLen is the length of a key: the prefix and 32 random bytes in unpadded base64url.
var keyLen = len(KeyPrefix) + base64.RawURLEncoding.EncodedLen(32)

// Keys issues, lists, revokes and checks merchants' API keys. It is safe for concurrent
// use: writes go through the store's one writer.
type Keys struct {
	db   *store.DB
	opts Options
}

// NewKeys returns the keys kept in db.
func NewKeys(db *store.DB, opts Options) *Keys {
	return &Keys{db: db, opts: opts.withDefaults()}
}

// Key is a merchant key as it is listed: never the key itself, which only Create returns.
type Key struct {
	ID         string
	MerchantID string
	Name       string
	CreatedAt  time.Time
	RevokedAt  time.Time // zero while the key works
}

// Revoked reports whether the key no longer works.
func (k Key) Revoked() bool { return !k.RevokedAt.IsZero() }

// Create issues a key named name for merchantID and returns it with the key itself,
// which is not kept and cannot be shown again. A merchant with MaxKeys live keys gets
// ErrLimit; a bad name ErrInvalid.
func (k *Keys) Create(ctx context.Context, merchantID, name string) (Key, string, error) {
	n, err := cleanName("name", name)
	if err != nil {
		return Key{}, "", err
	}
	if merchantID == "" {
		return Key{}, "", fmt.Errorf("%w: no merchant", ErrInvalid)
	}
	secret := make([]byte, 32)
	rand.Read(secret) // never fails: it crashes the program rather than return less
	token := KeyPrefix + base64.RawURLEncoding.EncodeToString(secret)
	digest := sha256.Sum256([]byte(token))
	id := make([]byte, 8)
	rand.Read(id)
	key := Key{ID: "mk_" + hex.EncodeToString(id), MerchantID: merchantID, Name: n, CreatedAt: k.opts.Now().UTC()}
	err = k.db.Write(ctx, func(tx store.Tx) error {
		if err := lockMerchant(ctx, k.db, tx, "keys", merchantID); err != nil {
			return err
		}
		var live int
		if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM merchant_keys
			WHERE merchant_id = ? AND revoked_at IS NULL`, merchantID).Scan(&live); err != nil {
			return fmt.Errorf("merchant: count keys: %w", err)
		}
		if live >= k.opts.MaxKeys {
			return fmt.Errorf("%w: a merchant may have %d live keys; revoke one first", ErrLimit, k.opts.MaxKeys)
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO merchant_keys (id, merchant_id, name, digest, created_at)
			VALUES (?, ?, ?, ?, ?)`, key.ID, merchantID, n, digest[:], micros(key.CreatedAt))
		if err != nil {
			return fmt.Errorf("merchant: insert key: %w", err)
		}
		return nil
	})
	if err != nil {
		return Key{}, "", err
	}
	return key, token, nil
}

// Revoke stops merchantID's key keyID from working; revoking a revoked key changes
// nothing. A key that is not merchantID's is ErrNotFound, as an unknown one is. The
// oldest revoked keys beyond the last hundred are deleted in the same write.
func (k *Keys) Revoke(ctx context.Context, merchantID, keyID string) error {
	return k.db.Write(ctx, func(tx store.Tx) error {
		var revoked sql.NullInt64
		err := tx.QueryRowContext(ctx, `SELECT revoked_at FROM merchant_keys WHERE id = ? AND merchant_id = ?`,
			keyID, merchantID).Scan(&revoked)
		switch {
		case errors.Is(err, sql.ErrNoRows):
			return fmt.Errorf("%w: no key %s", ErrNotFound, keyID)
		case err != nil:
			return fmt.Errorf("merchant: read key: %w", err)
		case revoked.Valid:
			return nil
		}
		if _, err := tx.ExecContext(ctx, `UPDATE merchant_keys SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL`,
			micros(k.opts.Now()), keyID); err != nil {
			return fmt.Errorf("merchant: revoke key: %w", err)
		}
		_, err = tx.ExecContext(ctx, dropOldRevokedSQL(k.db.Dialect()), merchantID, keptRevokedKeys)
		if err != nil {
			return fmt.Errorf("merchant: drop old revoked keys: %w", err)
		}
		return nil
	})
}

// List returns merchantID's keys, live and revoked, oldest first.
func (k *Keys) List(ctx context.Context, merchantID string) ([]Key, error) {
	rows, err := k.db.Reader().QueryContext(ctx, `SELECT id, name, created_at, COALESCE(revoked_at, 0)
		FROM merchant_keys WHERE merchant_id = ? ORDER BY created_at, id`, merchantID)
	if err != nil {
		return nil, fmt.Errorf("merchant: list keys: %w", err)
	}
	defer rows.Close()
	out := []Key{}
	for rows.Next() {
		key := Key{MerchantID: merchantID}
		var created, revoked int64
		if err := rows.Scan(&key.ID, &key.Name, &created, &revoked); err != nil {
			return nil, fmt.Errorf("merchant: list keys: %w", err)
		}
		key.CreatedAt, key.RevokedAt = fromMicros(created), fromMicros(revoked)
		out = append(out, key)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("merchant: list keys: %w", err)
	}
	return out, nil
}

// Authenticate returns the merchant and key ID of a live key. A token that is not a
// merchant key, an unknown key and a revoked one are all ErrBadKey; another error is
// the database's (the caller cannot tell yet whether the key is good).
//
// The key is found by its digest through a unique index; the stored digest is then
// compared in constant time, so that nothing of the comparison shows in the timing even
// if the index lookup ever became a scan.
func (k *Keys) Authenticate(ctx context.Context, token string) (merchantID, keyID string, err error) {
	if len(token) != keyLen || !strings.HasPrefix(token, KeyPrefix) {
		return "", "", ErrBadKey
	}
	digest := sha256.Sum256([]byte(token))
	var stored []byte
	var revoked sql.NullInt64
	err = k.db.Reader().QueryRowContext(ctx, `SELECT id, merchant_id, digest, revoked_at FROM merchant_keys
		WHERE digest = ?`, digest[:]).Scan(&keyID, &merchantID, &stored, &revoked)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return "", "", ErrBadKey
	case err != nil:
		return "", "", fmt.Errorf("merchant: look up key: %w", err)
	case subtle.ConstantTimeCompare(stored, digest[:]) != 1, revoked.Valid:
		return "", "", ErrBadKey
	}
	return merchantID, keyID, nil
}
