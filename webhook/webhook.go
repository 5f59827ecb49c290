// Package webhook delivers merchants' events (contract section 10): a payment completed,
// reversed or refunded, a request declined or expired, an escrow released or disputed.
//
// An event is queued with Enqueue inside the store transaction of the change it reports,
// so a committed change always has its event and a rolled-back one has none; at most one
// event is queued per merchant, type and subject (a UNIQUE constraint), so an engine write
// that runs again queues nothing twice. Run then POSTs each event to the merchant's
// endpoint as {"id", "type", "created_at", "data"}, signed with the merchant's secret
// (Sign), until a 2xx answers within Config.Timeout, retrying with backoff for
// Config.RetryFor with the same event ID: delivery is at least once.
//
// The worker claims due events under a lease, as outbox does, so an event whose delivery
// was cut short by a crash is claimed again. One merchant's dead or slow endpoint never
// holds up the others: each merchant has at most Config.PerMerchant deliveries in
// flight, and after Config.MaxFailures failures in a row its events wait out
// Config.Pause (a circuit breaker) instead of taking workers.
//
// The package knows the engine only through the method set of its EventSink: it does not
// import the engine, which is wired to it.
package webhook

import (
	"errors"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/payswitch/payswitch/internal/handover"
	"github.com/payswitch/payswitch/internal/logthrottle"
	"github.com/payswitch/payswitch/internal/seal"
	"github.com/payswitch/payswitch/internal/timeid"
	"github.com/payswitch/payswitch/store"
)

// The event types of contract section 10, and RequestFailed, an addition: a request to
// pay whose right code found too little money (or a frozen account, a spent daily
// limit), or that too many wrong codes ended.
const (
	PaymentCompleted = "payment.completed"
	PaymentReversed  = "payment.reversed"
	PaymentRefunded  = "payment.refunded"
	RequestDeclined  = "request.declined"
	RequestExpired   = "request.expired"
	RequestFailed    = "request.failed"
	EscrowReleased   = "escrow.released"
	EscrowDisputed   = "escrow.disputed"
)

// Types lists every event type Enqueue accepts.
var Types = []string{PaymentCompleted, PaymentReversed, PaymentRefunded, RequestDeclined, RequestExpired,
	RequestFailed, EscrowReleased, EscrowDisputed}

// Errors returned by webhook.
var (
	// ErrInvalid is what every refusal of a caller's input wraps (an *InputError).
	ErrInvalid = errors.New("webhook: invalid input")
	// ErrNoEndpoint: the merchant has no webhook endpoint.
	ErrNoEndpoint = errors.New("webhook: no endpoint for this merchant")
	// ErrRunning: Run was called while another Run of the same Hooks works.
	ErrRunning = errors.New("webhook: already running")
)

// Event states, as stored.
const (
	statePending   = "pending"   // waiting for its next attempt, or in flight under a lease
	stateDelivered = "delivered" // a 2xx answered
	stateFailed    = "failed"    // given up: RetryFor ran out, or the endpoint was removed
)

// Defaults of Config.
const (
	DefaultTimeout        = 10 * time.Second
	DefaultRetryFor       = 72 * time.Hour
	MinRetryFor           = 24 * time.Hour // the contract's "at least 24 hours"
	DefaultWorkers        = 32
	DefaultPerMerchant    = 4
	DefaultMaxFailures    = 5
	DefaultPause          = time.Minute
	DefaultKeepDeliveries = 500
	DefaultRetain         = 30 * 24 * time.Hour
)

// DefaultBackoff is the wait before each retry: the first after 10s, the seventh and
// later 1h apart. Each wait is lengthened by up to a tenth at random, so that events
// that failed together do not come back together.
var DefaultBackoff = []time.Duration{10 * time.Second, 30 * time.Second, time.Minute, 5 * time.Minute,
	15 * time.Minute, 30 * time.Minute, time.Hour}

