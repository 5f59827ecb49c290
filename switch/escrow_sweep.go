package payswitch

import (
	"context"
	"time"
)

// escrowSweepEvery is the longest the release sweeper sleeps: a payment confirmed
// meanwhile is released at most this late after its release date, which is days away.
const escrowSweepEvery = time.Minute

// RunEscrow releases guaranteed payments whose release date has passed until ctx ends:
// at once on start (what became due while the switch was down), then at each next
// release date, and at least every escrowSweepEvery.
func (e *Engine) RunEscrow(ctx context.Context) error {
	for {
		next, err := e.ReleaseDue(ctx)
		if err != nil && ctx.Err() == nil {
			e.log.Error().Err(err).Msg("escrow release sweep failed; retrying")
		}
		wait := escrowSweepEvery
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

// The release sweeper's reads, along payments_escrow_due (a partial index over the
// payments in escrow): what is due, at most 500 at a time, oldest first, and the next
// release date.
const (
	releaseDueQuery = `SELECT id FROM payments WHERE state = 'in_escrow' AND release_at <= ?1
		ORDER BY release_at LIMIT 500`
	nextReleaseQuery = `SELECT COALESCE(MIN(release_at), 0) FROM payments WHERE state = 'in_escrow'`
)

// ReleaseDue releases every payment in escrow whose release date has passed, each in its
// own decision (releaseDue), and returns the next release date still ahead (zero if none).
func (e *Engine) ReleaseDue(ctx context.Context) (time.Time, error) {
	return e.sweepDue(ctx, releaseDueQuery, nextReleaseQuery, func(o *op, id string) error {
		s, err := o.escrowSnapshot(id)
		if err != nil {
			return err
		}
		_, err = o.apply(e.rules.releaseDue(s))
		return err
	})
}
