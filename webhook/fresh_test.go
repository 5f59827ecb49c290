package webhook

import (
	"errors"
	"net/http"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/payswitch/payswitch/internal/pgtest"
	"github.com/payswitch/payswitch/store"
)

// runTaking starts the worker and waits until it takes fresh events: its first wait.
func (r *rig) runTaking() {
	r.t.Helper()
	r.run()
	select {
	case <-r.idle:
	case <-time.After(waitLimit):
		r.t.Fatal("the worker never waited")
	}
	if !r.h.fresh.IsOpen() {
		r.t.Fatal("the worker waits without taking fresh events")
	}
}

// enqueueThen queues an event with EnqueueThen in a transaction of its own and returns
// its then, not yet called.
func (r *rig) enqueueThen(merchant, eventType, subject string) func() {
	r.t.Helper()
	var then func()
	if err := r.db.Write(ctx, func(tx store.Tx) error {
		var err error
		then, err = r.h.EnqueueThen(ctx, tx, merchant, eventType, subject, []byte(payment), r.clock.Now())
		return err
	}); err != nil {
		r.t.Fatal(err)
	}
	if then == nil {
		r.t.Fatalf("EnqueueThen of %s %s returned no then", eventType, subject)
	}
	return then
}

// leaseOf is an event's lease and due time, as stored.
func (r *rig) leaseOf(merchant, eventType, subject string) (lease int64, nextAt time.Time) {
	r.t.Helper()
	var next int64
	if err := r.db.Reader().QueryRowContext(ctx, `SELECT lease, next_at FROM webhook_events
		WHERE merchant_id = ? AND type = ? AND subject = ?`, merchant, eventType, subject).Scan(&lease, &next); err != nil {
		r.t.Fatal(err)
	}
	return lease, fromMicros(next)
}

// A fresh event is written leased to the worker, due only when that lease runs out,
// so no claim takes it; once its write has committed, then hands it to the worker, which
// delivers it at once, signed, and records it delivered with its attempt logged.
func testFreshEventIsDeliveredFromMemory(t *testing.T) {
	r := newRig(t, nil)
	rc := newReceiver(t, nil)
	r.setEndpoint("M1", rc.srv.URL, secretA)
	r.runTaking()

	then := r.enqueueThen("M1", PaymentCompleted, "PAY0000001")
	deadline := r.clock.Now().Add(r.h.cfg.Timeout + time.Minute)
	if lease, next := r.leaseOf("M1", PaymentCompleted, "PAY0000001"); lease == 0 || next.Before(deadline) {
		t.Fatalf("fresh event written with lease %d, due %v: want leased until %v", lease, next, deadline)
	}
	r.settle() // not handed over yet: nothing claims it
	if n := rc.got(); n != 0 {
		t.Fatalf("%d requests before then", n)
	}

	then()
	req := rc.next()
	r.nextOutcome("M1", outcomeDelivered)
	if err := Verify(req.header.Get(SignatureHeader), []byte(secretA), req.body, r.clock.Now(), 0); err != nil {
		t.Fatalf("Verify: %v", err)
	}
	ev := r.event("M1", PaymentCompleted, "PAY0000001")
	if decode(t, req.body).ID != ev.ID || ev.State != stateDelivered || ev.Attempts != 1 || r.inFlight() != 0 {
		t.Fatalf("event %+v after delivery of %s", ev, req.body)
	}
	if ds, err := r.h.Deliveries(ctx, "M1", 0); err != nil || len(ds) != 1 || ds[0].EventID != ev.ID || ds[0].Status != 200 {
		t.Fatalf("deliveries %+v, %v", ds, err)
	}
	r.clock.Advance(time.Hour)
	r.quiet()
	if n := rc.got(); n != 1 {
		t.Fatalf("%d requests, want 1", n)
	}
}

