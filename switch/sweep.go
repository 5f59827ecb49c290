package payswitch

import (
	"context"
	"time"
)

// sweepBatch is how many due payments a sweeper's query lists at most (its LIMIT, per
// branch): a sweep reads again while a batch comes back full.
const sweepBatch = 500

// sweepDue is what the expiry and escrow-release sweepers share: dueQuery lists the IDs
// of the payments due at now (its ?1), decide acts on each in a write of its own (the
// store commits them together), until a batch comes back short; then nextQuery gives
// the next deadline still ahead (zero if none).
func (e *Engine) sweepDue(ctx context.Context, dueQuery, nextQuery string, decide func(o *op, id string) error) (time.Time, error) {
	for {
		ids, err := e.dueIDs(ctx, dueQuery, e.now().UTC().UnixMicro())
		if err != nil {
			return time.Time{}, err
		}
		if len(ids) == 0 {
			break
		}
		errs := make(chan error, len(ids))
		for _, id := range ids {
			go func() { errs <- e.write(ctx, func(o *op) error { return decide(o, id) }) }()
		}
		var first error
		for range ids {
			if err := <-errs; err != nil && first == nil {
				first = err
			}
		}
		if first != nil {
			return time.Time{}, first
		}
		if len(ids) < sweepBatch {
			break
		}
	}
	var next int64
	if err := e.db.Reader().QueryRowContext(ctx, nextQuery).Scan(&next); err != nil || next == 0 {
		return time.Time{}, err
	}
	return time.UnixMicro(next), nil
}

// dueIDs are the payment IDs that query, given now, lists.
func (e *Engine) dueIDs(ctx context.Context, query string, now int64) ([]string, error) {
	rows, err := e.db.Reader().QueryContext(ctx, query, now)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, err
		}
		ids = append(ids, id)
	}
	return ids, rows.Err()
}
