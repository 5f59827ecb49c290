package webhook

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/payswitch/payswitch/store"
)

// Endpoint is where a merchant's events go. Its secret is never read back.
type Endpoint struct {
	MerchantID string
	URL        string
	UpdatedAt  time.Time
}

// Limits of an endpoint.
const (
	MaxURLLength    = 2048
	MinSecretLength = 16
	MaxSecretLength = 256
)

// SetEndpoint sets (or replaces) merchantID's endpoint: rawURL is an http or https URL
// with a host and no user name or password, at most MaxURLLength bytes, not pointing at
// one of the switch's own listeners; secret is MinSecretLength to MaxSecretLength
// printable ASCII characters, stored sealed. A refusal is an *InputError.
//
// The merchant's pending events become due at once, to the new URL, signed with the new
// secret, and a pause of its deliveries (see Config.MaxFailures) ends: a merchant who
// fixes a broken endpoint gets its backlog without waiting.
func (h *Hooks) SetEndpoint(ctx context.Context, merchantID, rawURL, secret string) error {
	if merchantID == "" {
		return invalid("merchant", "required")
	}
	if err := h.checkURL(rawURL); err != nil {
		return err
	}
	if err := checkSecret(secret); err != nil {
		return err
	}
	sealed, err := h.seal(merchantID, secret)
	if err != nil {
		return err
	}
	now := micros(h.cfg.Now())
	upsert := `INSERT INTO webhook_endpoints (merchant_id, url, secret, updated_at)
			VALUES (?, ?, ?, ?) ON CONFLICT (merchant_id) DO UPDATE
			SET url = excluded.url, secret = excluded.secret, updated_at = excluded.updated_at`
	if h.onPostgres() {
		upsert = pgSetEndpointSQL // which ends the pause every node sees
	}
	err = h.db.Write(ctx, func(tx store.Tx) error {
		if _, err := tx.ExecContext(ctx, upsert, merchantID, rawURL, sealed, now); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `UPDATE webhook_events SET next_at = 0, updated_at = ?
			WHERE merchant_id = ? AND `+pending+` AND lease = 0 AND next_at > 0`, now, merchantID)
		return err
	})
	if err != nil {
		h.endpoints.reset()
		return fmt.Errorf("webhook: set endpoint of %s: %w", merchantID, err)
	}
	h.endpoints.set(merchantID, cachedEndpoint{url: rawURL, sealed: sealed})
	h.reset(merchantID)
	return nil
}

// reset tells a running worker to forget merchantID's failures, and wakes it.
func (h *Hooks) reset(merchantID string) {
	if !h.running.Load() {
		return // a worker that starts later knows no failures
	}
	h.mu.Lock()
	h.resets[merchantID] = true
	h.mu.Unlock()
	h.Kick()
}

// Endpoint returns merchantID's endpoint, or ErrNoEndpoint.
func (h *Hooks) Endpoint(ctx context.Context, merchantID string) (Endpoint, error) {
	e := Endpoint{MerchantID: merchantID}
	var updated int64
	err := h.db.Reader().QueryRowContext(ctx, `SELECT url, updated_at FROM webhook_endpoints WHERE merchant_id = ?`,
		merchantID).Scan(&e.URL, &updated)
	if errors.Is(err, sql.ErrNoRows) {
		return Endpoint{}, ErrNoEndpoint
	}
	if err != nil {
		return Endpoint{}, fmt.Errorf("webhook: endpoint of %s: %w", merchantID, err)
	}
	e.UpdatedAt = fromMicros(updated)
	return e, nil
}

// RemoveEndpoint removes merchantID's endpoint (ErrNoEndpoint if it had none). From then
// on nothing is queued for the merchant, and its pending events are given up.
func (h *Hooks) RemoveEndpoint(ctx context.Context, merchantID string) error {
	now := micros(h.cfg.Now())
	// Out of the map first: no event is queued for the merchant from here on.
	h.endpoints.forget(merchantID)
	err := h.db.Write(ctx, func(tx store.Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM webhook_endpoints WHERE merchant_id = ?`, merchantID)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil {
			return err
		} else if n == 0 {
			return ErrNoEndpoint
		}
		_, err = tx.ExecContext(ctx, `UPDATE webhook_events SET state = 'failed', next_at = 0,
			last_error = 'the webhook endpoint was removed', updated_at = ?
			WHERE merchant_id = ? AND `+pending+` AND lease = 0`, now, merchantID)
		return err
	})
	if errors.Is(err, ErrNoEndpoint) {
		return err
	}
	if err != nil {
		h.endpoints.reset() // the endpoint may still be there
		return fmt.Errorf("webhook: remove endpoint of %s: %w", merchantID, err)
	}
	h.reset(merchantID)
	return nil
}

// checkURL applies SetEndpoint's rules to an endpoint URL.
func (h *Hooks) checkURL(raw string) error {
	switch {
	case raw == "":
		return invalid("url", "required")
	case len(raw) > MaxURLLength:
		return invalid("url", "%d bytes long: at most %d", len(raw), MaxURLLength)
	case strings.ContainsFunc(raw, func(r rune) bool { return r <= ' ' || r == 0x7f }):
		return invalid("url", "must not contain spaces or control characters")
	}
	u, err := url.Parse(raw)
	if err != nil {
		return invalid("url", "not a URL")
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return invalid("url", "must be an http:// or https:// URL")
	}
	if u.Opaque != "" || u.Hostname() == "" {
		return invalid("url", "must name a host, as in https://shop.example/payswitch")
	}
	if u.User != nil {
		return invalid("url", "must not carry a user name or password; deliveries are signed with the secret")
	}
	if u.Fragment != "" || strings.Contains(raw, "#") {
		return invalid("url", "must not have a #fragment")
	}
	port, err := urlPort(u)
	if err != nil {
		return invalid("url", "%v", err)
	}
	if l, ok := h.forbiddenHost(u.Hostname(), port); ok {
		return invalid("url", "points at the switch itself (%s)", l)
	}
	return nil
}

// urlPort is u's port, or its scheme's.
func urlPort(u *url.URL) (uint16, error) {
	p := u.Port()
	if p == "" {
		if u.Scheme == "https" {
			return 443, nil
		}
		return 80, nil
	}
	n, err := strconv.ParseUint(p, 10, 16)
	if err != nil || n == 0 {
		return 0, fmt.Errorf("port %q: want 1 to 65535", p)
	}
	return uint16(n), nil
}

// checkSecret applies SetEndpoint's rules to a secret. It never echoes the secret.
func checkSecret(s string) error {
	if len(s) < MinSecretLength || len(s) > MaxSecretLength {
		return invalid("secret", "%d characters: want %d to %d", len(s), MinSecretLength, MaxSecretLength)
	}
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] > 0x7e {
			return invalid("secret", "must be printable ASCII characters (character %d is not)", i+1)
		}
	}
	return nil
}
