package webhook

import (
	"net/http"
	"testing"

	"github.com/payswitch/payswitch/internal/pgtest"
	"github.com/payswitch/payswitch/store"
)

// schemaBefore is the webhook schema as it was before migrationNarrowEvents.
var schemaBefore = store.Schema{Component: Schema.Component, Migrations: Schema.Migrations[:1],
	Postgres: Schema.Postgres[:2]}

// A database made before the events were narrowed keeps its events, their idempotency
// keys and its delivery log across the upgrade; Deliveries lists an old success (from
// the log) once, beside the new ones (from the events' rows).
func testUpgradeKeepsEventsAndLog(t *testing.T) {
	r := newClosedRig(t, nil)
	old, err := r.openDBWith(schemaBefore)
	if err != nil {
		t.Fatal(err)
	}
	now := micros(r.clock.Now())
	if err := old.Write(ctx, func(tx store.Tx) error {
		for _, q := range []struct {
			sql  string
			args []any
		}{
			{`INSERT INTO webhook_events (id, merchant_id, type, subject, body, created_at, state, attempts, last_status,
				updated_at) VALUES ('evt_0000000100000000000a', 'M1', 'payment.completed', 'PAY0000001', '{}', ?,
				'delivered', 1, 200, ?)`, []any{now - 4, now - 3}},
			{`INSERT INTO webhook_events (id, merchant_id, type, subject, body, created_at, state, attempts, last_status,
				last_error, next_at, updated_at) VALUES ('evt_0000000200000000000a', 'M1', 'payment.completed', 'PAY0000002',
				'{}', ?, 'pending', 1, 500, 'answered 500', ?, ?)`, []any{now - 2, now + 10_000_000, now - 1}},
			{`INSERT INTO webhook_deliveries (merchant_id, event_id, event_type, attempt, at, status, error, duration)
				VALUES ('M1', 'evt_0000000100000000000a', 'payment.completed', 1, ?, 200, '', 10)`, []any{now - 3}},
			{`INSERT INTO webhook_deliveries (merchant_id, event_id, event_type, attempt, at, status, error, duration)
				VALUES ('M1', 'evt_0000000200000000000a', 'payment.completed', 1, ?, 500, 'answered 500', 10)`,
				[]any{now - 1}},
		} {
			if _, err := tx.ExecContext(ctx, q.sql, q.args...); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	old.Close()

	r.open()
	t.Cleanup(func() { r.stop() })
	if n := r.count(`SELECT count(*) FROM webhook_events`); n != 2 {
		t.Fatalf("%d events after the upgrade, want 2", n)
	}
	ds, err := r.h.Deliveries(ctx, "M1", 0)
	if err != nil || len(ds) != 2 || ds[0].Status != 500 || ds[0].EventState != statePending ||
		ds[1].Status != 200 || ds[1].EventState != stateDelivered {
		t.Fatalf("deliveries after the upgrade %+v, %v", ds, err)
	}
	rc := newReceiver(t, nil)
	r.setEndpoint("M1", rc.srv.URL, secretA)
	r.enqueue("M1", PaymentCompleted, "PAY0000001", payment) // queued before: the first stands
	if n := r.count(`SELECT count(*) FROM webhook_events`); n != 2 {
		t.Fatalf("%d events after queuing a known one again, want 2", n)
	}
	r.run()
	r.enqueue("M1", PaymentCompleted, "PAY0000003", payment)
	for range 2 { // the pending one, made due by the new endpoint, and the new one
		r.nextOutcome("M1", outcomeDelivered)
	}
	ds, err = r.h.Deliveries(ctx, "M1", 0)
	if err != nil || len(ds) != 4 {
		t.Fatalf("deliveries %+v, %v", ds, err)
	}
	var ok200 int
	for _, d := range ds {
		if d.Status == http.StatusOK {
			ok200++
		}
	}
	if ok200 != 3 {
		t.Fatalf("deliveries %+v: want the old success and two new ones", ds)
	}
}

func TestUpgradeKeepsEventsAndLog(t *testing.T) { pgtest.Both(t, testUpgradeKeepsEventsAndLog) }
