package otp

import (
	"context"
	"database/sql"
	"fmt"
	"iter"
)

// Querier is what EventsBetween needs: a read transaction (*sql.Tx) or the store
// writer's (store.Tx), so that a report that also reads other packages' tables (the
// auditor export) reads them all in one snapshot.
type Querier interface {
	QueryContext(ctx context.Context, q string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, q string, args ...any) *sql.Row
}

// StoredEvent is an auth event as stored: its time as the text written (RFC 3339, UTC,
// six decimals) and the number masked, copied as they are into the auditor export.
type StoredEvent struct {
	Time, PaymentID, MSISDNMasked, Channel, Event, Detail string
}

// EventsBetween yields the auth events whose stored time is in [from, to), oldest
// first; the bounds are times in the stored form, "" leaving that end open. A database
// without otp's tables (a ledger alone) has no events. An error ends the walk: it is
// yielded with a zero StoredEvent.
func EventsBetween(ctx context.Context, q Querier, from, to string) iter.Seq2[StoredEvent, error] {
	return func(yield func(StoredEvent, error) bool) {
		var n int
		if err := q.QueryRowContext(ctx, `SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'auth_events'`).Scan(&n); err != nil {
			yield(StoredEvent{}, fmt.Errorf("otp: look for auth_events: %w", err))
			return
		}
		if n == 0 {
			return
		}
		if to == "" {
			to = "\uffff" // sorts after every time
		}
		rows, err := q.QueryContext(ctx, `SELECT time, payment_id, msisdn_masked, channel, event, detail
			FROM auth_events WHERE time >= ? AND time < ? ORDER BY seq`, from, to)
		if err != nil {
			yield(StoredEvent{}, fmt.Errorf("otp: read auth events: %w", err))
			return
		}
		defer rows.Close()
		for rows.Next() {
			var e StoredEvent
			if err := rows.Scan(&e.Time, &e.PaymentID, &e.MSISDNMasked, &e.Channel, &e.Event, &e.Detail); err != nil {
				yield(StoredEvent{}, fmt.Errorf("otp: read auth events: %w", err))
				return
			}
			if !yield(e, nil) {
				return
			}
		}
		if err := rows.Err(); err != nil {
			yield(StoredEvent{}, fmt.Errorf("otp: read auth events: %w", err))
		}
	}
}
