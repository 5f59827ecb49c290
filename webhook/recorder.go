package webhook

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/payswitch/payswitch/store"
)

// maxRecordBatch bounds the delivered attempts one write records.
const maxRecordBatch = 256

// deliveredAttempt is a delivered attempt waiting to be recorded.
type deliveredAttempt struct {
	c claimed
	a attempt
}

// recorder records delivered attempts in batches: one write, of two statements, for
// every attempt that ended during the last recordLinger. A delivery is most of what a
// busy merchant's webhooks ask of the store's single writer, which the payments share;
// one write per delivery cost as many writer operations again as a third of a payment's.
// Failed attempts are fewer and are recorded one by one (Hooks.record), since each
// needs its backoff.
//
// A delivered attempt's worker slot is free as soon as it is handed over (the event
// stays leased until its record is written, so no claim takes it meanwhile): the
// recorder can wait for a batch as large as its pages allow without holding deliveries
// up. It reports each write's attempts to Run on out.
type recorder struct {
	h   *Hooks
	in  chan deliveredAttempt // closed by Run once no delivery is in flight
	out chan []done           // each write's attempts; closed when in is drained
}

func newRecorder(h *Hooks) *recorder {
	return &recorder{h: h, in: make(chan deliveredAttempt, maxRecordBatch), out: make(chan []done, 1)}
}

// add hands a delivered attempt to the recorder.
func (r *recorder) add(c claimed, a attempt) { r.in <- deliveredAttempt{c: c, a: a} }

// recordLinger is how long the recorder waits for more delivered attempts once one has
// come, when fewer than maxRecordBatch are waiting. Each write touches much the same
// pages however many attempts it records (the end of the deliveries' log, its index
// once per merchant, the indexes of due and finished events), and every page a commit
// touches is copied whole into the write-ahead log and later into the database: the
// larger the batch, the fewer bytes the store writes per event.
const recordLinger = 50 * time.Millisecond

// run writes batches until in is closed and drained; ctx is for the writes.
func (r *recorder) run(ctx context.Context) {
	defer close(r.out)
	for open := true; open; {
		d, ok := <-r.in
		if !ok {
			return
		}
		batch := []deliveredAttempt{d}
		linger := time.NewTimer(recordLinger)
	collect:
		for len(batch) < maxRecordBatch {
			select {
			case d, ok := <-r.in:
				if !ok {
					open = false
					break collect
				}
				batch = append(batch, d)
			case <-linger.C:
				break collect
			}
		}
		linger.Stop()
		r.out <- r.write(ctx, batch)
	}
}

// write records batch and returns how each attempt ended: delivered, or "" when the
// write failed (the events are claimed again when their lease runs out).
func (r *recorder) write(ctx context.Context, batch []deliveredAttempt) []done {
	h := r.h
	err := h.recordDelivered(ctx, batch)
	if err != nil {
		h.cfg.Log.Error().Err(err).Int("deliveries", len(batch)).
			Msg("webhook: cannot record deliveries; their events are claimed again when their lease runs out")
	}
	report := make([]done, len(batch))
	for i, d := range batch {
		report[i].merchant = d.c.merchant
		if err == nil {
			report[i].outcome = outcomeDelivered
			h.observe(d.c, d.a, outcomeDelivered, time.Time{})
		}
	}
	return report
}

// recordDelivered marks the batch's events delivered and logs their attempts, in one
// write of two statements whose text is the same for every batch, so that the store
// prepares them once: the batch goes as one JSON argument (SQLite's json_each) or as
// arrays (PostgreSQL's unnest). An event is delivered whatever became of its claim
// meanwhile.
func (h *Hooks) recordDelivered(ctx context.Context, batch []deliveredAttempt) error {
	now := micros(h.cfg.Now())
	update, insert := deliveredSQL, deliveriesSQL
	var upd, ins []any
	if h.onPostgres() {
		update, insert = pgDeliveredSQL, pgDeliveriesSQL
		seqs, statuses := make([]int64, len(batch)), make([]int64, len(batch))
		merchants, ids, types := make([]string, len(batch)), make([]string, len(batch)), make([]string, len(batch))
		attempts, ats, durations := make([]int64, len(batch)), make([]int64, len(batch)), make([]int64, len(batch))
		for i, d := range batch {
			seqs[i], statuses[i] = d.c.seq, int64(d.a.status)
			merchants[i], ids[i], types[i] = d.c.merchant, d.c.id, d.c.eventType
			attempts[i], ats[i], durations[i] = int64(d.c.attempts+1), micros(d.a.at), d.a.duration.Microseconds()
		}
		upd = []any{now, seqs, statuses}
		ins = []any{merchants, ids, types, attempts, ats, statuses, durations}
	} else {
		events, attempts := make([][2]int64, len(batch)), make([][7]any, len(batch))
		for i, d := range batch {
			events[i] = [2]int64{d.c.seq, int64(d.a.status)}
			attempts[i] = [7]any{d.c.merchant, d.c.id, d.c.eventType, d.c.attempts + 1, micros(d.a.at), d.a.status,
				d.a.duration.Microseconds()}
		}
		ev, err := json.Marshal(events)
		if err != nil {
			return err
		}
		at, err := json.Marshal(attempts)
		if err != nil {
			return err
		}
		upd, ins = []any{now, string(ev)}, []any{string(at)}
	}
	err := h.db.Write(ctx, func(tx store.Tx) error {
		if _, err := tx.ExecContext(ctx, update, upd...); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, insert, ins...); err != nil {
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

// deliveredSQL marks a batch delivered on SQLite: args now, and the batch as a JSON
// array of [seq, status].
const deliveredSQL = `UPDATE webhook_events SET state = 'delivered', attempts = attempts + 1, lease = 0,
	next_at = 0, last_status = v.status, last_error = '', updated_at = ?1
	FROM (SELECT value ->> 0 AS seq, value ->> 1 AS status FROM json_each(?2)) AS v WHERE webhook_events.seq = v.seq`

// deliveriesSQL logs a batch's attempts on SQLite: a JSON array of [merchant, event ID,
// type, attempt, at, status, duration].
const deliveriesSQL = `INSERT INTO webhook_deliveries (merchant_id, event_id, event_type, attempt, at, status, error,
	duration) SELECT value ->> 0, value ->> 1, value ->> 2, value ->> 3, value ->> 4, value ->> 5, '', value ->> 6
	FROM json_each(?) ORDER BY key`
