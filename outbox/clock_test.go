package outbox

import (
	"testing"
	"time"

	"github.com/payswitch/payswitch/internal/pgtest"
)

// A message enqueued without CreatedAt through an Outbox is stamped by the Outbox's
// clock, not the machine's: the switch's time is an input.
func TestOutboxEnqueueStampsWithItsClock(t *testing.T) {
	pgtest.Both(t, func(t *testing.T) {
		db, c := mustOpen(t), newClock()
		o := New(db, c.Now)
		c.Advance(90 * time.Minute)
		id := put(t, db, o.Enqueue, sms("254700000001", "hi"))[0]
		if got, want := get(t, o, id).CreatedAt, c.Now(); !got.Equal(want) {
			t.Fatalf("CreatedAt = %v, want the Outbox's clock's %v", got, want)
		}
	})
}
