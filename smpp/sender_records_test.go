package smpp

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/payswitch/payswitch/outbox"
	"github.com/payswitch/payswitch/store"
)

// The sender's records (MarkSent) wait for the store's durable commit; these tests hold
// them at a gate and check what goes out meanwhile.

// gatedQueue is the real outbox whose MarkSent waits for open: a store whose durable
// commits are slow.
type gatedQueue struct {
	*outbox.Outbox
	open    chan struct{}
	waiting atomic.Int32 // MarkSent calls held at the gate
}

func (q *gatedQueue) MarkSent(ctx context.Context, m outbox.Message, link string, ids []string) error {
	q.waiting.Add(1)
	<-q.open
	return q.Outbox.MarkSent(ctx, m, link, ids)
}

// gatedSender runs a Sender of a window of one over the real outbox o, whose MarkSent
// waits at q's gate until openGate; the test's cleanup opens it too, before the
// sender's, which waits for the records.
func gatedSender(t *testing.T) (o *outbox.Outbox, db *store.DB, q *gatedQueue, srv *testSMSC, openGate func()) {
	t.Helper()
	o, db = mustOutbox(t)
	q = &gatedQueue{Outbox: o, open: make(chan struct{})}
	srv = newTestSMSC(t, "pw")
	l := startLink(t, srv, LinkConfig{Password: "pw", Window: 1}, HandlerFuncs{})
	waitState(t, l, StateBound)
	runSender(t, q, []*Link{l}, nil)
	var once sync.Once
	openGate = func() { once.Do(func() { close(q.open) }) }
	t.Cleanup(openGate)
	return o, db, q, srv, openGate
}

// waitHeld waits until n MarkSent calls wait at the gate.
func (q *gatedQueue) waitHeld(t *testing.T, n int32) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); q.waiting.Load() != n; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%d MarkSent calls waiting; want %d", q.waiting.Load(), n)
		}
	}
}

// A submit_sm slot is free again as soon as the SMSC answers: with a window of one, the
// second message goes out while the first one's MarkSent still waits for the store, and
// both are recorded as sent once the store catches up.
func TestSenderSubmitsWhileRecordsWait(t *testing.T) {
	o, db, q, srv, openGate := gatedSender(t)
	ids := enqueue(t, o, db, outbox.Message{To: "254700000001", Text: "one"},
		outbox.Message{To: "254700000002", Text: "two"})
	srv.waitFor("both messages submitted", func() bool { return len(srv.submits) == 2 })
	q.waitHeld(t, 2)
	for _, id := range ids {
		if m, err := o.Get(context.Background(), id); err != nil || m.State != outbox.StateSending {
			t.Fatalf("message %d is %q (%v) before its MarkSent; want sending", id, m.State, err)
		}
	}
	openGate()
	for _, id := range ids {
		waitMessage(t, o, id, "sent", inState(outbox.StateSent))
	}
	srv.mu.Lock()
	defer srv.mu.Unlock()
	if srv.maxOut != 1 {
		t.Fatalf("at most %d submit_sm outstanding; want 1 (the window)", srv.maxOut)
	}
}

// Nor does the claims' room wait for the records: with a window of one (a room of two
// messages), five messages go out while every MarkSent still waits for the store.
func TestSenderRoomDoesNotWaitForRecords(t *testing.T) {
	o, db, q, srv, openGate := gatedSender(t)
	var msgs []outbox.Message
	for i := range 5 {
		msgs = append(msgs, outbox.Message{To: fmt.Sprint("25470000000", i), Text: "hi"})
	}
	ids := enqueue(t, o, db, msgs...)
	srv.waitFor("five messages submitted", func() bool { return len(srv.submits) == 5 })
	q.waitHeld(t, 5)
	openGate()
	for _, id := range ids {
		waitMessage(t, o, id, "sent", inState(outbox.StateSent))
	}
}
