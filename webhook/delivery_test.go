package webhook

import (
	"bufio"
	"errors"
	"maps"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/payswitch/payswitch/internal/pgtest"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/payswitch/payswitch/store"
)

// An event queued in a write that rolls back is never sent; one that commits is sent
// once, signed so that Verify accepts it, in the contract's envelope.
func testCommittedEventIsDeliveredOnceAndRolledBackOneNever(t *testing.T) {
	r := newRig(t, nil)
	rc := newReceiver(t, nil)
	r.setEndpoint("M1", rc.srv.URL+"/hooks?shop=1", secretA)
	r.run()

	rollback := errors.New("the payment failed")
	err := r.db.Write(ctx, func(tx store.Tx) error {
		if err := r.h.Enqueue(ctx, tx, "M1", PaymentCompleted, "PAYROLLBACK", []byte(payment), r.clock.Now()); err != nil {
			return err
		}
		return rollback
	})
	if !errors.Is(err, rollback) {
		t.Fatalf("write: %v", err)
	}
	r.h.Kick()
	r.quiet()

	created := r.clock.Now()
	r.enqueue("M1", PaymentCompleted, "PAY0000001", payment)
	req := rc.next()
	r.nextOutcome("M1", outcomeDelivered)

	if err := Verify(req.header.Get(SignatureHeader), []byte(secretA), req.body, r.clock.Now(), 0); err != nil {
		t.Fatalf("Verify: %v (header %q)", err, req.header.Get(SignatureHeader))
	}
	if err := Verify(req.header.Get(SignatureHeader), []byte(secretB), req.body, r.clock.Now(), 0); !errors.Is(err, ErrSignatureMismatch) {
		t.Fatalf("Verify with another secret: %v", err)
	}
	if got := req.header.Get(SignatureHeader); !strings.HasPrefix(got, "t="+strconv.FormatInt(r.clock.Now().Unix(), 10)+",v1=") {
		t.Fatalf("signature %q: want t= the send time", got)
	}
	if ct, ua := req.header.Get("Content-Type"), req.header.Get("User-Agent"); ct != "application/json" || ua != "payswitch-webhook/1" {
		t.Fatalf("Content-Type %q, User-Agent %q", ct, ua)
	}
	e := decode(t, req.body)
	if e.Type != PaymentCompleted || string(e.Data) != payment || e.CreatedAt != created.Format(time.RFC3339Nano) ||
		len(e.ID) != len("evt_")+20 || !strings.HasPrefix(e.ID, "evt_") {
		t.Fatalf("envelope %+v", e)
	}
	if ev := r.event("M1", PaymentCompleted, "PAY0000001"); ev.ID != e.ID || ev.State != stateDelivered || ev.Attempts != 1 ||
		ev.LastStatus != 200 {
		t.Fatalf("event %+v", ev)
	}
	ds, err := r.h.Deliveries(ctx, "M1", 0)
	if err != nil || len(ds) != 1 || ds[0].EventID != e.ID || ds[0].Status != 200 || ds[0].Error != "" || ds[0].Attempt != 1 ||
		ds[0].EventType != PaymentCompleted || !ds[0].At.Equal(r.clock.Now()) {
		t.Fatalf("deliveries %+v, %v", ds, err)
	}

	// Nothing more goes out, however long the worker runs.
	r.clock.Advance(24 * time.Hour)
	r.quiet()
	if n := rc.got(); n != 1 {
		t.Fatalf("%d requests, want 1", n)
	}
	if n := r.count(`SELECT count(*) FROM webhook_events`); n != 1 {
		t.Fatalf("%d events queued, want 1 (the rolled-back one is not)", n)
	}
}

