package webhook

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/payswitch/payswitch/internal/dbtest"

	"github.com/payswitch/payswitch/internal/pgtest"
	"github.com/payswitch/payswitch/store"
)

var ctx = context.Background()

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

// driverOf is the driver of the pgtest.Both subtest tb is, or runs inside.
var driverOf = dbtest.Dialect

// sealKey stands for the switch's secret.
var sealKey = []byte("0123456789abcdef0123456789abcdef")

// waitLimit bounds every wait for something the worker does: reaching it is a failure.
const waitLimit = 10 * time.Second

// clock is a test clock: time moves when the test says so. Its timers (After) fire when
// Advance moves it past their deadline, never by themselves.
type clock struct {
	mu     sync.Mutex // guards t and timers
	t      time.Time
	timers []timer
}

type timer struct {
	at time.Time
	c  chan time.Time
}

func newClock() *clock {
	return &clock{t: time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)}
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) After(d time.Duration) <-chan time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := timer{at: c.t.Add(d), c: make(chan time.Time, 1)}
	if d <= 0 {
		t.c <- c.t
		return t.c
	}
	c.timers = append(c.timers, t)
	return t.c
}

// Advance moves the clock on by d and fires the timers then due.
func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
	waiting := c.timers[:0]
	for _, t := range c.timers {
		if t.at.After(c.t) {
			waiting = append(waiting, t)
			continue
		}
		t.c <- c.t
	}
	c.timers = waiting
}

// rig is a Hooks on a database in a temporary directory, with a test clock.
type rig struct {
	t        *testing.T
	path     string // the SQLite file; "" on PostgreSQL
	url      string // the PostgreSQL database; "" on SQLite
	db       *store.DB
	h        *Hooks
	clock    *clock
	cfg      Config
	finished chan done      // every delivery the worker finished
	idle     chan time.Time // when the worker, idle, will wake
	stop     func()         // ends Run and waits for it; a no-op when not running
	nodeName string         // the Hooks' SetNode name ("node-a" unless a test changes it)
}

func newRig(t *testing.T, change func(*Config)) *rig {
	t.Helper()
	r := newClosedRig(t, change)
	r.open()
	t.Cleanup(func() { r.stop() }) // before the database closes: cleanups run last first
	return r
}

// newClosedRig is newRig before it opens the database.
func newClosedRig(t *testing.T, change func(*Config)) *rig {
	t.Helper()
	r := &rig{t: t, clock: newClock(), stop: func() {}, nodeName: "node-a"}
	if driverOf(t) == store.Postgres {
		r.url = pgtest.URL(t)
	} else {
		r.path = filepath.Join(t.TempDir(), "webhook.db")
	}
	r.cfg = Config{Now: r.clock.Now, After: r.clock.After, SealKey: sealKey, Backoff: []time.Duration{10 * time.Second}}
	if change != nil {
		change(&r.cfg)
	}
	return r
}

// open opens the database and makes the Hooks over it, as a start of the switch does.
func (r *rig) open() {
	r.t.Helper()
	db, err := r.openDB()
	if err != nil {
		r.t.Fatal(err)
	}
	r.t.Cleanup(func() { db.Close() })
	h, err := New(db, r.cfg)
	if err != nil {
		r.t.Fatal(err)
	}
	h.SetNode(r.nodeName)
	r.finished = make(chan done, 100)
	h.finished = func(d done) { r.finished <- d }
	r.idle = make(chan time.Time, 1000)
	h.idle = func(wake time.Time) { r.idle <- wake }
	r.db, r.h = db, h
}

// openDB opens a store.DB on the rig's database: another node's, on PostgreSQL, each
// time it is called.
func (r *rig) openDB() (*store.DB, error) { return r.openDBWith(Schema) }

// openDBWith is openDB with the webhook schema s (an older one, say).
func (r *rig) openDBWith(s store.Schema) (*store.DB, error) {
	if r.url != "" {
		return store.OpenPostgres(ctx, r.url, store.Options{}, s)
	}
	return store.Open(r.path, store.Options{}, s)
}

// run starts the worker; r.stop ends it.
func (r *rig) run() {
	runCtx, cancel := context.WithCancel(ctx)
	errc := make(chan error, 1)
	go func() { errc <- r.h.Run(runCtx) }()
	stopped := false
	r.stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		if err := <-errc; err != nil {
			r.t.Errorf("Run: %v", err)
		}
	}
}

// enqueue queues an event in a transaction of its own and kicks the worker.
func (r *rig) enqueue(merchant, eventType, subject string, data string) {
	r.t.Helper()
	if err := r.db.Write(ctx, func(tx store.Tx) error {
		return r.h.Enqueue(ctx, tx, merchant, eventType, subject, []byte(data), r.clock.Now())
	}); err != nil {
		r.t.Fatal(err)
	}
	r.h.Kick()
}

// setEndpoint points merchant's events at url.
func (r *rig) setEndpoint(merchant, url, secret string) {
	r.t.Helper()
	if err := r.h.SetEndpoint(ctx, merchant, url, secret); err != nil {
		r.t.Fatal(err)
	}
}

// next waits for the worker to finish a delivery.
func (r *rig) next() done {
	r.t.Helper()
	select {
	case d := <-r.finished:
		return d
	case <-time.After(waitLimit):
		r.t.Fatal("no delivery finished")
		return done{}
	}
}

