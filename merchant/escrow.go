package merchant

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/payswitch/payswitch/store"
)

// Guarantees keeps which merchants' payments are guaranteed (contract section 11): a
// payment to such a merchant waits in escrow once confirmed, until its payer releases it,
// disputes it or its release date passes. The engine asks Guaranteed when it drafts a
// payment; an operator turns it on and off (PATCH /api/v1/merchants/{id}). Only IDs the
// API found to be merchants' accounts are given to Set.
//
// On SQLite one process owns the database and its one Guarantees makes every change, so
// the settings it has read are kept in memory (a payment's draft read one from the
// reader pool, about 2% of the switch's CPU under load); on PostgreSQL other nodes
// change them, and every Guaranteed reads.
type Guarantees struct {
	db  *store.DB
	now func() time.Time

	mu    sync.Mutex
	known map[string]bool // by merchant, as last committed; nil on PostgreSQL
	gen   uint64          // moved by every Set: a read that raced one is not kept
}

// maxKnownGuarantees bounds the settings kept; a full map starts again empty.
const maxKnownGuarantees = 100_000

// NewGuarantees returns the merchants' escrow settings over db, which has Schema.
func NewGuarantees(db *store.DB, opts Options) *Guarantees {
	g := &Guarantees{db: db, now: opts.withDefaults().Now}
	if db.Dialect() != store.Postgres {
		g.known = map[string]bool{}
	}
	return g
}

// changing forgets merchantID's setting, before and after a Set's write.
func (g *Guarantees) changing(merchantID string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.gen++
	delete(g.known, merchantID)
}

// Set turns escrow on or off for merchantID's payments from now on; payments made
// already keep what they were made with. Setting what is set changes nothing.
func (g *Guarantees) Set(ctx context.Context, merchantID string, on bool) error {
	if merchantID == "" {
		return fmt.Errorf("%w: merchant: required", ErrInvalid)
	}
	g.changing(merchantID)
	defer g.changing(merchantID) // committed or not: the next Guaranteed reads
	return g.db.Write(ctx, func(tx store.Tx) error {
		var err error
		if on {
			_, err = tx.ExecContext(ctx, `INSERT INTO merchant_escrow (merchant_id, since) VALUES (?, ?)
				ON CONFLICT (merchant_id) DO NOTHING`, merchantID, micros(g.now()))
		} else {
			_, err = tx.ExecContext(ctx, `DELETE FROM merchant_escrow WHERE merchant_id = ?`, merchantID)
		}
		if err != nil {
			return fmt.Errorf("merchant: escrow of %s: %w", merchantID, err)
		}
		return nil
	})
}

// Guaranteed reports whether merchantID's payments are guaranteed, as last committed.
func (g *Guarantees) Guaranteed(ctx context.Context, merchantID string) (bool, error) {
	g.mu.Lock()
	on, ok := g.known[merchantID]
	gen := g.gen
	g.mu.Unlock()
	if ok {
		return on, nil
	}
	var since int64
	err := g.db.Reader().QueryRowContext(ctx, `SELECT since FROM merchant_escrow WHERE merchant_id = ?`,
		merchantID).Scan(&since)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		on = false
	case err != nil:
		return false, fmt.Errorf("merchant: escrow of %s: %w", merchantID, err)
	default:
		on = true
	}
	g.mu.Lock()
	if g.known != nil && g.gen == gen {
		if len(g.known) >= maxKnownGuarantees {
			g.known = map[string]bool{}
		}
		g.known[merchantID] = on
	}
	g.mu.Unlock()
	return on, nil
}
