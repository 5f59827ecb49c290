package webhook

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"time"

	"github.com/payswitch/payswitch/store"
)

// Delivery is one attempt at delivering an event, as GET .../webhook/deliveries lists it.
type Delivery struct {
	EventID   string
	EventType string
	Attempt   int // 1 for the first attempt at the event
	At        time.Time
	Status    int    // the HTTP status answered; 0 when none came (timeout, refused, ...)
	Error     string // why it failed; "" for a 2xx
	Duration  time.Duration
	// EventState is the event's state now: pending (NextAt is its next attempt),
	// delivered or failed (given up); "" once the event is pruned.
	EventState string
	NextAt     time.Time
}

// Deliveries limits.
const (
	DefaultDeliveriesLimit = 50
	MaxDeliveriesLimit     = 500
)

// Deliveries returns merchantID's latest delivery attempts, newest first: limit of them
// (0: DefaultDeliveriesLimit; at most MaxDeliveriesLimit). A successful attempt is read
// from its event's row (kept Config.Retain), a failed one from the deliveries' log (its
// last Config.KeepDeliveries per merchant).
func (h *Hooks) Deliveries(ctx context.Context, merchantID string, limit int) ([]Delivery, error) {
	if limit <= 0 {
		limit = DefaultDeliveriesLimit
	}
	limit = min(limit, MaxDeliveriesLimit)
	rows, err := h.db.Reader().QueryContext(ctx, deliveriesSQL, merchantID, limit)
	if err != nil {
		return nil, fmt.Errorf("webhook: deliveries of %s: %w", merchantID, err)
	}
	defer rows.Close()
	out := []Delivery{}
	for rows.Next() {
		var d Delivery
		var at, dur, next int64
		if err := rows.Scan(&d.EventID, &d.EventType, &d.Attempt, &at, &d.Status, &d.Error, &dur,
			&d.EventState, &next); err != nil {
			return nil, fmt.Errorf("webhook: deliveries of %s: %w", merchantID, err)
		}
		d.At, d.Duration = fromMicros(at), time.Duration(dur)*time.Microsecond
		if d.EventState == "pending" && next > 0 {
			d.NextAt = fromMicros(next)
		}
		out = append(out, d)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("webhook: deliveries of %s: %w", merchantID, err)
	}
	return out, nil
}

// deliveriesSQL lists a merchant's (?1) latest attempts, at most ?2: its delivered
// events, each with the attempt that delivered it (last_at is 0 on events delivered
// before their attempt was kept on the row: the log has that attempt), beside the
// failed attempts of the log, each with its event's state now.
const deliveriesSQL = `SELECT event_id, event_type, attempt, at, status, error, duration, event_state, next_at FROM (
	SELECT * FROM (SELECT id AS event_id, type AS event_type, attempts AS attempt, last_at AS at, last_status AS status,
			'' AS error, last_duration AS duration, state AS event_state, 0 AS next_at
		FROM webhook_events WHERE merchant_id = ?1 AND state = 'delivered' AND last_at > 0
		ORDER BY seq DESC LIMIT ?2) AS delivered
	UNION ALL
	SELECT * FROM (SELECT d.event_id, d.event_type, d.attempt, d.at, d.status, d.error, d.duration,
			COALESCE(e.state, ''), COALESCE(e.next_at, 0)
		FROM webhook_deliveries AS d LEFT JOIN webhook_events AS e ON e.id = d.event_id
		WHERE d.merchant_id = ?1 ORDER BY d.id DESC LIMIT ?2) AS failed) AS attempts
	ORDER BY at DESC, attempt DESC LIMIT ?2`

// nextDue is when the next pending event of a merchant not in skip is due (zero time and
// true for "now"); false when there is none.
func (h *Hooks) nextDue(ctx context.Context, skip []string) (time.Time, bool, error) {
	skipJSON, err := json.Marshal(skip)
	if err != nil {
		return time.Time{}, false, err
	}
	if skip == nil {
		skipJSON = []byte("[]")
	}
	query, skipArg := `SELECT min(next_at) FROM webhook_events
		WHERE `+pending+` AND merchant_id NOT IN (SELECT value FROM json_each(?))`, any(string(skipJSON))
	if h.onPostgres() {
		query, skipArg = pgNextDueSQL, merchantList(skip)
	}
	var next sql.NullInt64
	if err := h.db.Reader().QueryRowContext(ctx, query, skipArg).Scan(&next); err != nil {
		return time.Time{}, false, err
	}
	return fromMicros(next.Int64), next.Valid, nil
}

// countQueue sets the queue depth metric: the pending events.
func (h *Hooks) countQueue(ctx context.Context) {
	var n int64
	if err := h.db.Reader().QueryRowContext(ctx, `SELECT count(*) FROM webhook_events WHERE `+pending).Scan(&n); err == nil {
		h.m.depth.Set(float64(n))
	}
}

// sweepBatch is how many finished events one write of the sweep deletes, so that the
// store's writer is never held long.
const sweepBatch = 1000

// sweep gives up the events still pending well after their RetryFor (those whose
// merchant's deliveries stayed paused past it), and deletes finished events made more
// than Config.Retain ago.
func (h *Hooks) sweep(ctx context.Context, now time.Time) {
	// An hour of grace lets a paused merchant's last attempt happen first.
	forgotten := micros(now.Add(-h.cfg.RetryFor - time.Hour))
	var gaveUp int64
	err := h.db.Write(ctx, func(tx store.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE webhook_events SET state = 'failed', next_at = 0,
			last_error = 'not delivered within retry_for', updated_at = ?
			WHERE `+pending+` AND lease = 0 AND created_at < ?`, micros(now), forgotten)
		if err != nil {
			return err
		}
		gaveUp, err = res.RowsAffected()
		return err
	})
	if err != nil {
		h.cfg.Log.Warn().Err(err).Msg("webhook: sweep: cannot give up old events")
		return
	}
	if gaveUp > 0 {
		h.cfg.Log.Warn().Int64("events", gaveUp).Msg("webhook: gave up events whose merchant's deliveries stayed paused past retry_for")
	}
	// Events made before old are found by their ID, which sorts by that time.
	old := h.ids.Floor(now.Add(-h.cfg.Retain))
	for range 100 {
		var n int64
		err := h.db.Write(ctx, func(tx store.Tx) error {
			res, err := tx.ExecContext(ctx, `DELETE FROM webhook_events WHERE seq IN (SELECT seq FROM webhook_events
				WHERE id < ? AND `+finished+` LIMIT ?)`, old, sweepBatch)
			if err != nil {
				return err
			}
			n, err = res.RowsAffected()
			return err
		})
		if err != nil {
			h.cfg.Log.Warn().Err(err).Msg("webhook: sweep: cannot delete old events")
			return
		}
		if n < sweepBatch {
			return
		}
	}
}
