package webhook

import (
	"testing"
	"time"

	"github.com/payswitch/payswitch/internal/pgtest"
)

// Delivered attempts that end together are recorded in one write: each event is
// delivered, with its status, and each attempt logged once with its number.
func testRecorderWritesABatch(t *testing.T) {
	r := newRig(t, nil)
	r.setEndpoint("M1", "https://shop.example/a", secretA)
	r.setEndpoint("M2", "https://shop.example/b", secretB)
	for _, s := range []string{"PAY0000001", "PAY0000002"} {
		r.enqueue("M1", PaymentCompleted, s, payment)
	}
	r.enqueue("M2", PaymentCompleted, "PAY0000003", payment)
	cs, _, err := r.h.claim(ctx, 10, nil, nil)
	if err != nil || len(cs) != 3 {
		t.Fatalf("claimed %d, %v", len(cs), err)
	}
	var batch []deliveredAttempt
	for i, c := range cs {
		batch = append(batch, deliveredAttempt{c: c, a: attempt{status: 200 + i, at: r.clock.Now(), duration: time.Millisecond}})
	}
	if err := r.h.recordDelivered(ctx, batch); err != nil {
		t.Fatal(err)
	}
	if n := r.count(`SELECT count(*) FROM webhook_events WHERE state = 'delivered' AND attempts = 1 AND lease = 0`); n != 3 {
		t.Fatalf("%d events delivered, want 3", n)
	}
	if n := r.count(`SELECT count(*) FROM webhook_events WHERE last_status BETWEEN 200 AND 202`); n != 3 {
		t.Fatalf("%d events carry their own status, want 3", n)
	}
	ds, err := r.h.Deliveries(ctx, "M1", 10)
	if err != nil || len(ds) != 2 || ds[0].Attempt != 1 || ds[0].EventState != "delivered" {
		t.Fatalf("M1's deliveries %+v, %v", ds, err)
	}
	if ds, _ := r.h.Deliveries(ctx, "M2", 10); len(ds) != 1 {
		t.Fatalf("M2's deliveries %+v", ds)
	}
}

func TestRecorderWritesABatch(t *testing.T) { pgtest.Both(t, testRecorderWritesABatch) }
