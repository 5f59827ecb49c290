package outbox

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
)

// messageCols lists the columns scanMessage reads, in order.
const messageCols = `id, kind, to_addr, from_addr, text, payment_id, purpose, meta, request_receipt, state,
	attempts, next_attempt_at, created_at, last_error, link, message_ids, sealed`

type scanner interface{ Scan(dest ...any) error }

// scanMessage reads a row of messageCols. A sealed text stays sealed: see reveal.
func scanMessage(s scanner) (m Message, sealed bool, err error) {
	var meta, ids string
	var next, created int64
	err = s.Scan(&m.ID, &m.Kind, &m.To, &m.From, &m.Text, &m.PaymentID, &m.Purpose, &meta, &m.RequestReceipt,
		&m.State, &m.Attempts, &next, &created, &m.LastError, &m.Link, &ids, &sealed)
	if err != nil {
		return Message{}, false, err
	}
	m.NextAttemptAt, m.CreatedAt = fromMicros(next), fromMicros(created)
	if meta != "" {
		if err := json.Unmarshal([]byte(meta), &m.Meta); err != nil {
			return Message{}, false, fmt.Errorf("outbox: message %d meta: %w", m.ID, err)
		}
	}
	if ids != "" {
		if err := json.Unmarshal([]byte(ids), &m.MessageIDs); err != nil {
			return Message{}, false, fmt.Errorf("outbox: message %d ids: %w", m.ID, err)
		}
	}
	return m, sealed, nil
}

// reveal opens m's text if it was stored sealed. If it cannot, the text reads
// "[sealed]" and the error wraps ErrSealed.
func (o *Outbox) reveal(m *Message, sealed bool) error {
	if !sealed {
		return nil
	}
	return o.openText(m)
}

// Get returns message id as last committed. A sealed text that this Outbox cannot open
// reads "[sealed]".
func (o *Outbox) Get(ctx context.Context, id int64) (Message, error) {
	m, sealed, err := scanMessage(o.db.Reader().QueryRowContext(ctx, `SELECT `+messageCols+` FROM messages WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return Message{}, fmt.Errorf("%w: %d", ErrNotFound, id)
	}
	if err != nil {
		return Message{}, fmt.Errorf("outbox: get %d: %w", id, err)
	}
	o.reveal(&m, sealed) // a text that cannot be opened reads "[sealed]"
	return m, nil
}

// List returns up to limit messages to the number to (every message when to is empty),
// newest first, for tests and tools. limit < 1 means 100. Messages are not indexed by
// recipient (only calls are: see Calls), so List reads back from the newest message
// until it has found limit of them.
func (o *Outbox) List(ctx context.Context, to string, limit int) ([]Message, error) {
	if limit < 1 {
		limit = 100
	}
	q, args := `SELECT `+messageCols+` FROM messages ORDER BY id DESC LIMIT ?`, []any{limit}
	if to != "" {
		q, args = `SELECT `+messageCols+` FROM messages WHERE to_addr = ? ORDER BY id DESC LIMIT ?`, []any{to, limit}
	}
	return o.list(ctx, "list", q, args...)
}

// callsToQuery is Calls' query; its condition names kind = 'call' as calls_by_to
// (migration 5) does, for SQLite to use that index.
const callsToQuery = `SELECT ` + messageCols + ` FROM messages WHERE kind = 'call' AND to_addr = ? ORDER BY id DESC LIMIT ?`

// Calls returns up to limit calls to the number to, newest first, through the index of
// calls by recipient. limit < 1 means 100.
func (o *Outbox) Calls(ctx context.Context, to string, limit int) ([]Message, error) {
	if limit < 1 {
		limit = 100
	}
	return o.list(ctx, "calls", callsToQuery, to, limit)
}

// list runs a query of messageCols and reveals the texts; what names the caller in errors.
func (o *Outbox) list(ctx context.Context, what, q string, args ...any) ([]Message, error) {
	rows, err := o.db.Reader().QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("outbox: %s: %w", what, err)
	}
	defer rows.Close()
	var ms []Message
	for rows.Next() {
		m, sealed, err := scanMessage(rows)
		if err != nil {
			return nil, fmt.Errorf("outbox: %s: %w", what, err)
		}
		o.reveal(&m, sealed) // a text that cannot be opened reads "[sealed]"
		ms = append(ms, m)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("outbox: %s: %w", what, err)
	}
	return ms, nil
}

// Unsent counts the messages that have not gone out, by state: StateQueued,
// StateSending and StateFailed, each present (zero or not). It is the outbox's part of
// /healthz. It finds them through messages_due, which holds the queued and sending
// messages alone (reading each one's state), and messages_failed, so its cost grows
// with the backlog and the failures, not with the messages sent; Stats reads the whole
// table.
func (o *Outbox) Unsent(ctx context.Context) (map[string]int64, error) {
	var queued, sending, failed int64
	if err := o.db.Reader().QueryRowContext(ctx, unsentSQL).Scan(&queued, &sending, &failed); err != nil {
		return nil, fmt.Errorf("outbox: unsent: %w", err)
	}
	return map[string]int64{StateQueued: queued, StateSending: sending, StateFailed: failed}, nil
}

// Stats counts messages by state, with every state in States present (zero or not), for
// tests and operators. It reads every message (no index holds the states of messages
// sent); /healthz shows Unsent.
func (o *Outbox) Stats(ctx context.Context) (map[string]int64, error) {
	stats := make(map[string]int64, len(States))
	for _, s := range States {
		stats[s] = 0
	}
	rows, err := o.db.Reader().QueryContext(ctx, `SELECT state, count(*) FROM messages GROUP BY state`)
	if err != nil {
		return nil, fmt.Errorf("outbox: stats: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var state string
		var n int64
		if err := rows.Scan(&state, &n); err != nil {
			return nil, fmt.Errorf("outbox: stats: %w", err)
		}
		stats[state] = n
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("outbox: stats: %w", err)
	}
	return stats, nil
}
