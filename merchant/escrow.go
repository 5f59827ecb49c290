package merchant

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/payswitch/payswitch/store"
)

// Guarantees keeps which merchants' payments are guaranteed (contract section 11): a
// payment to such a merchant waits in escrow once confirmed, until its payer releases it,
// disputes it or its release date passes. The engine asks Guaranteed when it drafts a
// payment; an operator turns it on and off (PATCH /api/v1/merchants/{id}). Only IDs the
// API found to be merchants' accounts are given to Set.
type Guarantees struct {
	db  *store.DB
	now func() time.Time
}

// NewGuarantees returns the merchants' escrow settings over db, which has Schema.
func NewGuarantees(db *store.DB, opts Options) *Guarantees {
	return &Guarantees{db: db, now: opts.withDefaults().Now}
}

// Set turns escrow on or off for merchantID's payments from now on; payments made
// already keep what they were made with. Setting what is set changes nothing.
func (g *Guarantees) Set(ctx context.Context, merchantID string, on bool) error {
	if merchantID == "" {
		return fmt.Errorf("%w: merchant: required", ErrInvalid)
	}
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
	var since int64
	err := g.db.Reader().QueryRowContext(ctx, `SELECT since FROM merchant_escrow WHERE merchant_id = ?`,
		merchantID).Scan(&since)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return false, nil
	case err != nil:
		return false, fmt.Errorf("merchant: escrow of %s: %w", merchantID, err)
	}
	return true, nil
}
