package webhook

import (
	"context"
	"sync"
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

// freshQueue is the hand-over between the writers that queued fresh events and the
// worker.
type freshQueue struct {
	mu sync.Mutex
	// open is set while a worker takes fresh events: from after Run released the old
	// claims until Run ends. EnqueueThen leases events only then.
	open    bool
	handed  []claimed // committed, not yet taken by the worker
	spilled []claimed // committed, beyond maxFresh: to release to the database
	held    int       // handed plus those the worker holds, not yet started
	ready   chan struct{}
}

func newFreshQueue() *freshQueue { return &freshQueue{ready: make(chan struct{}, 1)} }

// isOpen reports whether a worker takes fresh events.
func (q *freshQueue) isOpen() bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.open
}

// hand gives the worker a committed event. One handed after the worker stopped is left
// as written: leased, due again when its lease runs out (on SQLite, at the next start).
func (q *freshQueue) hand(c claimed) {
	q.mu.Lock()
	switch {
	case !q.open:
	case q.held >= maxFresh:
		q.spilled = append(q.spilled, c)
	default:
		q.handed = append(q.handed, c)
		q.held++
	}
	q.mu.Unlock()
	select {
	case q.ready <- struct{}{}:
	default:
	}
}

// take returns what was handed over and spilled since the last take.
func (q *freshQueue) take() (handed, spilled []claimed) {
	q.mu.Lock()
	defer q.mu.Unlock()
	handed, spilled = q.handed, q.spilled
	q.handed, q.spilled = nil, nil
	return handed, spilled
}

// done counts n held events as started or released.
func (q *freshQueue) done(n int) {
	q.mu.Lock()
	q.held -= n
	q.mu.Unlock()
}

// setOpen opens or closes the hand-over; closing returns what is still handed.
func (q *freshQueue) setOpen(open bool) (handed, spilled []claimed) {
	q.mu.Lock()
	q.open = open
	q.mu.Unlock()
	if open {
		return nil, nil
	}
	return q.take()
}

// EnqueueThen is Enqueue for a caller that can tell when its write has committed: it
// returns then, which the caller must call once the store.Write that ran EnqueueThen
// has returned nil, and never otherwise (nil when nothing was queued). While the worker
// runs, the event is written leased to it and then hands it over, to be delivered at
// once without a claim; otherwise then only wakes the worker, as Kick does.
func (h *Hooks) EnqueueThen(ctx context.Context, tx store.Tx, merchantID, eventType, subject string, data []byte,
	at time.Time) (then func(), err error) {
	c, queued, err := h.enqueue(ctx, tx, merchantID, eventType, subject, data, at, h.fresh.isOpen())
	switch {
	case err != nil || !queued:
		return nil, err
	case c.lease == 0:
		return h.Kick, nil
	}
	return func() { h.fresh.hand(c) }, nil
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
