package otp

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/payswitch/payswitch/store"

	"github.com/payswitch/payswitch/internal/mask"
)

// Auth event names, as stored in auth_events.event.
const (
	EventIssued         = "issued"
	EventResent         = "resent"
	EventDelivered      = "delivered"
	EventDeliveryFailed = "delivery_failed"
	EventWrong          = "wrong"
	EventConfirmed      = "confirmed"
	EventExpired        = "expired"
	EventExhausted      = "exhausted"
	EventCancelled      = "cancelled"
)

// Auth events of contract section 14, which concern a wallet rather than a code: a LOCK
// that froze a lost phone's wallet (or an operator's freeze), a LOCK that did not (wrong
// or unknown details, or past its limits; never the id number itself), an operator's
// reactivation, and a payment request refused by its risk grade. PaymentID is empty
// but for a refused request's drafted payment.
const (
	EventLocked      = "locked"
	EventLockRefused = "lock_refused"
	EventUnlocked    = "unlocked"
	EventBlocked     = "blocked"
)

// timeLayout is RFC 3339 in UTC with a fixed six-digit fraction, so rows sort as text.
const timeLayout = "2006-01-02T15:04:05.000000Z07:00"

// Event is one step of a payment's authentication, kept for disputes. It never holds a
// code. MSISDN is given in clear to RecordEvent and stored masked; Events returns the
// masked form.
type Event struct {
	Time                                      time.Time
	PaymentID, MSISDN, Channel, Event, Detail string
}

// authEvents appends auth_events rows, which nothing reads in a write: on SQLite a
// group's go in together before its COMMIT, on PostgreSQL each with the next statement
// (store.Appender).
var authEvents = store.NewAppender("auth_events", "time", "payment_id", "msisdn_masked", "channel", "event", "detail")

// RecordEvent appends e to the auth history inside the caller's transaction, so the
// event commits (or not) with the state change it describes. Time must be set and Event
// must be one of the Event* names; PaymentID may be empty for an attempt that matched no
// payment. The number is stored masked (see Mask).
func RecordEvent(ctx context.Context, tx store.Tx, e Event) error {
	switch e.Event {
	case EventIssued, EventResent, EventDelivered, EventDeliveryFailed, EventWrong,
		EventConfirmed, EventExpired, EventExhausted, EventCancelled,
		EventLocked, EventLockRefused, EventUnlocked, EventBlocked:
	default:
		return fmt.Errorf("%w: event %q", ErrBadEvent, e.Event)
	}
	if e.Time.IsZero() {
		return fmt.Errorf("%w: %s for %s has no time", ErrBadEvent, e.Event, e.PaymentID)
	}
	err := authEvents.Append(ctx, tx,
		e.Time.UTC().Format(timeLayout), e.PaymentID, Mask(e.MSISDN), e.Channel, e.Event, e.Detail)
	if err != nil {
		return fmt.Errorf("otp: record %s for %s: %w", e.Event, e.PaymentID, err)
	}
	return nil
}

// Events calls fn for every auth event, oldest first, for the auditor export; an error
// from fn stops the walk and is returned. Event.MSISDN holds the masked number.
func Events(ctx context.Context, db *sql.DB, fn func(Event) error) error {
	rows, err := db.QueryContext(ctx, `SELECT time, payment_id, msisdn_masked, channel, event, detail
		FROM auth_events ORDER BY seq`)
	if err != nil {
		return fmt.Errorf("otp: read auth events: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var e Event
		var ts string
		if err := rows.Scan(&ts, &e.PaymentID, &e.MSISDN, &e.Channel, &e.Event, &e.Detail); err != nil {
			return fmt.Errorf("otp: read auth events: %w", err)
		}
		if e.Time, err = time.Parse(time.RFC3339Nano, ts); err != nil {
			return fmt.Errorf("otp: auth event time %q: %w", ts, err)
		}
		if err := fn(e); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("otp: read auth events: %w", err)
	}
	return nil
}

// Mask hides the middle of a phone number for logs, auth history and messages to other
// people: the first 4 and last 3 characters stay, "254700000001" -> "2547****001".
// Numbers of 5..7 characters keep only their first 2 ("22333" -> "22****"), shorter
// ones become "****", and "" stays "" so a missing number is visibly missing. A masked
// number masks to itself.
func Mask(msisdn string) string { return mask.MSISDN(msisdn) }
