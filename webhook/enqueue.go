package webhook

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/payswitch/payswitch/store"
)

// MaxBody is the largest event body Enqueue queues, envelope included. A payment's JSON
// is far smaller; the cap keeps a bug from filling the queue with giants.
const MaxBody = 256 << 10

// Enqueue queues an event of eventType about subject (the payment's ID) for merchantID
// inside tx, the store.Write of the change it reports; data is the payment's JSON
// object and at when the change happened (zero: the Hooks' clock's now), the event's
// created_at. Call Kick once that Write has returned.
//
// A merchant without an endpoint gets nothing queued, and a second event of the same
// merchant, type and subject is not queued (the first stands): a write that runs again
// queues nothing twice. The body is built here, once, so every attempt sends the same
// bytes. An unknown type, data that is not a JSON object, or a body over MaxBody is an
// error, which fails the caller's write: the change must not commit without its event.
//
// Enqueue has the method set of the engine's EventSink.
func (h *Hooks) Enqueue(ctx context.Context, tx store.Tx, merchantID, eventType, subject string, data []byte,
	at time.Time) error {
	_, _, err := h.enqueue(ctx, tx, merchantID, eventType, subject, data, at, false)
	return err
}

// enqueue is Enqueue. With fresh, the event is written leased to this process's worker
// and returned ready to deliver, lease set (fresh.go), unless its merchant's deliveries
// are paused: then it waits for the pause's end. queued is false when nothing was
// queued (no endpoint, or queued before).
func (h *Hooks) enqueue(ctx context.Context, tx store.Tx, merchantID, eventType, subject string, data []byte,
	at time.Time, fresh bool) (c claimed, queued bool, err error) {
	switch {
	case merchantID == "":
		return c, false, invalid("merchant", "required")
	case !slices.Contains(Types, eventType):
		return c, false, invalid("type", "%q is not an event type", eventType)
	case subject == "":
		return c, false, invalid("subject", "required")
	case !isObject(data):
		return c, false, invalid("data", "%s event about %s: data is not a JSON object", eventType, subject)
	}
	ep, paused, ok, err := h.endpointOf(ctx, tx, merchantID)
	if err != nil {
		return c, false, fmt.Errorf("webhook: enqueue %s of %s: %w", eventType, subject, err)
	}
	if !ok {
		return c, false, nil
	}
	c.url, c.sealed = ep.url, ep.sealed
	now := h.cfg.Now()
	if at.IsZero() {
		at = now
	}
	at = at.UTC()
	// A paused merchant's event waits for the pause's end (the database's, on
	// PostgreSQL, or this worker's), as pauseMerchant makes the waiting ones wait.
	var nextAt int64
	if until := max(paused, micros(h.pausedUntil(merchantID))); fresh && until > micros(now) {
		fresh, nextAt = false, until
	}
	if fresh {
		c.deadline = micros(h.leaseDeadline(now))
	}
	// An ID another generator took in the same tick (a restart within it) is refused by
	// its UNIQUE key; then the sequence is moved on and the insert tried again.
	for range 3 {
		id := h.ids.Next(at)
		body, err := envelope(id, eventType, at, data)
		if err != nil {
			return c, false, err
		}
		if len(body) > MaxBody {
			return c, false, invalid("data", "%s event about %s: body of %d bytes: at most %d", eventType, subject,
				len(body), MaxBody)
		}
		inserted, err := h.insertEvent(ctx, tx, &c, id, merchantID, eventType, subject, body, at, now, nextAt, fresh)
		if err != nil {
			return c, false, fmt.Errorf("webhook: enqueue %s of %s: %w", eventType, subject, err)
		}
		if inserted {
			c.id, c.merchant, c.eventType, c.body, c.created = id, merchantID, eventType, body, at
			return c, true, nil
		}
		var one int
		err = tx.QueryRowContext(ctx, `SELECT 1 FROM webhook_events WHERE merchant_id = ? AND type = ? AND subject = ?`,
			merchantID, eventType, subject).Scan(&one)
		if err == nil {
			return c, false, nil // queued before: the first stands
		}
		if !errors.Is(err, sql.ErrNoRows) {
			return c, false, fmt.Errorf("webhook: enqueue %s of %s: %w", eventType, subject, err)
		}
		h.ids.Reseed()
	}
	return c, false, fmt.Errorf("webhook: enqueue %s of %s: no free event ID", eventType, subject)
}

// insertEvent writes an event's row, due at nextAt (0: now) or, fresh, leased until
// c.deadline, the lease set in c; false when a UNIQUE key refused it.
func (h *Hooks) insertEvent(ctx context.Context, tx store.Tx, c *claimed, id, merchantID, eventType, subject string,
	body []byte, at, now time.Time, nextAt int64, fresh bool) (bool, error) {
	if !fresh {
		res, err := tx.ExecContext(ctx, `INSERT INTO webhook_events (id, merchant_id, type, subject, body, created_at,
			state, next_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, 'pending', ?, ?) ON CONFLICT DO NOTHING`,
			id, merchantID, eventType, subject, string(body), micros(at), nextAt, micros(now))
		if err != nil {
			return false, err
		}
		n, err := res.RowsAffected()
		return n == 1, err
	}
	// The lease is made unique as a claim's is: on SQLite the deadline, moved on as far
	// as it takes; on PostgreSQL a number from the claims' sequence, next_at the deadline.
	if h.onPostgres() {
		err := tx.QueryRowContext(ctx, pgInsertFreshSQL, id, merchantID, eventType, subject, string(body), micros(at),
			c.deadline, micros(now), h.node).Scan(&c.seq, &c.lease)
		if errors.Is(err, sql.ErrNoRows) {
			return false, nil
		}
		return err == nil, err
	}
	// On SQLite an INSERT without RETURNING, its row's seq from the result, is the
	// cheaper statement on the writer.
	c.deadline = h.leaseUntil(fromMicros(c.deadline))
	res, err := tx.ExecContext(ctx, `INSERT INTO webhook_events (id, merchant_id, type, subject, body, created_at, state,
		next_at, lease, updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, 'pending', ?7, ?7, ?8) ON CONFLICT DO NOTHING`,
		id, merchantID, eventType, subject, string(body), micros(at), c.deadline, micros(now))
	if err != nil {
		return false, err
	}
	if n, err := res.RowsAffected(); err != nil || n == 0 {
		return false, err
	}
	c.lease = c.deadline
	c.seq, err = res.LastInsertId()
	return err == nil, err
}

// envelope is the body of an event: contract section 10's {"id", "type", "created_at",
// "data"}, data compacted (HTML characters left alone). The ID, the type and the time are
// this package's own and need no escaping; data is copied by json.Compact, which checks
// it in the same pass.
func envelope(id, eventType string, at time.Time, data []byte) ([]byte, error) {
	b := bytes.NewBuffer(make([]byte, 0, len(data)+len(id)+len(eventType)+80))
	b.WriteString(`{"id":"`)
	b.WriteString(id)
	b.WriteString(`","type":"`)
	b.WriteString(eventType)
	b.WriteString(`","created_at":"`)
	b.Write(at.AppendFormat(b.AvailableBuffer(), time.RFC3339Nano))
	b.WriteString(`","data":`)
	if err := json.Compact(b, data); err != nil {
		return nil, invalid("data", "%s event: data is not a JSON object: %v", eventType, err)
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

// isObject reports whether data looks like one JSON object; envelope checks the rest.
func isObject(data []byte) bool {
	data = bytes.TrimSpace(data)
	return len(data) > 0 && data[0] == '{'
}
