package payswitch

import (
	"context"
	"time"
)

// Run expires payments whose code has run out until ctx ends: at once on start (what
// went overdue while the switch was down), then at each next deadline, checked at least
// every second so that payments created meanwhile are not missed.
func (e *Engine) Run(ctx context.Context) error {
	for {
		next, err := e.ExpireDue(ctx)
		if err != nil && ctx.Err() == nil {
			e.log.Error().Err(err).Msg("expiry sweep failed; retrying")
		}
		wait := time.Second
		if !next.IsZero() {
			if d := next.Sub(e.now()); d < wait {
				wait = max(d, 10*time.Millisecond)
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-e.after(wait):
		}
	}
}

// The sweeper's reads: what is due (payments waiting for their code, and merchants'
// requests, whose deadline passed: at most 500 of each, oldest first), and the next
// deadline; each branch along the partial index of its state, so that a backlog after a
// restart is never sorted whole. "expires_at >= 0" (every deadline is) is part of those
// indexes' condition on PostgreSQL, so that they serve only the sweeper
// (migrationExpiryPredicatesPG); on SQLite the queries imply its indexes' condition all
// the same.
const (
	dueQuery = `SELECT id FROM (SELECT id FROM payments WHERE state = 'pending_otp' AND expires_at >= 0
			AND expires_at <= ?1 ORDER BY expires_at LIMIT 500) AS pending
		UNION ALL
		SELECT id FROM (SELECT id FROM payments WHERE state = 'requested' AND expires_at >= 0
			AND expires_at <= ?1 ORDER BY expires_at LIMIT 500) AS requested`
	nextDueQuery = `SELECT COALESCE(MIN(next), 0) FROM (
		SELECT MIN(expires_at) AS next FROM payments WHERE state = 'pending_otp' AND expires_at >= 0
		UNION ALL
		SELECT MIN(expires_at) FROM payments WHERE state = 'requested' AND expires_at >= 0
	) AS deadlines`
)

// ExpireDue expires every payment waiting for its code, and every merchant's request,
// whose deadline has passed and returns the next deadline still ahead (zero if none).
func (e *Engine) ExpireDue(ctx context.Context) (time.Time, error) {
	return e.sweepDue(ctx, dueQuery, nextDueQuery, func(o *op, id string) error {
		p, err := o.snap.payment(id)
		if err != nil {
			return err
		}
		if p.State == StateRequested { // its merchant hears of it, with its items
			if err := o.loadItems(p); err != nil {
				return err
			}
		}
		_, err = o.apply(e.rules.expireDue(p, o.now))
		return err
	})
}