// Config shapes Hooks. Zero values take the defaults named.
type Config struct {
	// Now is the clock for due times, leases, signatures' timestamps and the deliveries'
	// log (nil: time.Now). After is the timer the worker waits on between deliveries
	// (nil: time.After); tests pass their own to move time.
	Now   func() time.Time
	After func(time.Duration) <-chan time.Time
	// Timeout is how long one delivery may take, from connecting until the answer's
	// status (and a few kilobytes of its body) is read (DefaultTimeout, the contract's
	// 10 s). It runs in real time, whatever Now says.
	Timeout time.Duration
	// RetryFor is how long after it was queued an event is still tried (DefaultRetryFor;
	// at least MinRetryFor). The last try is at that point; if it fails, the event is
	// given up (state failed).
	RetryFor time.Duration
	// Backoff is the wait after the first, second, ... failed attempt; the last entry
	// repeats (DefaultBackoff).
	Backoff []time.Duration
	// Workers caps the deliveries in flight (DefaultWorkers); PerMerchant caps them per
	// merchant (DefaultPerMerchant, and less than Workers when Workers allows), so that a
	// slow endpoint holds at most that many and leaves a worker for the others.
	Workers, PerMerchant int
	// MaxFailures is how many failed attempts in a row pause a merchant's deliveries for
	// Pause (DefaultMaxFailures, DefaultPause). After a pause one event goes out alone; if
	// it fails too, the merchant pauses again.
	MaxFailures int
	Pause       time.Duration
	// SealKey is the switch's secret (at least 16 bytes): merchants' secrets are stored
	// encrypted with AES-256-GCM under a key derived from it. Required.
	SealKey []byte
	// Forbidden lists the host:port addresses of the switch's own listeners: an endpoint
	// URL that points at one is refused, and when HTTPClient is nil a connection to one
	// is refused too, whatever name led to it. A listener on every interface (":8080",
	// "0.0.0.0:8080") forbids that port on loopback and on this machine's addresses.
	// Empty entries (listeners that are off) and port 0 are ignored: pass the addresses
	// the listeners are bound to.
	Forbidden []string
	// HTTPClient sends the deliveries (nil: one with Timeout, no proxy, that follows no
	// redirect and refuses to connect to Forbidden addresses).
	HTTPClient *http.Client
	Log        zerolog.Logger
	Registry   prometheus.Registerer // nil: no metrics
	// KeepDeliveries is how many failed delivery attempts are kept per merchant for
	// Deliveries (DefaultKeepDeliveries); older ones are pruned. An event's successful
	// attempt is kept with the event.
	KeepDeliveries int
	// Retain is how long after it was made a delivered or given-up event is kept
	// (DefaultRetain). Its UNIQUE key keeps an engine write run again from queuing it
	// twice meanwhile.
	Retain time.Duration
}

// Hooks queues and delivers merchants' events. It is safe for concurrent use.
type Hooks struct {
	db     *store.DB
	cfg    Config
	sealer *seal.Sealer // seals merchants' secrets
	client *http.Client
	// forbidden are the switch's own listeners; Forbid adds those bound after New.
	forbidden atomic.Pointer[[]listener]
	ids       *timeid.Generator
	wake      chan struct{} // buffered 1: Kicks between two waits coalesce
	// lastLease is the latest lease given (micros), so that no two claims share one.
	lastLease atomic.Int64
	running   atomic.Bool
	// node names this process among the nodes sharing a PostgreSQL database (SetNode).
	node string
	// fresh hands committed events to the worker (EnqueueThen); pauses are the
	// merchants the worker has paused, until when, for EnqueueThen to leave them be.
	fresh    *handover.Queue[claimed]
	pauses   atomic.Pointer[map[string]time.Time]
	m        *metrics
	throttle *logthrottle.Throttle
	// endpoints are the merchants' endpoints, kept in memory on SQLite (endpoints.go).
	endpoints endpoints

	mu     sync.Mutex      // guards resets
	resets map[string]bool // merchants whose endpoint changed since the worker last looked

	// finished and idle are set by tests before Run, and called on Run's goroutine:
	// finished for every delivery the worker has taken into its merchant's state, idle
	// when the worker waits with nothing in flight and no Kick pending, so that only
	// its timer, set for wake, or a new Kick can wake it.
	finished func(done)
	idle     func(wake time.Time)
	// pruneAlways, set by tests, prunes the deliveries' log at every attempt.
	pruneAlways bool
	// beforeRecord, set by tests before Run, runs on the recorder before each write of
	// delivered attempts.
	beforeRecord func()
}

// eventIDLayout writes event IDs as "evt_" and 20 characters: 8 of time (tenths of a
// second since 2025) and 12 of a sequence that starts at random, so that IDs are
// unguessable enough yet inserted at the end of their index.
var eventIDLayout = timeid.Layout{Prefix: "evt_", Alphabet: "0123456789abcdefghijklmnopqrstuvwxyz",
	Tick: 100 * time.Millisecond, Epoch: time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC), TickSymbols: 8, SeqSymbols: 12}

