package webhook

import (
	"context"
	"time"

	"github.com/payswitch/payswitch/store"
)

// Fresh events: an event queued with EnqueueThen is written already leased to this
// process's worker, in the transaction of the change it reports, and handed to the
// worker in memory once that transaction has committed. The worker delivers it without
// claiming it: the row written with the change is the durable record, and the claim (a
// write on the store's one writer, and a scan of the queue) is left to what a crash, a
// stop or a failed attempt leaves behind. Nothing else changes: the event is recorded
// delivered or retried as a claimed one is, under its lease.
//
// An event handed over and not delivered (the process died, or the worker stopped
// before taking it) is due again when its lease runs out, and on SQLite at the worker's
// next start, which releases every lease: delivery stays at least once.

// maxFresh bounds the fresh events held in memory, handed over and not yet started;
// those beyond it are released to the queue in the database, where claims find them.
const maxFresh = 4096

// EnqueueThen is Enqueue for a caller that can tell when its write has committed: it
// returns then, which the caller must call once the store.Write that ran EnqueueThen
// has returned nil, and never otherwise (nil when nothing was queued). While the worker
// runs, the event is written leased to it and then hands it over, to be delivered at
// once without a claim; otherwise then only wakes the worker, as Kick does.
func (h *Hooks) EnqueueThen(ctx context.Context, tx store.Tx, merchantID, eventType, subject string, data []byte,
	at time.Time) (then func(), err error) {
	c, queued, err := h.enqueue(ctx, tx, merchantID, eventType, subject, data, at, h.fresh.IsOpen())
	switch {
	case err != nil || !queued:
		return nil, err
	case c.lease == 0:
		return h.Kick, nil
	}
	return func() { h.fresh.Hand(c) }, nil
}

// startable reports whether a fresh event may still be delivered from memory at now:
// its lease must outlast a delivery started now, or another claim could take it while
// it is delivered.
func (h *Hooks) startable(c claimed, now time.Time) bool {
	return now.Add(h.cfg.Timeout + 5*time.Second).Before(fromMicros(c.deadline))
}

// releaseFresh makes fresh events the worker will not deliver from memory due now, for
// the claims: each only while it still holds the lease it was written with.
func (h *Hooks) releaseFresh(ctx context.Context, cs []claimed) error {
	if len(cs) == 0 {
		return nil
	}
	now := micros(h.cfg.Now())
	return h.db.Write(ctx, func(tx store.Tx) error {
		for _, c := range cs {
			if _, err := tx.ExecContext(ctx, `UPDATE webhook_events SET lease = 0, next_at = 0, updated_at = ?
				WHERE seq = ? AND lease = ? AND `+pending, now, c.seq, c.lease); err != nil {
				return err
			}
		}
		return nil
	})
}

// pausedUntil is when the worker's pause of merchant ends (zero: not paused), as the
// worker last published it.
func (h *Hooks) pausedUntil(merchant string) time.Time {
	if p := h.pauses.Load(); p != nil {
		return (*p)[merchant]
	}
	return time.Time{}
}
