package webhook

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/payswitch/payswitch/store"
)

// maxRecordBatch bounds the delivered attempts one write records.
const maxRecordBatch = 256

// deliveredAttempt is a delivered attempt waiting to be recorded; done gets the write's
// outcome.
type deliveredAttempt struct {
	c    claimed
	a    attempt
	done chan error
}

// recorder records delivered attempts in batches: one write, of one statement, for
// every attempt that ended while the last write ran. A delivery is most of what a busy
// merchant's webhooks ask of the store's single writer, which the payments share; one
// write per delivery cost as many writer operations again as a third of a payment's.
// Failed attempts are fewer and are recorded one by one (Hooks.record), since each
// needs its backoff.
type recorder struct {
	h  *Hooks
	in chan deliveredAttempt
}

func newRecorder(h *Hooks) *recorder {
	return &recorder{h: h, in: make(chan deliveredAttempt, maxRecordBatch)}
}

// record hands a delivered attempt to the recorder and waits until it is written.
func (r *recorder) record(c claimed, a attempt) error {
	done := make(chan error, 1)
	r.in <- deliveredAttempt{c: c, a: a, done: done}
	return <-done
}

// recordLinger is how long the recorder waits for more delivered attempts once one has
// come, when fewer than maxRecordBatch are waiting: fresh events are delivered one by
// one as their payments commit, and without the wait each write would record only the
// few that ended during the last one. The write is a writer operation beside the
// payments', and its statements cost much the same for one attempt as for many.
const recordLinger = 5 * time.Millisecond

// run writes batches until ctx ends. Run stops it only once no delivery is in flight, so
// nothing waits in record then.
func (r *recorder) run(ctx context.Context) {
	for {
		var batch []deliveredAttempt
		select {
		case <-ctx.Done():
			return
		case d := <-r.in:
			batch = append(batch, d)
		}
		linger := time.NewTimer(recordLinger)
	collect:
		for len(batch) < maxRecordBatch {
			select {
			case d := <-r.in:
				batch = append(batch, d)
			case <-linger.C:
				break collect
			case <-ctx.Done():
				break collect
			}
		}
		linger.Stop()
		if r.h.beforeRecord != nil {
			r.h.beforeRecord()
		}
		err := r.h.recordDelivered(context.WithoutCancel(ctx), batch)
		for _, d := range batch {
			d.done <- err
		}
	}
}

// recordDelivered marks the batch's events delivered, each with its attempt (its time,
// status and duration: the delivery log's entry of a successful attempt, see
// Deliveries), in one statement: an UPDATE joined to the batch's values. An event is
// delivered whatever became of its claim meanwhile.
func (h *Hooks) recordDelivered(ctx context.Context, batch []deliveredAttempt) error {
	now := micros(h.cfg.Now())
	update, args := h.deliveredSQL(now, batch)
	err := h.db.Write(ctx, func(tx store.Tx) error {
		_, err := tx.ExecContext(ctx, update, args...)
		return err
	})
	if err != nil {
		return fmt.Errorf("webhook: record %d deliveries: %w", len(batch), err)
	}
	return nil
}

// deliveredSQL is recordDelivered's statement and its arguments.
func (h *Hooks) deliveredSQL(now int64, batch []deliveredAttempt) (string, []any) {
	if h.onPostgres() {
		seqs, statuses := make([]int64, len(batch)), make([]int64, len(batch))
		ats, durations := make([]int64, len(batch)), make([]int64, len(batch))
		for i, d := range batch {
			seqs[i], statuses[i] = d.c.seq, int64(d.a.status)
			ats[i], durations[i] = micros(d.a.at), d.a.duration.Microseconds()
		}
		return pgDeliveredSQL, []any{now, seqs, statuses, ats, durations}
	}
	var values strings.Builder
	args := make([]any, 0, 4*len(batch)+1)
	args = append(args, now)
	for i, d := range batch {
		if i > 0 {
			values.WriteString(", ")
		}
		values.WriteString("(?, ?, ?, ?)")
		args = append(args, d.c.seq, d.a.status, micros(d.a.at), d.a.duration.Microseconds())
	}
	return `UPDATE webhook_events SET state = 'delivered', attempts = attempts + 1, lease = 0, next_at = 0,
			last_status = v.column2, last_error = '', last_at = v.column3, last_duration = v.column4, updated_at = ?
			FROM (VALUES ` + values.String() + `) AS v WHERE webhook_events.seq = v.column1`, args
}