// A delivery answered 500 is tried again after the backoff, with the same event ID and
// body, signed anew at the time it is sent.
func testFailedDeliveryIsRetriedWithTheSameEventID(t *testing.T) {
	r := newRig(t, nil)
	rc := newReceiver(t, func(n int, w http.ResponseWriter, _ *http.Request) {
		if n == 1 {
			http.Error(w, "database down", http.StatusInternalServerError)
		}
	})
	r.setEndpoint("M1", rc.srv.URL, secretA)
	r.run()
	r.enqueue("M1", PaymentCompleted, "PAY0000001", payment)
	first := rc.next()
	r.nextOutcome("M1", outcomeRetry)
	ev := r.event("M1", PaymentCompleted, "PAY0000001")
	if ev.State != statePending || ev.Attempts != 1 || ev.LastStatus != 500 || ev.LastError != "answered 500 Internal Server Error" {
		t.Fatalf("event after a 500: %+v", ev)
	}
	// Backoff 10s, lengthened by up to a tenth.
	if wait := ev.NextAt.Sub(r.clock.Now()); wait < 10*time.Second || wait > 11*time.Second {
		t.Fatalf("due again in %v, want 10s to 11s", wait)
	}
	r.clock.Advance(9 * time.Second)
	r.quiet()

	r.clock.Advance(2 * time.Second)
	r.h.Kick()
	second := rc.next()
	r.nextOutcome("M1", outcomeDelivered)
	if string(second.body) != string(first.body) {
		t.Fatalf("second body %s, first %s", second.body, first.body)
	}
	if first.header.Get(SignatureHeader) == second.header.Get(SignatureHeader) {
		t.Fatal("the retry carries the first attempt's signature; want one made when it is sent")
	}
	if err := Verify(second.header.Get(SignatureHeader), []byte(secretA), second.body, r.clock.Now(), 0); err != nil {
		t.Fatal(err)
	}
	ds, _ := r.h.Deliveries(ctx, "M1", 10)
	if len(ds) != 2 || ds[0].Status != 200 || ds[0].Attempt != 2 || ds[1].Status != 500 || ds[1].Attempt != 1 ||
		ds[0].EventID != ds[1].EventID {
		t.Fatalf("deliveries, newest first: %+v", ds)
	}
	if ds[0].EventState != "delivered" || !ds[0].NextAt.IsZero() {
		t.Fatalf("the event's state beside its attempts: %q next %v, want delivered and no next", ds[0].EventState, ds[0].NextAt)
	}
}