// A fresh event whose write rolls back leaves nothing to deliver (the caller never
// calls then); a second EnqueueThen of the same merchant, type and subject queues
// nothing and returns no then.
func testFreshEventRolledBackOrQueuedTwice(t *testing.T) {
	r := newRig(t, nil)
	rc := newReceiver(t, nil)
	r.setEndpoint("M1", rc.srv.URL, secretA)
	r.runTaking()

	rollback := errors.New("the payment failed")
	err := r.db.Write(ctx, func(tx store.Tx) error {
		if _, err := r.h.EnqueueThen(ctx, tx, "M1", PaymentCompleted, "PAYROLLBACK", []byte(payment), r.clock.Now()); err != nil {
			return err
		}
		return rollback
	})
	if !errors.Is(err, rollback) {
		t.Fatalf("write: %v", err)
	}
	r.quiet()
	if n := r.count(`SELECT count(*) FROM webhook_events`); n != 0 {
		t.Fatalf("%d events after a rollback", n)
	}

	r.enqueueThen("M1", PaymentCompleted, "PAY0000001")()
	rc.next()
	r.nextOutcome("M1", outcomeDelivered)
	if err := r.db.Write(ctx, func(tx store.Tx) error {
		then, err := r.h.EnqueueThen(ctx, tx, "M1", PaymentCompleted, "PAY0000001", []byte(payment), r.clock.Now())
		if then != nil {
			t.Error("a second EnqueueThen of one event returned a then")
		}
		return err
	}); err != nil {
		t.Fatal(err)
	}
	r.quiet()
	if n := rc.got(); n != 1 {
		t.Fatalf("%d requests, want 1", n)
	}
}

// A process that dies between a fresh event's commit and its delivery loses nothing:
// the next start (on PostgreSQL, once the lease has run out) delivers it.
func testFreshEventSurvivesACrash(t *testing.T) {
	r := newRig(t, nil)
	rc := newReceiver(t, nil)
	r.setEndpoint("M1", rc.srv.URL, secretA)
	r.runTaking()
	r.enqueueThen("M1", PaymentCompleted, "PAY0000001") // committed; the process dies before then

	r.db.Close()
	r.stop()
	// Started again under the same node name, it frees its own lease at once (on SQLite
	// every lease, one process delivering).
	r.open()
	r.run()
	rc.next()
	r.nextOutcome("M1", outcomeDelivered)
	if ev := r.event("M1", PaymentCompleted, "PAY0000001"); ev.State != stateDelivered || ev.Attempts != 1 {
		t.Fatalf("event %+v", ev)
	}
}

// With no worker running, EnqueueThen writes the event due at once, unleased, and its
// then only wakes a worker; the worker, once started, claims and delivers it.
func testFreshEventWithoutAWorkerWaitsForTheClaim(t *testing.T) {
	r := newRig(t, nil)
	rc := newReceiver(t, nil)
	r.setEndpoint("M1", rc.srv.URL, secretA)
	then := r.enqueueThen("M1", PaymentCompleted, "PAY0000001")
	if lease, next := r.leaseOf("M1", PaymentCompleted, "PAY0000001"); lease != 0 || !next.IsZero() {
		t.Fatalf("lease %d, due %v without a worker: want unleased, due now", lease, next)
	}
	then()
	r.run()
	rc.next()
	r.nextOutcome("M1", outcomeDelivered)
}

// A fresh event that fails is retried through the database, with the same event ID,
// after its backoff, as a claimed one is.
func testFreshEventThatFailsIsRetried(t *testing.T) {
	r := newRig(t, nil)
	rc := newReceiver(t, status(http.StatusServiceUnavailable))
	r.setEndpoint("M1", rc.srv.URL, secretA)
	r.runTaking()
	r.enqueueThen("M1", PaymentCompleted, "PAY0000001")()
	first := rc.next()
	r.nextOutcome("M1", outcomeRetry)
	ev := r.event("M1", PaymentCompleted, "PAY0000001")
	if ev.State != statePending || ev.Attempts != 1 || ev.LastStatus != 503 || r.inFlight() != 0 {
		t.Fatalf("event after a failed attempt %+v", ev)
	}
	rc.answer(nil)
	r.waitIdle(ev.NextAt)
	r.clock.Advance(ev.NextAt.Sub(r.clock.Now()))
	second := rc.next()
	r.nextOutcome("M1", outcomeDelivered)
	if decode(t, first.body).ID != decode(t, second.body).ID {
		t.Fatalf("retried as %s, first as %s", second.body, first.body)
	}
}

