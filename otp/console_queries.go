package otp

import (
	"context"
	"database/sql"
	"fmt"
	"time"
)

// PaymentEvents returns the auth history of one payment, oldest first, for the
// operators' console: what was issued, resent, delivered, wrong, expired or confirmed,
// never a code. Event.MSISDN holds the masked number. It reads through
// auth_events_by_payment, so it costs the payment's events, not the table.
func PaymentEvents(ctx context.Context, db *sql.DB, paymentID string) ([]Event, error) {
	rows, err := db.QueryContext(ctx, `SELECT time, payment_id, msisdn_masked, channel, event, detail
		FROM auth_events WHERE payment_id = ? ORDER BY seq`, paymentID)
	if err != nil {
		return nil, fmt.Errorf("otp: read auth events of %s: %w", paymentID, err)
	}
	defer rows.Close()
	var es []Event
	for rows.Next() {
		var e Event
		var ts string
		if err := rows.Scan(&ts, &e.PaymentID, &e.MSISDN, &e.Channel, &e.Event, &e.Detail); err != nil {
			return nil, fmt.Errorf("otp: read auth events of %s: %w", paymentID, err)
		}
		if e.Time, err = time.Parse(time.RFC3339Nano, ts); err != nil {
			return nil, fmt.Errorf("otp: auth event time %q: %w", ts, err)
		}
		es = append(es, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("otp: read auth events of %s: %w", paymentID, err)
	}
	return es, nil
}
