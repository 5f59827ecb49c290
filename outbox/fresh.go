package outbox

import (
	"context"
	"time"

	"github.com/payswitch/payswitch/store"
)

// Fresh SMS: on SQLite, while a worker takes them (OpenFresh), an SMS queued with
// EnqueueThen is written already leased to that worker, in the transaction of the change
// that causes it, and handed to the worker in memory once that transaction is durable.
// The worker sends it without claiming it: the row written with the change is the
// durable record, and the claim (a write on the store's one writer, then a read of the
// claimed rows) is left to what a crash, a stop or a failed attempt leaves behind. The
// rest is as for a claimed message: MarkSent, Retry or Fail under its lease.
//
// A message handed over and not sent (the process died, or the worker stopped before
// taking it) is due again when its lease runs out, and at the next start, which releases
// every claim (ReleaseClaims): delivery stays at least once. On PostgreSQL several nodes
// claim from one table under their names, and messages are always claimed.

// maxFresh bounds the fresh messages handed over and not yet taken; those beyond it are
// spilled: the worker gives them back to the queue in the database, where claims find
// them.
const maxFresh = 4096

// OpenFresh starts handing SMS queued with EnqueueThen to the caller, leased for lease,
// and reports whether it does: never on PostgreSQL. Call it after ReleaseClaims, from
// the one worker that sends SMS, and CloseFresh when it stops. FreshReady then signals
// hand-overs, and TakeFresh takes them.
func (o *Outbox) OpenFresh(lease time.Duration) bool {
	if o.pg || lease <= 0 {
		return false
	}
	o.freshLease.Store(int64(lease))
	o.fresh.Open()
	return true
}

// CloseFresh stops the hand-over and returns the messages handed and not taken, and
// spilled, that the worker must give back to the queue (Retry): those whose lease is
// far from its end (see TakeFresh).
func (o *Outbox) CloseFresh() []Message {
	handed, spilled := o.fresh.Close()
	o.fresh.Done(len(handed))
	back := o.startable(append(handed, spilled...))
	o.freshLease.Store(0)
	return back
}

// FreshReady is signalled after a hand-over; signals not yet received collapse into one.
func (o *Outbox) FreshReady() <-chan struct{} { return o.fresh.Ready() }

// TakeFresh returns up to limit messages handed over, oldest first, to send, and the
// spilled ones, that the worker must give back to the queue (Retry) instead of sending.
// A message with less than half its lease left is in neither: once its lease runs out a
// claim may take it, perhaps while it is being sent, so it is left to that claim.
func (o *Outbox) TakeFresh(limit int) (msgs, back []Message) {
	for {
		want := max(limit-len(msgs), 0)
		handed, spilled := o.fresh.Take(want)
		o.fresh.Done(len(handed)) // the bound is on what waits here, not on what is sent
		msgs, back = append(msgs, o.startable(handed)...), append(back, o.startable(spilled)...)
		if len(handed) < want || len(msgs) == limit || want == 0 {
			return msgs, back // none left, or enough
		}
	}
}

// startable returns the messages of ms that may still be sent from memory, or given
// back: half their lease is left.
func (o *Outbox) startable(ms []Message) []Message {
	horizon := o.now().Add(time.Duration(o.freshLease.Load()) / 2)
	var out []Message
	for _, m := range ms {
		if horizon.Before(m.NextAttemptAt) {
			out = append(out, m)
		}
	}
	return out
}

// EnqueueThen is Enqueue for a caller that can tell when its write is durable: it
// returns then, to call once the store.Write that ran EnqueueThen has returned nil, and
// never otherwise. While a worker takes fresh messages (OpenFresh), an SMS due now is
// written leased to it and then hands it over, to be sent at once without a claim;
// otherwise it is queued as by Enqueue and then is Kick.
func (o *Outbox) EnqueueThen(ctx context.Context, tx store.Tx, m Message) (id int64, then func(), err error) {
	lease := time.Duration(o.freshLease.Load())
	if lease == 0 || (m.Kind != "" && m.Kind != KindSMS) || !m.NextAttemptAt.IsZero() {
		id, err := o.Enqueue(ctx, tx, m)
		return id, o.Kick, err
	}
	now := o.now()
	m.Kind, m.State, m.Attempts = KindSMS, StateSending, 1
	m.NextAttemptAt = fromMicros(o.leaseUntil(now.Add(lease)))
	if m.CreatedAt.IsZero() {
		m.CreatedAt = now
	}
	if id, err = enqueue(ctx, tx, m, o.now, o.seal(), o.db.Dialect(), true); err != nil {
		return 0, nil, err
	}
	m.ID = id
	return id, func() { o.fresh.Hand(m) }, nil
}
