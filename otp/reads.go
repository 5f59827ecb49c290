package otp

import (
	"context"
	"database/sql"
	"fmt"
	"iter"

	"github.com/payswitch/payswitch/store"
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
// yielded with a zero StoredEvent. q reads a SQLite database; EventsBetweenOn reads
// either.
func EventsBetween(ctx context.Context, q Querier, from, to string) iter.Seq2[StoredEvent, error] {
	return EventsBetweenOn(ctx, q, store.SQLite, from, to)
}

// EventsBetweenOn is EventsBetween for a Querier of a database of dialect d: only the
// look for otp's table differs (SQLite's catalogue is sqlite_master, PostgreSQL's is
// asked with to_regclass, which, unlike a failed query, leaves a read transaction
// usable). On PostgreSQL q should be a store.DB's ReadSnapshot, so that the events and
// the other tables an export reads agree.
func EventsBetweenOn(ctx context.Context, q Querier, d store.Dialect, from, to string) iter.Seq2[StoredEvent, error] {
	look := `SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'auth_events'`
	if d == store.Postgres {
		look = `SELECT CASE WHEN to_regclass('auth_events') IS NULL THEN 0 ELSE 1 END`
	}
	return func(yield func(StoredEvent, error) bool) {
		var n int
		if err := q.QueryRowContext(ctx, look).Scan(&n); err != nil {
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