// Fresh events of a merchant whose endpoint hangs wait in memory beyond its limit of
// deliveries in flight, and go out as the earlier ones end; another merchant's go out
// meanwhile.
func testFreshEventsKeepThePerMerchantLimit(t *testing.T) {
	r := newRig(t, func(c *Config) { c.Workers = 4; c.PerMerchant = 2 })
	release := make(chan struct{})
	unhang := sync.OnceFunc(func() { close(release) })
	t.Cleanup(unhang)
	slow := newReceiver(t, hang(release))
	fast := newReceiver(t, nil)
	r.setEndpoint("SLOW", slow.srv.URL, secretA)
	r.setEndpoint("FAST", fast.srv.URL, secretB)
	r.runTaking()
	for i := range 5 {
		r.enqueueThen("SLOW", PaymentCompleted, "PAYSLOW00"+strconv.Itoa(i))()
	}
	slow.next()
	slow.next()
	r.enqueueThen("FAST", PaymentCompleted, "PAYFAST001")()
	fast.next()
	r.nextOutcome("FAST", outcomeDelivered)
	r.settle()
	if n := slow.got(); n != 2 {
		t.Fatalf("the hanging endpoint got %d requests at once, want 2", n)
	}
	unhang()
	for range 5 {
		r.nextOutcome("SLOW", outcomeDelivered)
	}
	if n := r.count(`SELECT count(*) FROM webhook_events WHERE state = 'delivered'`); n != 6 {
		t.Fatalf("%d events delivered, want 6", n)
	}
}

// A paused merchant's fresh event is not leased: it waits in the database for the
// pause's end, and then goes out.
func testFreshEventOfAPausedMerchantWaitsForThePause(t *testing.T) {
	r := newRig(t, func(c *Config) { c.MaxFailures = 1; c.Pause = 5 * time.Minute })
	rc := newReceiver(t, status(http.StatusInternalServerError))
	r.setEndpoint("M1", rc.srv.URL, secretA)
	r.runTaking()
	r.enqueueThen("M1", PaymentCompleted, "PAY0000001")()
	rc.next()
	r.nextOutcome("M1", outcomeRetry) // one failure pauses M1
	r.settle()

	rc.answer(nil)
	r.enqueueThen("M1", PaymentCompleted, "PAY0000002")()
	r.quiet()
	lease, next := r.leaseOf("M1", PaymentCompleted, "PAY0000002")
	if lease != 0 || next.Before(r.clock.Now().Add(5*time.Minute)) {
		t.Fatalf("lease %d, due %v during the pause: want unleased, due at its end", lease, next)
	}
	r.clock.Advance(5*time.Minute + time.Second)
	// The worker's last round (of quiet's wakes) may still be running: one that ends
	// after the Advance sets its timer from the new time, on this test clock that
	// never moves again. A Kick is what the timer would have done.
	r.h.Kick()
	rc.next()
	r.nextOutcome("M1", outcomeDelivered) // the probe
	rc.next()
	r.nextOutcome("M1", outcomeDelivered)
	if n := r.count(`SELECT count(*) FROM webhook_events WHERE state = 'delivered'`); n != 2 {
		t.Fatalf("%d events delivered, want 2", n)
	}
}

// A worker that stops gives back the fresh events it has not started: due at once, for
// the next start or another node.
func testStopReleasesFreshEventsNotStarted(t *testing.T) {
	r := newRig(t, func(c *Config) { c.Workers = 2; c.PerMerchant = 1; c.Timeout = time.Minute })
	rc := newReceiver(t, hang(nil))
	r.setEndpoint("M1", rc.srv.URL, secretA)
	r.runTaking()
	r.enqueueThen("M1", PaymentCompleted, "PAY0000001")()
	rc.next()
	r.enqueueThen("M1", PaymentCompleted, "PAY0000002")()
	r.settle() // the second waits in memory behind the first
	r.stop()
	for _, s := range []string{"PAY0000001", "PAY0000002"} {
		if lease, next := r.leaseOf("M1", PaymentCompleted, s); lease != 0 || !next.IsZero() {
			t.Fatalf("%s after a stop: lease %d, due %v", s, lease, next)
		}
	}
}

// A fresh event waiting in memory when its merchant sets a new endpoint goes to the
// new one, signed with the new secret, once the delivery already under way has ended.
func testFreshEventWaitingFollowsANewEndpoint(t *testing.T) {
	r := newRig(t, func(c *Config) { c.Workers = 2; c.PerMerchant = 1; c.Timeout = time.Minute })
	release := make(chan struct{})
	unhang := sync.OnceFunc(func() { close(release) })
	t.Cleanup(unhang)
	old := newReceiver(t, hang(release))
	fixed := newReceiver(t, nil)
	r.setEndpoint("M1", old.srv.URL, secretA)
	r.runTaking()
	r.enqueueThen("M1", PaymentCompleted, "PAY0000001")()
	old.next()
	r.enqueueThen("M1", PaymentCompleted, "PAY0000002")()
	r.settle()
	r.setEndpoint("M1", fixed.srv.URL, secretB)
	unhang() // the first, already under way, ends at the old endpoint
	r.nextOutcome("M1", outcomeDelivered)
	req := fixed.next()
	if err := Verify(req.header.Get(SignatureHeader), []byte(secretB), req.body, r.clock.Now(), 0); err != nil {
		t.Fatalf("Verify with the new secret: %v", err)
	}
	if got, want := decode(t, req.body).ID, r.event("M1", PaymentCompleted, "PAY0000002").ID; got != want {
		t.Fatalf("the new endpoint got %s, want %s", got, want)
	}
}

