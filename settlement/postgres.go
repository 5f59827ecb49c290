package settlement

import (
	"context"
	"fmt"

	"github.com/payswitch/payswitch/store"
)

// lockDay makes settlements of one day run one at a time across the nodes sharing a
// PostgreSQL database. Without it, two runs at once both find no transfer under a
// merchant's key, and the second, after the first commits, reads a smaller available
// balance, asks the ledger to move a different amount under the same key and is refused
// (its line failed while the money did move). Under the lock, the second run reads after
// the first's commit (each statement takes a new snapshot at READ COMMITTED) and finds
// every transfer already settled. The lock is the transaction's: it ends at commit or
// rollback. On SQLite the one writer already runs settlements one at a time.
func lockDay(ctx context.Context, tx store.Tx, d store.Dialect, day Day) error {
	if d != store.Postgres {
		return nil
	}
	if _, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock(hashtextextended(?, 0))`,
		"payswitch settlement "+day.Date); err != nil {
		return fmt.Errorf("settlement: lock %s: %w", day.Date, err)
	}
	return nil
}