// The worker wakes by itself, without a Kick, when a retry is due.
func testWorkerWakesWhenARetryIsDue(t *testing.T) {
	r := newRig(t, nil)
	rc := newReceiver(t, func(n int, w http.ResponseWriter, _ *http.Request) {
		if n == 1 {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
	})
	r.setEndpoint("M1", rc.srv.URL, secretA)
	r.run()
	r.enqueue("M1", PaymentCompleted, "PAY0000001", payment)
	rc.next()
	r.nextOutcome("M1", outcomeRetry)
	due := r.event("M1", PaymentCompleted, "PAY0000001").NextAt
	// Moving the clock while the worker is in a round would make the round's timer
	// late by as much: the worker must be waiting first.
	r.waitIdle(due)
	r.clock.Advance(due.Sub(r.clock.Now()))
	rc.next()
	r.nextOutcome("M1", outcomeDelivered)
}

// A delivery that gets no answer in time, from an endpoint that hangs or one that
// answers a byte at a time forever, fails and is tried again.
func testUnansweredDeliveryTimesOutAndIsRetried(t *testing.T) {
	for _, tc := range []struct {
		name    string
		respond func(release <-chan struct{}) func(int, http.ResponseWriter, *http.Request)
	}{
		{"hangs", hang},
		{"dribbles", func(release <-chan struct{}) func(int, http.ResponseWriter, *http.Request) {
			return func(_ int, w http.ResponseWriter, r *http.Request) {
				conn, buf, err := w.(http.Hijacker).Hijack()
				if err != nil {
					t.Error(err)
					return
				}
				defer conn.Close()
				dribble(buf, release)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newRig(t, func(c *Config) { c.Timeout = 100 * time.Millisecond })
			release := make(chan struct{})
			rc := newReceiver(t, tc.respond(release))
			t.Cleanup(func() { close(release) })
			r.setEndpoint("M1", rc.srv.URL, secretA)
			r.run()
			r.enqueue("M1", PaymentCompleted, "PAY0000001", payment)
			rc.next()
			r.nextOutcome("M1", outcomeRetry)
			if ev := r.event("M1", PaymentCompleted, "PAY0000001"); ev.LastError != "no answer within 100ms" || ev.LastStatus != 0 {
				t.Fatalf("event %+v", ev)
			}
			rc.answer(nil)
			r.clock.Advance(11 * time.Second)
			r.h.Kick()
			rc.next()
			r.nextOutcome("M1", outcomeDelivered)
		})
	}
}

// dribble writes an HTTP answer a byte at a time, its last header never finished.
func dribble(buf *bufio.ReadWriter, release <-chan struct{}) {
	head := "HTTP/1.1 200 OK\r\nX-Slow: "
	for i := 0; ; i++ {
		c := byte('a')
		if i < len(head) {
			c = head[i]
		}
		buf.WriteByte(c)
		if buf.Flush() != nil {
			return
		}
		select {
		case <-release:
			return
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// An event that fails until RetryFor has run out is tried one last time then, and given
// up.
func testEventIsGivenUpAfterRetryFor(t *testing.T) {
	r := newRig(t, func(c *Config) { c.RetryFor = 24 * time.Hour; c.Backoff = []time.Duration{10 * time.Hour} })
	rc := newReceiver(t, status(http.StatusBadGateway))
	r.setEndpoint("M1", rc.srv.URL, secretA)
	r.run()
	created := r.clock.Now()
	r.enqueue("M1", PaymentCompleted, "PAY0000001", payment)
	for range 2 { // at 0 and about 10h
		rc.next()
		r.nextOutcome("M1", outcomeRetry)
		r.clock.Advance(r.event("M1", PaymentCompleted, "PAY0000001").NextAt.Sub(r.clock.Now()))
		r.h.Kick()
	}
	rc.next() // at about 20h; the next would be past 24h, so it is at 24h exactly
	r.nextOutcome("M1", outcomeRetry)
	if next := r.event("M1", PaymentCompleted, "PAY0000001").NextAt; !next.Equal(created.Add(24 * time.Hour)) {
		t.Fatalf("last attempt due at %v, want %v", next, created.Add(24*time.Hour))
	}
	r.clock.Advance(created.Add(24 * time.Hour).Sub(r.clock.Now()))
	r.h.Kick()
	rc.next()
	r.nextOutcome("M1", outcomeGaveUp)
	if ev := r.event("M1", PaymentCompleted, "PAY0000001"); ev.State != stateFailed || ev.Attempts != 4 || ev.LastStatus != 502 {
		t.Fatalf("event %+v", ev)
	}
	r.clock.Advance(48 * time.Hour)
	r.quiet()
	if n := rc.got(); n != 4 {
		t.Fatalf("%d requests, want 4", n)
	}
}

// A merchant whose endpoint hangs holds at most PerMerchant workers; another merchant's
// event goes out meanwhile.
func testHangingMerchantDoesNotDelayOthers(t *testing.T) {
	r := newRig(t, func(c *Config) { c.Timeout = time.Minute; c.Workers = 4; c.PerMerchant = 2 })
	release := make(chan struct{})
	slow := newReceiver(t, hang(release))
	t.Cleanup(func() { close(release) })
	fast := newReceiver(t, nil)
	r.setEndpoint("SLOW", slow.srv.URL, secretA)
	r.setEndpoint("FAST", fast.srv.URL, secretB)
	for i := range 6 {
		r.enqueue("SLOW", PaymentCompleted, "PAYSLOW00"+strconv.Itoa(i), payment)
	}
	r.clock.Advance(time.Second) // FAST's event is the newest
	r.enqueue("FAST", PaymentCompleted, "PAYFAST001", payment)
	r.run()

	slow.next()
	slow.next()
	req := fast.next()
	r.nextOutcome("FAST", outcomeDelivered)
	if got, want := decode(t, req.body).ID, r.event("FAST", PaymentCompleted, "PAYFAST001").ID; got != want {
		t.Fatalf("FAST got %s, want %s", got, want)
	}
	r.expectInFlight(2)
	if n := slow.got(); n != 2 {
		t.Fatalf("the hanging endpoint got %d requests at once, want 2", n)
	}
}

// expectInFlight checks that the worker, kicked, starts nothing beyond the inflight
// deliveries already under way.
func (r *rig) expectInFlight(inflight int) {
	r.t.Helper()
	r.settle()
	if n := r.inFlight(); n != inflight {
		r.t.Fatalf("%d deliveries in flight, want %d", n, inflight)
	}
}

// A merchant whose endpoint keeps failing is paused: its events wait, then one goes out
// alone to test the endpoint; once it answers, the rest follow. Another merchant's
// deliveries go on throughout.
func testFailingMerchantIsPausedThenProbed(t *testing.T) {
	r := newRig(t, func(c *Config) { c.MaxFailures = 3; c.Pause = 5 * time.Minute; c.PerMerchant = 1 })
	down := newReceiver(t, status(http.StatusInternalServerError))
	up := newReceiver(t, nil)
	r.setEndpoint("DOWN", down.srv.URL, secretA)
	r.setEndpoint("UP", up.srv.URL, secretB)
	r.run()
	for i := range 5 {
		r.enqueue("DOWN", PaymentCompleted, "PAYDOWN00"+strconv.Itoa(i), payment)
	}
	for range 3 {
		down.next()
		r.nextOutcome("DOWN", outcomeRetry)
	}
	// Paused: nothing goes to DOWN, even once its events' backoff has passed.
	r.clock.Advance(time.Minute)
	r.quiet()
	r.enqueue("UP", PaymentCompleted, "PAYUP00001", payment)
	up.next()
	r.nextOutcome("UP", outcomeDelivered)
	if n := down.got(); n != 3 {
		t.Fatalf("DOWN got %d requests, want 3 before its pause", n)
	}

	// The pause ends: one event alone, which fails, so DOWN pauses again.
	r.clock.Advance(4 * time.Minute)
	r.h.Kick()
	down.next()
	r.nextOutcome("DOWN", outcomeRetry)
	r.quiet()
	if n := down.got(); n != 4 {
		t.Fatalf("DOWN got %d requests, want 4", n)
	}

	// The endpoint is back: after the pause, the probe succeeds and the rest follow.
	down.answer(nil)
	r.clock.Advance(5 * time.Minute)
	r.h.Kick()
	for range 5 {
		down.next()
		r.nextOutcome("DOWN", outcomeDelivered)
	}
	if n := r.count(`SELECT count(*) FROM webhook_events WHERE state = 'delivered'`); n != 6 {
		t.Fatalf("%d events delivered, want 6", n)
	}
}

// A merchant who sets its endpoint again gets its waiting events at once, its pause
// forgotten.
func testSettingTheEndpointAgainSendsTheBacklogAtOnce(t *testing.T) {
	r := newRig(t, func(c *Config) { c.MaxFailures = 1; c.Pause = time.Hour })
	broken := newReceiver(t, status(http.StatusNotFound))
	fixed := newReceiver(t, nil)
	r.setEndpoint("M1", broken.srv.URL, secretA)
	r.run()
	r.enqueue("M1", PaymentCompleted, "PAY0000001", payment)
	broken.next()
	r.nextOutcome("M1", outcomeRetry)
	r.enqueue("M1", PaymentRefunded, "PAY0000001", payment)
	r.quiet()

	r.setEndpoint("M1", fixed.srv.URL, secretB)
	fixed.next()
	fixed.next()
	r.nextOutcome("M1", outcomeDelivered)
	r.nextOutcome("M1", outcomeDelivered)
}

// A worker that stops (the process dies) in the middle of a delivery leaves the event
// claimed; the next start delivers it again, with the same event ID.
func testCrashMidDeliveryRedelivers(t *testing.T) {
	r := newRig(t, func(c *Config) { c.Timeout = time.Minute })
	release := make(chan struct{})
	rc := newReceiver(t, hang(release))
	t.Cleanup(func() { close(release) })
	r.setEndpoint("M1", rc.srv.URL, secretA)
	r.run()
	r.enqueue("M1", PaymentCompleted, "PAY0000001", payment)
	first := rc.next()
	if n := r.inFlight(); n != 1 {
		t.Fatalf("%d events claimed, want 1", n)
	}

	// The process dies: the database goes first, so nothing is written after the claim.
	r.db.Close()
	r.stop()
	rc.answer(nil)

	if driverOf(t) == store.Postgres {
		// Another node may hold the claim: a node starting on PostgreSQL releases only
		// claims whose lease has run out, which it has by the time it restarts here.
		r.clock.Advance(r.cfg.Timeout + time.Minute)
	}
	r.open()
	r.run()
	second := rc.next()
	r.nextOutcome("M1", outcomeDelivered)
	if decode(t, first.body).ID != decode(t, second.body).ID {
		t.Fatalf("redelivered as %s, first as %s", second.body, first.body)
	}
	if ev := r.event("M1", PaymentCompleted, "PAY0000001"); ev.State != stateDelivered || ev.Attempts != 1 {
		t.Fatalf("event %+v", ev)
	}
}

// A graceful stop mid-delivery makes the event due again at once, its attempt
// uncounted.
func testStopMidDeliveryReleasesTheEvent(t *testing.T) {
	r := newRig(t, func(c *Config) { c.Timeout = time.Minute })
	rc := newReceiver(t, hang(nil))
	r.setEndpoint("M1", rc.srv.URL, secretA)
	r.run()
	r.enqueue("M1", PaymentCompleted, "PAY0000001", payment)
	rc.next()
	r.stop()
	if ev := r.event("M1", PaymentCompleted, "PAY0000001"); ev.State != statePending || ev.Attempts != 0 || !ev.NextAt.IsZero() ||
		r.inFlight() != 0 {
		t.Fatalf("event after a stop: %+v", ev)
	}
}

// A connection to one of the switch's own listeners is refused when it is made, even
// for an endpoint set before that listener was forbidden (or a name that resolves to
// one).
func testDeliveryNeverConnectsToTheSwitchItself(t *testing.T) {
	r := newRig(t, nil)
	rc := newReceiver(t, nil)
	r.setEndpoint("M1", rc.srv.URL, secretA)
	r.cfg.Forbidden = []string{rc.srv.Listener.Addr().String()}
	h, err := New(r.db, r.cfg)
	if err != nil {
		t.Fatal(err)
	}
	h.finished = r.h.finished
	r.h = h
	r.run()
	r.enqueue("M1", PaymentCompleted, "PAY0000001", payment)
	r.nextOutcome("M1", outcomeRetry)
	if ev := r.event("M1", PaymentCompleted, "PAY0000001"); !strings.Contains(ev.LastError, "switch's own listeners") {
		t.Fatalf("event %+v", ev)
	}
	if n := rc.got(); n != 0 {
		t.Fatalf("the forbidden listener got %d requests", n)
	}
}

// The deliveries' log keeps the latest KeepDeliveries failed attempts per merchant; a
// successful attempt is kept on its event's row, and Deliveries lists both, newest first.
func testDeliveriesAreCappedPerMerchant(t *testing.T) {
	r := newRig(t, func(c *Config) { c.KeepDeliveries = 3; c.PerMerchant = 1; c.MaxFailures = 100 })
	r.h.pruneAlways = true
	rc := newReceiver(t, func(_ int, w http.ResponseWriter, _ *http.Request) {
		http.Error(w, "down", http.StatusServiceUnavailable)
	})
	r.setEndpoint("M1", rc.srv.URL, secretA)
	r.run()
	for i := range 5 {
		r.enqueue("M1", PaymentCompleted, "PAY000000"+strconv.Itoa(i), payment)
		r.nextOutcome("M1", outcomeRetry)
		r.clock.Advance(time.Second)
	}
	if n := r.count(`SELECT count(*) FROM webhook_deliveries`); n != 3 {
		t.Fatalf("%d failed attempts stored, want 3", n)
	}
	rc.answer(nil)
	r.enqueue("M1", PaymentCompleted, "PAY0000009", payment)
	r.nextOutcome("M1", outcomeDelivered)
	if n := r.count(`SELECT count(*) FROM webhook_deliveries`); n != 3 {
		t.Fatalf("%d attempts logged after a success, want the 3 failed ones", n)
	}
	ds, err := r.h.Deliveries(ctx, "M1", 100)
	if err != nil || len(ds) != 4 {
		t.Fatalf("deliveries %+v, %v", ds, err)
	}
	if ds[0].EventID != r.event("M1", PaymentCompleted, "PAY0000009").ID || ds[0].Status != 200 ||
		ds[0].EventState != stateDelivered {
		t.Fatalf("newest delivery %+v, want the success", ds[0])
	}
	for i, sub := range []string{"PAY0000004", "PAY0000003", "PAY0000002"} {
		if d := ds[i+1]; d.EventID != r.event("M1", PaymentCompleted, sub).ID || d.Status != 503 || d.Attempt != 1 ||
			d.EventState != statePending {
			t.Fatalf("delivery %d: %+v, want the failed attempt at %s", i+1, d, sub)
		}
	}
	if ds, _ := r.h.Deliveries(ctx, "M1", 2); len(ds) != 2 || ds[0].Status != 200 || ds[1].Status != 503 {
		t.Fatalf("two newest: %+v", ds)
	}
}

// A merchant's slot is free once its endpoint answered 2xx, before the attempt is
// recorded: with one delivery per merchant at a time, the next event goes out while the
// first one's record waits for the store, and both are recorded delivered after.
func testSlotIsFreeOnceTheMerchantAnswers(t *testing.T) {
	r := newRig(t, func(c *Config) { c.PerMerchant = 1 })
	entered, release := make(chan struct{}), make(chan struct{})
	var first, released sync.Once
	r.h.beforeRecord = func() { first.Do(func() { close(entered); <-release }) }
	letGo := func() { released.Do(func() { close(release) }) }
	t.Cleanup(letGo) // before the rig's stop, which waits for the record
	rc := newReceiver(t, nil)
	r.setEndpoint("M1", rc.srv.URL, secretA)
	r.run()
	r.enqueue("M1", PaymentCompleted, "PAY0000001", payment)
	rc.next()
	select {
	case <-entered:
	case <-time.After(waitLimit):
		t.Fatal("the first delivery was never recorded")
	}
	r.enqueue("M1", PaymentCompleted, "PAY0000002", payment)
	if got := rc.next(); !strings.Contains(string(got.body), r.event("M1", PaymentCompleted, "PAY0000002").ID) {
		t.Fatalf("second delivery %s, want PAY0000002's event", got.body)
	}
	if st := r.event("M1", PaymentCompleted, "PAY0000001").State; st != statePending {
		t.Fatalf("first event %s while its record waits, want still pending", st)
	}
	letGo()
	r.nextOutcome("M1", outcomeDelivered)
	r.nextOutcome("M1", outcomeDelivered)
	for _, sub := range []string{"PAY0000001", "PAY0000002"} {
		if st := r.event("M1", PaymentCompleted, sub).State; st != stateDelivered {
			t.Fatalf("%s's event %s, want delivered", sub, st)
		}
	}
}

// The hourly sweep deletes finished events older than Retain.
func testFinishedEventsAreDeletedAfterRetain(t *testing.T) {
	r := newRig(t, func(c *Config) { c.Retain = 48 * time.Hour })
	rc := newReceiver(t, nil)
	r.setEndpoint("M1", rc.srv.URL, secretA)
	r.run()
	r.enqueue("M1", PaymentCompleted, "PAY0000001", payment)
	r.nextOutcome("M1", outcomeDelivered)
	r.clock.Advance(47 * time.Hour)
	r.settle()
	if n := r.count(`SELECT count(*) FROM webhook_events`); n != 1 {
		t.Fatalf("%d events after 47h, want 1", n)
	}
	r.clock.Advance(2 * time.Hour)
	r.settle()
	if n := r.count(`SELECT count(*) FROM webhook_events`); n != 0 {
		t.Fatalf("%d events after 49h, want 0", n)
	}
}

// Each attempt is counted by outcome and timed; the queue's depth is shown.
func testMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	r := newRig(t, func(c *Config) { c.Registry = reg })
	rc := newReceiver(t, func(n int, w http.ResponseWriter, _ *http.Request) {
		if n == 1 {
			w.WriteHeader(http.StatusTooManyRequests)
		}
	})
	r.setEndpoint("M1", rc.srv.URL, secretA)
	r.setEndpoint("M2", "http://127.0.0.1:1/never", secretB) // nothing listens on port 1
	r.enqueue("M2", PaymentCompleted, "PAY0000002", payment)
	r.enqueue("M1", PaymentCompleted, "PAY0000001", payment)
	r.run()
	for round, want := range []map[string]string{
		{"M1": outcomeRetry, "M2": outcomeRetry},
		{"M1": outcomeDelivered, "M2": outcomeRetry}, // both due again after the backoff
	} {
		got := map[string]string{}
		for range 2 {
			d := r.next()
			got[d.merchant] = d.outcome
		}
		if !maps.Equal(got, want) {
			t.Fatalf("round %d: %v, want %v", round, got, want)
		}
		r.clock.Advance(11 * time.Second)
		r.h.Kick()
	}
	r.clock.Advance(depthEvery)
	r.settle()
	m := r.h.m
	if got := testutil.ToFloat64(m.deliveries.WithLabelValues(outcomeDelivered)); got != 1 {
		t.Errorf("delivered = %v, want 1", got)
	}
	if got := testutil.ToFloat64(m.deliveries.WithLabelValues(outcomeRetry)); got < 3 {
		t.Errorf("retry = %v, want at least 3", got)
	}
	if got := testutil.ToFloat64(m.depth); got != 1 {
		t.Errorf("queue depth = %v, want 1 (M2's event)", got)
	}
	if n := testutil.CollectAndCount(reg, "payswitch_webhook_delivery_duration_seconds"); n != 1 {
		t.Errorf("duration histogram: %d series", n)
	}
}

func TestCommittedEventIsDeliveredOnceAndRolledBackOneNever(t *testing.T) {
	pgtest.Both(t, testCommittedEventIsDeliveredOnceAndRolledBackOneNever)
}

func TestFailedDeliveryIsRetriedWithTheSameEventID(t *testing.T) {
	pgtest.Both(t, testFailedDeliveryIsRetriedWithTheSameEventID)
}

func TestWorkerWakesWhenARetryIsDue(t *testing.T) { pgtest.Both(t, testWorkerWakesWhenARetryIsDue) }

func TestUnansweredDeliveryTimesOutAndIsRetried(t *testing.T) {
	pgtest.Both(t, testUnansweredDeliveryTimesOutAndIsRetried)
}

func TestEventIsGivenUpAfterRetryFor(t *testing.T) { pgtest.Both(t, testEventIsGivenUpAfterRetryFor) }

func TestHangingMerchantDoesNotDelayOthers(t *testing.T) {
	pgtest.Both(t, testHangingMerchantDoesNotDelayOthers)
}

func TestFailingMerchantIsPausedThenProbed(t *testing.T) {
	pgtest.Both(t, testFailingMerchantIsPausedThenProbed)
}

func TestSettingTheEndpointAgainSendsTheBacklogAtOnce(t *testing.T) {
	pgtest.Both(t, testSettingTheEndpointAgainSendsTheBacklogAtOnce)
}

func TestCrashMidDeliveryRedelivers(t *testing.T) { pgtest.Both(t, testCrashMidDeliveryRedelivers) }

func TestStopMidDeliveryReleasesTheEvent(t *testing.T) {
	pgtest.Both(t, testStopMidDeliveryReleasesTheEvent)
}

func TestDeliveryNeverConnectsToTheSwitchItself(t *testing.T) {
	pgtest.Both(t, testDeliveryNeverConnectsToTheSwitchItself)
}

func TestDeliveriesAreCappedPerMerchant(t *testing.T) {
	pgtest.Both(t, testDeliveriesAreCappedPerMerchant)
}

func TestSlotIsFreeOnceTheMerchantAnswers(t *testing.T) {
	pgtest.Both(t, testSlotIsFreeOnceTheMerchantAnswers)
}

func TestFinishedEventsAreDeletedAfterRetain(t *testing.T) {
	pgtest.Both(t, testFinishedEventsAreDeletedAfterRetain)
}

func TestMetrics(t *testing.T) { pgtest.Both(t, testMetrics) }
