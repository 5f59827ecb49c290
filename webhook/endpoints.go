package webhook

import (
	"context"
	"database/sql"
	"errors"
	"sync"

	"github.com/payswitch/payswitch/store"
)

// endpoints is what Enqueue needs of the merchants' endpoints, kept in memory on SQLite,
// where this process's Hooks is the only one that changes them (serve holds the
// database): a payment's write then learns whether its merchant has an endpoint, and
// where a fresh event goes, without a read on the store's one writer. On PostgreSQL
// other nodes change endpoints too, and Enqueue reads them in its transaction.
//
// The map is loaded from the database (a committed snapshot) at the first Enqueue and
// then kept by SetEndpoint and RemoveEndpoint: a removal leaves the map before its
// write, so that no event is queued for the merchant once the removal has started; a
// new endpoint enters it once its write has committed. A write that failed empties the
// map, to be loaded again. gen tells a load that raced with a change to throw its
// snapshot away.
type endpoints struct {
	mu     sync.Mutex
	loaded bool
	gen    uint64
	m      map[string]cachedEndpoint
}

// cachedEndpoint is an endpoint's URL and sealed secret.
type cachedEndpoint struct{ url, sealed string }

// lookup returns merchant's endpoint; loaded is false when the map must be loaded first.
func (e *endpoints) lookup(merchant string) (ep cachedEndpoint, ok, loaded bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if !e.loaded {
		return cachedEndpoint{}, false, false
	}
	ep, ok = e.m[merchant]
	return ep, ok, true
}

// load reads every endpoint from db's committed state, unless a change came meanwhile.
func (e *endpoints) load(ctx context.Context, db *store.DB) error {
	gen := e.generation()
	rows, err := db.Reader().QueryContext(ctx, `SELECT merchant_id, url, secret FROM webhook_endpoints`)
	if err != nil {
		return err
	}
	defer rows.Close()
	m := map[string]cachedEndpoint{}
	for rows.Next() {
		var id string
		var ep cachedEndpoint
		if err := rows.Scan(&id, &ep.url, &ep.sealed); err != nil {
			return err
		}
		m[id] = ep
	}
	if err := rows.Err(); err != nil {
		return err
	}
	e.install(gen, m)
	return nil
}

// generation is the count of changes so far, taken before a load reads.
func (e *endpoints) generation() uint64 {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.gen
}

// install keeps m, read after generation returned gen, unless a change came since.
func (e *endpoints) install(gen uint64, m map[string]cachedEndpoint) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.gen == gen {
		e.m, e.loaded = m, true
	}
}

// set records merchant's endpoint once its write has committed; forget drops it.
func (e *endpoints) set(merchant string, ep cachedEndpoint) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.gen++
	if e.loaded {
		e.m[merchant] = ep
	}
}

func (e *endpoints) forget(merchant string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.gen++
	if e.loaded {
		delete(e.m, merchant)
	}
}

// reset empties the map after a change whose outcome is unknown.
func (e *endpoints) reset() {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.gen++
	e.m, e.loaded = nil, false
}

// endpointOf returns what enqueue needs of merchant's endpoint: its URL, its sealed
// secret and (on PostgreSQL) the end of its pause; ok is false when it has none. tx is
// the write that queues the event.
func (h *Hooks) endpointOf(ctx context.Context, tx store.Tx, merchant string) (ep cachedEndpoint, paused int64,
	ok bool, err error) {
	if h.onPostgres() {
		return readEndpoint(ctx, tx, merchant, `SELECT url, secret, paused_until FROM webhook_endpoints
			WHERE merchant_id = ?`)
	}
	if ep, ok, loaded := h.endpoints.lookup(merchant); loaded {
		return ep, 0, ok, nil
	}
	if err := h.endpoints.load(ctx, h.db); err != nil {
		return ep, 0, false, err
	}
	if ep, ok, loaded := h.endpoints.lookup(merchant); loaded {
		return ep, 0, ok, nil
	}
	// A change raced with the load: read this one in the write itself.
	return readEndpoint(ctx, tx, merchant, `SELECT url, secret, 0 FROM webhook_endpoints WHERE merchant_id = ?`)
}

// readEndpoint runs query, which reads merchant's URL, sealed secret and pause, in tx.
func readEndpoint(ctx context.Context, tx store.Tx, merchant, query string) (ep cachedEndpoint, paused int64,
	ok bool, err error) {
	err = tx.QueryRowContext(ctx, query, merchant).Scan(&ep.url, &ep.sealed, &paused)
	if errors.Is(err, sql.ErrNoRows) {
		return ep, 0, false, nil
	}
	return ep, paused, err == nil, err
}

// Wants reports whether an event for merchantID would be queued now, as far as this
// process can tell without a read: false only when the merchant surely has no endpoint
// (on SQLite, from the map). The engine asks before it builds an event's data.
func (h *Hooks) Wants(merchantID string) bool {
	if h.onPostgres() {
		return true
	}
	_, ok, loaded := h.endpoints.lookup(merchantID)
	return ok || !loaded
}