// nextOutcome waits for a delivery and checks how it went.
func (r *rig) nextOutcome(merchant, outcome string) {
	r.t.Helper()
	if d := r.next(); d.merchant != merchant || d.outcome != outcome {
		r.t.Fatalf("delivery finished %+v, want %s for %s", d, outcome, merchant)
	}
}

// waitIdle waits until the worker waits for its timer alone, set to fire by deadline.
func (r *rig) waitIdle(deadline time.Time) {
	r.t.Helper()
	limit := time.After(waitLimit)
	for {
		select {
		case wake := <-r.idle:
			if !wake.After(deadline) {
				return
			}
		case <-limit:
			r.t.Fatalf("the worker never waited for a time by %v", deadline)
		}
	}
}

// settle waits until the worker has done a whole round after this call: each send on
// its wake channel (capacity 1) waits until the worker took the one before, and the
// worker takes one only between rounds.
func (r *rig) settle() {
	r.h.wake <- struct{}{}
	r.h.wake <- struct{}{}
	r.h.wake <- struct{}{}
}

// inFlight counts the events claimed and not yet finished.
func (r *rig) inFlight() int {
	r.t.Helper()
	return r.count(`SELECT count(*) FROM webhook_events WHERE lease <> 0`)
}

// quiet checks that the worker, kicked, starts no delivery and finished none.
func (r *rig) quiet() {
	r.t.Helper()
	r.settle()
	if n := r.inFlight(); n != 0 {
		r.t.Fatalf("%d deliveries started", n)
	}
	select {
	case d := <-r.finished:
		r.t.Fatalf("unexpected delivery %+v", d)
	default:
	}
}

// event is an event's row.
type event struct {
	ID, State, LastError string
	Attempts, LastStatus int
	NextAt               time.Time
}

func (r *rig) event(merchant, eventType, subject string) event {
	r.t.Helper()
	var e event
	var next int64
	if err := r.db.Reader().QueryRowContext(ctx, `SELECT id, state, last_error, attempts, last_status, next_at
		FROM webhook_events WHERE merchant_id = ? AND type = ? AND subject = ?`, merchant, eventType, subject).Scan(
		&e.ID, &e.State, &e.LastError, &e.Attempts, &e.LastStatus, &next); err != nil {
		r.t.Fatalf("event %s %s %s: %v", merchant, eventType, subject, err)
	}
	e.NextAt = fromMicros(next)
	return e
}

func (r *rig) count(query string, args ...any) int {
	r.t.Helper()
	var n int
	if err := r.db.Reader().QueryRowContext(ctx, query, args...).Scan(&n); err != nil {
		r.t.Fatal(err)
	}
	return n
}

// request is a delivery as a receiver saw it.
type request struct {
	n      int // 1 for the receiver's first
	path   string
	header http.Header
	body   []byte
}

// receiver is a merchant's system: it records every request and answers as respond
// says (nil: 200).
type receiver struct {
	t       *testing.T
	srv     *httptest.Server
	reqs    chan request
	mu      sync.Mutex // guards n and respond
	n       int
	respond func(n int, w http.ResponseWriter, r *http.Request)
}

func newReceiver(t *testing.T, respond func(n int, w http.ResponseWriter, r *http.Request)) *receiver {
	rc := &receiver{t: t, reqs: make(chan request, 100), respond: respond}
	rc.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		rc.mu.Lock()
		rc.n++
		n, respond := rc.n, rc.respond
		rc.mu.Unlock()
		rc.reqs <- request{n: n, path: r.URL.Path, header: r.Header.Clone(), body: body}
		if respond != nil {
			respond(n, w, r)
		}
	}))
	t.Cleanup(rc.srv.Close)
	return rc
}

// answer changes how the receiver answers from now on.
func (rc *receiver) answer(respond func(n int, w http.ResponseWriter, r *http.Request)) {
	rc.mu.Lock()
	rc.respond = respond
	rc.mu.Unlock()
}

func (rc *receiver) got() int {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return rc.n
}

// next waits for the receiver's next request.
func (rc *receiver) next() request {
	rc.t.Helper()
	select {
	case r := <-rc.reqs:
		return r
	case <-time.After(waitLimit):
		rc.t.Fatal("no request came")
		return request{}
	}
}

func status(code int) func(int, http.ResponseWriter, *http.Request) {
	return func(_ int, w http.ResponseWriter, _ *http.Request) { w.WriteHeader(code) }
}

// hang answers nothing until the client gives up or release is closed.
func hang(release <-chan struct{}) func(int, http.ResponseWriter, *http.Request) {
	return func(_ int, w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}
}

// envelopeOf decodes a delivery's body.
type envelopeOf struct {
	ID        string          `json:"id"`
	Type      string          `json:"type"`
	CreatedAt string          `json:"created_at"`
	Data      json.RawMessage `json:"data"`
}

func decode(t *testing.T, body []byte) envelopeOf {
	t.Helper()
	var e envelopeOf
	if err := json.Unmarshal(body, &e); err != nil {
		t.Fatalf("body %q: %v", body, err)
	}
	return e
}

const (
	secretA = "whsec-merchant-a-0123456789"
	secretB = "whsec-merchant-b-0123456789"
	payment = `{"id":"PAY0000001","type":"merchant_payment","state":"completed","amount":150000,"currency":"KES"}`
)

// plan is SQLite's query plan of query with args, a line per step.
func (r *rig) plan(query string, args ...any) string {
	r.t.Helper()
	plan, err := r.db.QueryPlan(ctx, query, args...)
	if err != nil {
		r.t.Fatal(err)
	}
	return strings.Join(plan, "\n")
}
