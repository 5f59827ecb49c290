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

// ExpireDue expires every pending payment whose deadline has passed and returns the next
// deadline still ahead (zero if none).
func (e *Engine) ExpireDue(ctx context.Context) (time.Time, error) {
	for {
		now := e.now().UTC()
		rows, err := e.db.Reader().QueryContext(ctx, `SELECT id FROM payments
			WHERE state = 'pending_otp' AND expires_at <= ? ORDER BY expires_at LIMIT 500`, now.UnixMicro())
		if err != nil {
			return time.Time{}, err
		}
		var ids []string
		for rows.Next() {
			var id string
			if err := rows.Scan(&id); err != nil {
				rows.Close()
				return time.Time{}, err
			}
			ids = append(ids, id)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return time.Time{}, err
		}
		if len(ids) == 0 {
			break
		}
		errs := make(chan error, len(ids))
		for _, id := range ids {
			// Each expiry is its own decision; the store commits them together.
			go func() {
				errs <- e.write(ctx, func(o *op) error {
					p, err := o.snap.payment(id)
					if err != nil {
						return err
					}
					_, err = o.apply(e.rules.expireDue(p, o.now))
					return err
				})
			}()
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
		if len(ids) < 500 {
			break
		}
	}
	var next int64
	err := e.db.Reader().QueryRowContext(ctx, `SELECT COALESCE(MIN(expires_at), 0) FROM payments
		WHERE state = 'pending_otp'`).Scan(&next)
	if err != nil || next == 0 {
		return time.Time{}, err
	}
	return time.UnixMicro(next), nil
}
