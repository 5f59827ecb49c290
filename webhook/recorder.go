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

// recorder records delivered attempts in batches: one write, of two statements, for
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
		err := r.h.recordDelivered(context.WithoutCancel(ctx), batch)
		for _, d := range batch {
			d.done <- err
		}
	}
}

// recordDelivered marks the batch's events delivered and logs their attempts, in one
// write: an UPDATE joined to the batch's values and one multi-row INSERT. An event is
// delivered whatever became of its claim meanwhile.
func (h *Hooks) recordDelivered(ctx context.Context, batch []deliveredAttempt) error {
	now := micros(h.cfg.Now())
	var values, rows strings.Builder
	upd := make([]any, 0, 2*len(batch)+1)
	ins := make([]any, 0, 8*len(batch))
	upd = append(upd, now)
	for i, d := range batch {
		if i > 0 {
			values.WriteString(", ")
			rows.WriteString(", ")
		}
		values.WriteString("(?, ?)")
		rows.WriteString("(?, ?, ?, ?, ?, ?, '', ?)")
		upd = append(upd, d.c.seq, d.a.status)
		ins = append(ins, d.c.merchant, d.c.id, d.c.eventType, d.c.attempts+1, micros(d.a.at), d.a.status,
			d.a.duration.Microseconds())
	}
	update := `UPDATE webhook_events SET state = 'delivered', attempts = attempts + 1,
			lease = 0, next_at = 0, last_status = v.column2, last_error = '', updated_at = ?
			FROM (VALUES ` + values.String() + `) AS v WHERE webhook_events.seq = v.column1`
	if h.onPostgres() {
		seqs, statuses := make([]int64, len(batch)), make([]int64, len(batch))
		for i, d := range batch {
			seqs[i], statuses[i] = d.c.seq, int64(d.a.status)
		}
		update, upd = pgDeliveredSQL, []any{now, seqs, statuses}
	}
	err := h.db.Write(ctx, func(tx store.Tx) error {
		if _, err := tx.ExecContext(ctx, update, upd...); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO webhook_deliveries (merchant_id, event_id, event_type, attempt,
			at, status, error, duration) VALUES `+rows.String(), ins...); err != nil {
			return err
		}
		pruned := map[string]bool{}
		for _, d := range batch {
			if pruned[d.c.merchant] || !h.prune() {
				continue
			}
			pruned[d.c.merchant] = true
			if err := h.pruneLog(ctx, tx, d.c.merchant); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("webhook: record %d deliveries: %w", len(batch), err)
	}
	return nil
}
