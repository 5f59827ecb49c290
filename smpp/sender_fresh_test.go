package smpp

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/payswitch/payswitch/outbox"
	"github.com/payswitch/payswitch/store"
)

// enqueueFresh adds SMS to the outbox as the engine does, with EnqueueThen, and runs
// what that returned once the write is durable: a hand-over to the sender, or a Kick.
func enqueueFresh(t *testing.T, o *outbox.Outbox, db *store.DB, between func(), ms ...outbox.Message) []int64 {
	t.Helper()
	var ids []int64
	var thens []func()
	err := db.Write(context.Background(), func(tx store.Tx) error {
		ids, thens = nil, nil
		for _, m := range ms {
			m.Kind, m.From = outbox.KindSMS, "22333"
			id, then, err := o.EnqueueThen(context.Background(), tx, m)
			if err != nil {
				return err
			}
			ids, thens = append(ids, id), append(thens, then)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if between != nil {
		between()
	}
	for _, then := range thens {
		then()
	}
	return ids
}

// startedSender runs a sender of q over l, polling never, and returns once its first
// claim is made: by then it takes fresh messages.
func startedSender(t *testing.T, q *countingQueue, l *Link) {
	t.Helper()
	runSender(t, q, []*Link{l}, func(s *Sender) { s.poll = time.Hour })
	deadline := time.Now().Add(10 * time.Second)
	for q.claims.Load() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the sender never claimed")
		}
		time.Sleep(time.Millisecond)
	}
}

// SMS handed over as their writes commit are sent without a claim: the sender claims
// once as it starts and never again, yet every message goes out once, on its first
// attempt, and is recorded sent.
func TestSenderSendsFreshSMSWithoutClaiming(t *testing.T) {
	o, db := mustOutbox(t)
	q := &countingQueue{Outbox: o}
	srv := newTestSMSC(t, "pw")
	l := startLink(t, srv, LinkConfig{Password: "pw", Window: 4}, HandlerFuncs{}) // room for 8
	waitState(t, l, StateBound)
	startedSender(t, q, l)
	var all []int64
	for round := range 5 {
		msgs := make([]outbox.Message, 6)
		for i := range msgs {
			msgs[i] = outbox.Message{To: "254700000001", Text: fmt.Sprint("round ", round, " message ", i)}
		}
		all = append(all, enqueueFresh(t, o, db, nil, msgs...)...)
	}
	for _, id := range all {
		if m := waitMessage(t, o, id, "sent", inState(outbox.StateSent)); m.Attempts != 1 {
			t.Fatalf("message %d sent on attempt %d", id, m.Attempts)
		}
	}
	if n := q.claims.Load(); n != 1 {
		t.Errorf("%d claims, want only the one at the start", n)
	}
	if got := len(srv.submitted()); got != len(all) {
		t.Errorf("the SMSC got %d submit_sm for %d messages", got, len(all))
	}
}

// testClock is a clock that moves only when told.
type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *testClock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *testClock) advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// A fresh message handed over with less than half its lease left (by the outbox's clock)
// is not sent from memory: once its lease runs out a claim could take it while it is
// being sent. It is left to that claim, and goes out once, on its second attempt.
func TestSenderLeavesAStaleFreshMessageToItsLease(t *testing.T) {
	db, err := store.Open(filepath.Join(t.TempDir(), "payswitch.db"), store.Options{}, outbox.Schema)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	c := &testClock{t: time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)}
	o := outbox.New(db, c.now)
	q := &countingQueue{Outbox: o}
	srv := newTestSMSC(t, "pw")
	l := startLink(t, srv, LinkConfig{Password: "pw", Window: 4}, HandlerFuncs{})
	waitState(t, l, StateBound)
	startedSender(t, q, l)
	// The write commits; its hand-over comes 20 s of its 30 s lease later.
	id := enqueueFresh(t, o, db, func() { c.advance(20 * time.Second) },
		outbox.Message{To: "254700000001", Text: "late"})[0]
	c.advance(11 * time.Second) // the lease has run out
	o.Kick()
	if m := waitMessage(t, o, id, "sent", inState(outbox.StateSent)); m.Attempts != 2 {
		t.Fatalf("sent on attempt %d, want the claim's second", m.Attempts)
	}
	if got := len(srv.submitted()); got != 1 {
		t.Fatalf("the SMSC got %d submit_sm", got)
	}
}