// runningOnPostgres is a running worker delivering M1's events to a receiver, for the
// tests of several nodes; on SQLite the test is skipped.
func runningOnPostgres(t *testing.T) (*rig, *receiver) {
	if driverOf(t) != store.Postgres {
		t.Skip("one process delivers from a SQLite database")
	}
	r := newRig(t, nil)
	rc := newReceiver(t, nil)
	r.setEndpoint("M1", rc.srv.URL, secretA)
	r.runTaking()
	return r, rc
}

// On PostgreSQL another node's claim leaves a fresh event alone while its lease holds.
func TestFreshEventIsNotClaimedByAnotherNode(t *testing.T) {
	pgtest.Both(t, func(t *testing.T) {
		r, rc := runningOnPostgres(t)
		then := r.enqueueThen("M1", PaymentCompleted, "PAY0000001")
		db, err := r.openDB()
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		other, err := New(db, r.cfg)
		if err != nil {
			t.Fatal(err)
		}
		if cs, _, err := other.claim(ctx, 10, nil, nil); err != nil || len(cs) != 0 {
			t.Fatalf("another node claimed %d, %v", len(cs), err)
		}
		then()
		rc.next()
		r.nextOutcome("M1", outcomeDelivered)
	})
}

func TestFreshEventIsDeliveredFromMemory(t *testing.T) {
	pgtest.Both(t, testFreshEventIsDeliveredFromMemory)
}
func TestFreshEventRolledBackOrQueuedTwice(t *testing.T) {
	pgtest.Both(t, testFreshEventRolledBackOrQueuedTwice)
}
func TestFreshEventSurvivesACrash(t *testing.T) { pgtest.Both(t, testFreshEventSurvivesACrash) }

// On PostgreSQL a node of another name, started after the crash, leaves the dead node's
// leased event alone until its lease ends, then delivers it: the dead node might only
// have been slow.
func TestFreshEventOfADeadNodeWaitsForItsLeaseElsewhere(t *testing.T) {
	pgtest.Both(t, func(t *testing.T) {
		r, rc := runningOnPostgres(t)
		r.enqueueThen("M1", PaymentCompleted, "PAY0000001") // committed; the process dies before then
		r.db.Close()
		r.stop()
		r.nodeName = "node-b"
		r.open()
		r.runTaking()
		if lease, _ := r.leaseOf("M1", PaymentCompleted, "PAY0000001"); lease == 0 {
			t.Fatal("another node freed a lease that had not run out")
		}
		_, next := r.leaseOf("M1", PaymentCompleted, "PAY0000001")
		r.clock.Advance(next.Sub(r.clock.Now()) + time.Second)
		rc.next()
		r.nextOutcome("M1", outcomeDelivered)
	})
}
func TestFreshEventWithoutAWorkerWaitsForTheClaim(t *testing.T) {
	pgtest.Both(t, testFreshEventWithoutAWorkerWaitsForTheClaim)
}
func TestFreshEventThatFailsIsRetried(t *testing.T) { pgtest.Both(t, testFreshEventThatFailsIsRetried) }
func TestFreshEventsKeepThePerMerchantLimit(t *testing.T) {
	pgtest.Both(t, testFreshEventsKeepThePerMerchantLimit)
}
func TestFreshEventOfAPausedMerchantWaitsForThePause(t *testing.T) {
	pgtest.Both(t, testFreshEventOfAPausedMerchantWaitsForThePause)
}
func TestStopReleasesFreshEventsNotStarted(t *testing.T) {
	pgtest.Both(t, testStopReleasesFreshEventsNotStarted)
}
func TestFreshEventWaitingFollowsANewEndpoint(t *testing.T) {
	pgtest.Both(t, testFreshEventWaitingFollowsANewEndpoint)
}
