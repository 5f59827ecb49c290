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
	switch {
	case merchantID == "":
		return invalid("merchant", "required")
	case !slices.Contains(Types, eventType):
		return invalid("type", "%q is not an event type", eventType)
	case subject == "":
		return invalid("subject", "required")
	case !isObject(data):
		return invalid("data", "%s event about %s: data is not a JSON object", eventType, subject)
	}
	var one int
	err := tx.QueryRowContext(ctx, `SELECT 1 FROM webhook_endpoints WHERE merchant_id = ?`, merchantID).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("webhook: enqueue %s of %s: %w", eventType, subject, err)
	}
	if at.IsZero() {
		at = h.cfg.Now()
	}
	at = at.UTC()
	// An ID another generator took in the same tick (a restart within it) is refused by
	// its UNIQUE key; then the sequence is moved on and the insert tried again.
	for range 3 {
		id := h.ids.Next(at)
		body, err := envelope(id, eventType, at, data)
		if err != nil {
			return err
		}
		if len(body) > MaxBody {
			return invalid("data", "%s event about %s: body of %d bytes: at most %d", eventType, subject, len(body), MaxBody)
		}
		res, err := tx.ExecContext(ctx, `INSERT INTO webhook_events (id, merchant_id, type, subject, body, created_at,
			state, next_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, 'pending', 0, ?) ON CONFLICT DO NOTHING`,
			id, merchantID, eventType, subject, string(body), micros(at), micros(h.cfg.Now()))
		if err != nil {
			return fmt.Errorf("webhook: enqueue %s of %s: %w", eventType, subject, err)
		}
		if n, err := res.RowsAffected(); err != nil || n == 1 {
			return err
		}
		err = tx.QueryRowContext(ctx, `SELECT 1 FROM webhook_events WHERE merchant_id = ? AND type = ? AND subject = ?`,
			merchantID, eventType, subject).Scan(&one)
		if err == nil {
			return nil // queued before: the first stands
		}
		if !errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("webhook: enqueue %s of %s: %w", eventType, subject, err)
		}
		h.ids.Reseed()
	}
	return fmt.Errorf("webhook: enqueue %s of %s: no free event ID", eventType, subject)
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
