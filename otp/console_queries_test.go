package otp

import (
	"context"
	"testing"
	"time"

	"github.com/payswitch/payswitch/internal/pgtest"

	"github.com/payswitch/payswitch/store"
)

// PaymentEvents returns one payment's auth history in order, with the number masked.
func TestPaymentEvents(t *testing.T) {
	pgtest.Both(t, func(t *testing.T) {
		db := mustOpen(t)
		ctx := context.Background()
		t0 := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
		err := db.Write(ctx, func(tx store.Tx) error {
			for i, e := range []Event{
				{PaymentID: "PAYMENTAAA", Event: EventIssued},
				{PaymentID: "PAYMENTBBB", Event: EventIssued},
				{PaymentID: "PAYMENTAAA", Event: EventWrong, Detail: "2 tries left"},
				{PaymentID: "PAYMENTAAA", Event: EventConfirmed},
			} {
				e.Time, e.MSISDN, e.Channel = t0.Add(time.Duration(i)*time.Second), "254700000001", "sms"
				if err := RecordEvent(ctx, tx, e); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		es, err := PaymentEvents(ctx, db.Reader(), "PAYMENTAAA")
		if err != nil {
			t.Fatal(err)
		}
		if len(es) != 3 || es[0].Event != EventIssued || es[1].Event != EventWrong || es[2].Event != EventConfirmed {
			t.Fatalf("events %+v", es)
		}
		if es[1].MSISDN != "2547****001" || es[1].Detail != "2 tries left" || !es[2].Time.Equal(t0.Add(3*time.Second)) {
			t.Fatalf("event %+v", es[1])
		}
	})
}
