package webhook

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/payswitch/payswitch/internal/pgtest"

	"github.com/payswitch/payswitch/store"
)

// The same merchant, type and subject queues one event, whether asked twice in one
// write or in two; another type of the same payment is another event.
func testDuplicateEnqueueQueuesOnce(t *testing.T) {
	r := newRig(t, nil)
	r.setEndpoint("M1", "https://shop.example/a", secretA)
	if err := r.db.Write(ctx, func(tx store.Tx) error {
		for range 2 {
			if err := r.h.Enqueue(ctx, tx, "M1", PaymentCompleted, "PAY0000001", []byte(payment), r.clock.Now()); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	first := r.event("M1", PaymentCompleted, "PAY0000001")
	r.clock.Advance(time.Minute)
	r.enqueue("M1", PaymentCompleted, "PAY0000001", `{"id":"PAY0000001","state":"changed"}`)
	r.enqueue("M1", PaymentReversed, "PAY0000001", payment)
	if n := r.count(`SELECT count(*) FROM webhook_events`); n != 2 {
		t.Fatalf("%d events, want 2", n)
	}
	if again := r.event("M1", PaymentCompleted, "PAY0000001"); again.ID != first.ID {
		t.Fatalf("the event became %s, was %s", again.ID, first.ID)
	}
	var body string
	r.db.Reader().QueryRowContext(ctx, `SELECT body FROM webhook_events WHERE id = ?`, first.ID).Scan(&body)
	if strings.Contains(body, "changed") {
		t.Fatalf("the second enqueue replaced the body: %s", body)
	}
}

// An engine write for a merchant without an endpoint queues nothing and succeeds.
func testNoEndpointQueuesNothing(t *testing.T) {
	r := newRig(t, nil)
	r.enqueue("M1", PaymentCompleted, "PAY0000001", payment)
	if n := r.count(`SELECT count(*) FROM webhook_events`); n != 0 {
		t.Fatalf("%d events queued for a merchant without an endpoint", n)
	}
}

// What only a bug in the engine would send is refused, failing the engine's write.
func testEnqueueRefusesBadEvents(t *testing.T) {
	r := newRig(t, nil)
	r.setEndpoint("M1", "https://shop.example/a", secretA)
	huge := `{"id":"PAY0000001","description":"` + strings.Repeat("x", MaxBody) + `"}`
	for _, tc := range []struct{ name, merchant, typ, subject, data string }{
		{"unknown type", "M1", "payment.teleported", "PAY0000001", payment},
		{"no merchant", "", PaymentCompleted, "PAY0000001", payment},
		{"no subject", "M1", PaymentCompleted, "", payment},
		{"not JSON", "M1", PaymentCompleted, "PAY0000001", `{"id":`},
		{"not an object", "M1", PaymentCompleted, "PAY0000001", `["PAY0000001"]`},
		{"two objects", "M1", PaymentCompleted, "PAY0000001", `{} {}`},
		{"too large", "M1", PaymentCompleted, "PAY0000001", huge},
	} {
		err := r.db.Write(ctx, func(tx store.Tx) error {
			return r.h.Enqueue(ctx, tx, tc.merchant, tc.typ, tc.subject, []byte(tc.data), time.Time{})
		})
		if !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: %v", tc.name, err)
		}
	}
	if n := r.count(`SELECT count(*) FROM webhook_events`); n != 0 {
		t.Fatalf("%d events queued", n)
	}
}

// Every contract type is accepted, and the body keeps the payment's JSON as given.
func testEveryContractTypeIsQueued(t *testing.T) {
	r := newRig(t, nil)
	r.setEndpoint("M1", "https://shop.example/a", secretA)
	data := `{"id":"PAY0000001","description":"Sugar <1kg> & salt"}`
	for _, typ := range []string{"payment.completed", "payment.reversed", "payment.refunded", "request.declined",
		"request.expired", "escrow.released", "escrow.disputed"} {
		r.enqueue("M1", typ, "PAY0000001", data)
	}
	if n := r.count(`SELECT count(*) FROM webhook_events`); n != 7 {
		t.Fatalf("%d events, want 7", n)
	}
	var body string
	r.db.Reader().QueryRowContext(ctx, `SELECT body FROM webhook_events WHERE type = 'escrow.disputed'`).Scan(&body)
	if e := decode(t, []byte(body)); string(e.Data) != data {
		t.Fatalf("data %s, want %s", e.Data, data)
	}
}

// The claim finds due events through webhook_events_due, not by reading the table.
func TestClaimUsesTheDueIndex(t *testing.T) {
	r := newRig(t, nil)
	text := r.plan(candidatesSQL, 0, "[]")
	if !strings.Contains(text, "webhook_events_due") || strings.Contains(text, "TEMP B-TREE") {
		t.Fatalf("claim plan:\n%s", text)
	}
}

// Deliveries reads a merchant's delivered events and failed attempts through the
// indexes by merchant, newest first, and the sweep finds old events by their ID: none
// of them reads a whole table.
func TestDeliveriesAndSweepUseIndexes(t *testing.T) {
	r := newRig(t, nil)
	text := r.plan(deliveriesSQL, "M1", 50)
	for _, want := range []string{"webhook_events_by_merchant", "webhook_deliveries_by_merchant"} {
		if !strings.Contains(text, want) {
			t.Fatalf("deliveries plan without %s:\n%s", want, text)
		}
	}
	for _, line := range strings.Split(text, "\n") {
		switch line {
		case "SCAN webhook_events", "SCAN webhook_deliveries", "SCAN d", "SCAN e":
			t.Fatalf("deliveries plan reads a table:\n%s", text)
		}
	}
	text = r.plan(`SELECT seq FROM webhook_events WHERE id < ? AND `+finished+` LIMIT 10`, "evt_1")
	if !strings.Contains(text, "sqlite_autoindex_webhook_events") || strings.Contains(text, "SCAN webhook_events") {
		t.Fatalf("sweep plan:\n%s", text)
	}
}

// TestEnvelopeRefusesBrokenData: data that starts like an object but is not JSON fails
// the write that queues it, with an InputError, and queues nothing.
func TestEnvelopeRefusesBrokenData(t *testing.T) {
	for _, data := range []string{`{"id": "pay_1",`, `{"a": 1} trailing`, `{"a": nul}`} {
		if _, err := envelope("evt_1", PaymentCompleted, time.Unix(0, 0).UTC(), []byte(data)); err == nil {
			t.Errorf("envelope(%q): no error", data)
		} else if ie := (*InputError)(nil); !errors.As(err, &ie) {
			t.Errorf("envelope(%q): %T %v, want an InputError", data, err, err)
		}
	}
	got, err := envelope("evt_1", PaymentCompleted, time.Date(2026, 12, 6, 9, 0, 0, 5, time.UTC),
		[]byte("{ \"note\": \"<b>&\",\n \"n\": 1 }"))
	if err != nil {
		t.Fatal(err)
	}
	want := `{"id":"evt_1","type":"payment.completed","created_at":"2026-12-06T09:00:00.000000005Z","data":{"note":"<b>&","n":1}}`
	if string(got) != want {
		t.Errorf("envelope:\n got %s\nwant %s", got, want)
	}
}

func TestDuplicateEnqueueQueuesOnce(t *testing.T) { pgtest.Both(t, testDuplicateEnqueueQueuesOnce) }

func TestNoEndpointQueuesNothing(t *testing.T) { pgtest.Both(t, testNoEndpointQueuesNothing) }

func TestEnqueueRefusesBadEvents(t *testing.T) { pgtest.Both(t, testEnqueueRefusesBadEvents) }

func TestEveryContractTypeIsQueued(t *testing.T) { pgtest.Both(t, testEveryContractTypeIsQueued) }