// New returns the Hooks over db, whose schemas must include Schema.
func New(db *store.DB, cfg Config) (*Hooks, error) {
	if db == nil {
		return nil, errors.New("webhook: no database")
	}
	if err := cfg.fill(); err != nil {
		return nil, err
	}
	sealer, err := newSealer(cfg.SealKey)
	if err != nil {
		return nil, err
	}
	forbidden, err := parseListeners(cfg.Forbidden)
	if err != nil {
		return nil, err
	}
	m, err := newMetrics(cfg.Registry)
	if err != nil {
		return nil, err
	}
	h := &Hooks{db: db, cfg: cfg, sealer: sealer, ids: timeid.New(eventIDLayout),
		wake: make(chan struct{}, 1), fresh: handover.New[claimed](maxFresh), m: m, throttle: logthrottle.New(logthrottle.Interval, cfg.Now),
		resets: map[string]bool{}}
	h.forbidden.Store(&forbidden)
	h.client = cfg.HTTPClient
	if h.client == nil {
		h.client = h.defaultClient()
	}
	return h, nil
}

// fill applies the defaults and checks what was given.
func (c *Config) fill() error {
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.After == nil {
		c.After = time.After
	}
	if c.Timeout == 0 {
		c.Timeout = DefaultTimeout
	}
	if c.RetryFor == 0 {
		c.RetryFor = DefaultRetryFor
	}
	if len(c.Backoff) == 0 {
		c.Backoff = DefaultBackoff
	}
	if c.Workers == 0 {
		c.Workers = DefaultWorkers
	}
	if c.PerMerchant == 0 {
		// Never every worker: a merchant whose endpoint hangs would hold up all others.
		c.PerMerchant = min(DefaultPerMerchant, max(c.Workers-1, 1))
	}
	if c.MaxFailures == 0 {
		c.MaxFailures = DefaultMaxFailures
	}
	if c.Pause == 0 {
		c.Pause = DefaultPause
	}
	if c.KeepDeliveries == 0 {
		c.KeepDeliveries = DefaultKeepDeliveries
	}
	if c.Retain == 0 {
		c.Retain = DefaultRetain
	}
	switch {
	case c.Timeout < 0:
		return fmt.Errorf("webhook: timeout %v: want > 0", c.Timeout)
	case c.RetryFor < MinRetryFor:
		return fmt.Errorf("webhook: retry_for %v: want at least %v", c.RetryFor, MinRetryFor)
	case c.Workers < 0 || c.PerMerchant < 0 || c.PerMerchant > c.Workers:
		return fmt.Errorf("webhook: workers %d, per merchant %d: want 0 < per merchant <= workers", c.Workers, c.PerMerchant)
	case c.MaxFailures < 0 || c.Pause < 0:
		return fmt.Errorf("webhook: max failures %d, pause %v: want > 0", c.MaxFailures, c.Pause)
	case c.KeepDeliveries < 0 || c.Retain < 0:
		return fmt.Errorf("webhook: keep deliveries %d, retain %v: want > 0", c.KeepDeliveries, c.Retain)
	}
	for _, d := range c.Backoff {
		if d <= 0 {
			return fmt.Errorf("webhook: backoff %v: want > 0", d)
		}
	}
	return nil
}

// Kick wakes the worker: call it after the store.Write that queued events returns. It
// never blocks; Kicks the worker has not seen yet collapse into one.
func (h *Hooks) Kick() {
	select {
	case h.wake <- struct{}{}:
	default:
	}
}

// InputError is a refusal of a caller's input (an endpoint's URL or secret, an event):
// the API answers it with 400. It wraps ErrInvalid.
type InputError struct {
	Field string // "url", "secret", "merchant", "type", ...
	Msg   string
}

func (e *InputError) Error() string { return "webhook: " + e.Field + ": " + e.Msg }

// InvalidInput tells the API that the caller's input is at fault.
func (e *InputError) InvalidInput() bool { return true }

// Is makes errors.Is(err, ErrInvalid) true.
func (e *InputError) Is(target error) bool { return target == ErrInvalid }

func invalid(field, format string, args ...any) error {
	return &InputError{Field: field, Msg: fmt.Sprintf(format, args...)}
}

func micros(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMicro()
}

func fromMicros(v int64) time.Time {
	if v == 0 {
		return time.Time{}
	}
	return time.UnixMicro(v).UTC()
}

// SetNode names this process among the nodes that share a PostgreSQL database, for the
// leases of the events it writes and claims: started again under the same name, it frees
// at once those its previous run left, instead of waiting out their lease. Call it
// before Run; on SQLite it changes nothing (one process delivers, and frees every lease
// as it starts).
func (h *Hooks) SetNode(name string) { h.node = name }
