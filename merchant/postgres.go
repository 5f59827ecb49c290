package merchant

import (
	"context"
	"fmt"

	"github.com/payswitch/payswitch/store"
)

// lockMerchant takes, on PostgreSQL, a lock on merchantID's rows of kind (keys,
// products, stores) until tx ends, so that of two nodes counting a merchant's rows
// against its cap, the second counts after the first has committed. On SQLite the one
// writer already does that, and nothing is run.
func lockMerchant(ctx context.Context, db *store.DB, tx store.Tx, kind, merchantID string) error {
	if db.Dialect() != store.Postgres {
		return nil
	}
	if _, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock(hashtextextended(?, 0))`,
		"merchant "+kind+" "+merchantID); err != nil {
		return fmt.Errorf("merchant: lock %s of %s: %w", kind, merchantID, err)
	}
	return nil
}

// dropOldRevokedSQL deletes a merchant's revoked keys beyond the newest ?2: "no limit"
// is LIMIT -1 on SQLite and LIMIT ALL on PostgreSQL.
func dropOldRevokedSQL(d store.Dialect) string {
	limit := "-1"
	if d == store.Postgres {
		limit = "ALL"
	}
	return `DELETE FROM merchant_keys WHERE id IN (
			SELECT id FROM merchant_keys WHERE merchant_id = ?1 AND revoked_at IS NOT NULL
			ORDER BY revoked_at DESC, id DESC LIMIT ` + limit + ` OFFSET ?2)`
}
