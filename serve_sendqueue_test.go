package main

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/payswitch/payswitch/outbox"
	"github.com/payswitch/payswitch/store"
)

// The sender schedules a retry on the machine's clock; the queue serve gives it moves
// the retry onto the switch's clock, so that a switch running ahead of the machine (a
// test's) still waits the backoff instead of claiming the message again at once.
func TestSendQueueRetryWaitsOnTheSwitchClock(t *testing.T) {
	ctx := context.Background()
	db, err := store.Open(filepath.Join(t.TempDir(), "q.db"), store.Options{}, outbox.Schema)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	const ahead = 5 * time.Minute
	clock := func() time.Time { return time.Now().Add(ahead) }
	o := outbox.New(db, clock)
	q := &sendQueue{Outbox: o, skew: func() time.Duration { return time.Until(clock()) }}
	if err := db.Write(ctx, func(tx store.Tx) error {
		_, err := o.Enqueue(ctx, tx, outbox.Message{To: "254700000001", Text: "hi"})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	ms, err := q.Claim(ctx, outbox.KindSMS, 1, time.Minute)
	if err != nil || len(ms) != 1 {
		t.Fatalf("claim: %v, %v", ms, err)
	}
	if err := q.Retry(ctx, ms[0].ID, "not bound", time.Now().Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if again, err := q.Claim(ctx, outbox.KindSMS, 1, time.Minute); err != nil || len(again) != 0 {
		t.Fatalf("claimed again before its backoff on the switch's clock: %v, %v", again, err)
	}
	m, err := o.Get(ctx, ms[0].ID)
	if err != nil {
		t.Fatal(err)
	}
	if due := m.NextAttemptAt.Sub(clock()); due < 50*time.Second || due > time.Minute {
		t.Fatalf("due in %v on the switch's clock, want about a minute", due)
	}
}
