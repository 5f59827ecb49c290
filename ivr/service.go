package ivr

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/payswitch/payswitch/internal/sessiondb"
	"github.com/payswitch/payswitch/ledger"
	"github.com/payswitch/payswitch/outbox"
	"github.com/payswitch/payswitch/store"
	payswitch "github.com/payswitch/payswitch/switch"
	"github.com/payswitch/payswitch/texts"
)

// Defaults for zero Config fields.
const (
	DefaultSessionTimeout = 10 * time.Minute
	DefaultCallTimeout    = 10 * time.Second
	DefaultConcurrency    = 4
	DefaultMaxAttempts    = 10
)

// Limits on what a callback may create.
const (
	maxSessionID = 128 // bytes of a gateway session ID
	maxRepeats   = 2   // times a prompt is repeated after a wrong or missing key
	maxNotices   = 3   // times a merchant may hear a notice again
	stepTimeout  = 10 * time.Second
	// flightWait bounds how long the first callback of an outbound call waits for the
	// Caller to record the gateway's answer (see matchCall); well inside stepTimeout, so
	// that the gateway still gets its answer in time.
	flightWait = 5 * time.Second
)

// Engine is what the IVR needs of the payment engine; *payswitch.Engine has it. Merchant
// and AccountByMSISDN are read-only look-ups: a merchant code before the amount is
// asked, and balances, which are spoken in words rather than as the engine's SMS text.
type Engine interface {
	Request(ctx context.Context, r payswitch.Request) (payswitch.Outcome, error)
	Confirm(ctx context.Context, ch payswitch.Channel, msisdn, paymentID, code string) (payswitch.Outcome, error)
	Payment(ctx context.Context, id string) (*payswitch.Payment, error)
	Normalize(msisdn string) (string, error)
	HasAccount(ctx context.Context, msisdn string) (bool, error)
	Currency() string
	CodeDigits() int
	Merchant(ctx context.Context, code string) (ledger.Account, error)
	AccountByMSISDN(ctx context.Context, msisdn string) (ledger.Account, error)
	// LockWallet is LOCK <wallet number> <id number> (contract section 14), from any
	// caller.
	LockWallet(ctx context.Context, ch payswitch.Channel, from, wallet, id string) (payswitch.Outcome, error)
}

// Queue is what the IVR needs of the durable outbox; *outbox.Outbox has it. The Caller
// claims and settles call messages; callbacks of outbound calls find theirs with Calls.
type Queue interface {
	Claim(ctx context.Context, kind string, limit int, lease time.Duration) ([]outbox.Message, error)
	MarkSent(ctx context.Context, m outbox.Message, link string, messageIDs []string) error
	Retry(ctx context.Context, id int64, errText string, next time.Time) error
	Fail(ctx context.Context, id int64, errText string) error
	Calls(ctx context.Context, to string, limit int) ([]outbox.Message, error)
}

// Config configures the IVR.
type Config struct {
	// Number is the number callers dial (config ivr.number), the caller ID of outbound
	// calls whose message names none.
	Number string
	// GatewayURL is the voice gateway's API for outbound calls (config ivr.gateway.url);
	// empty turns outbound calls off. GatewayToken is its bearer token.
	GatewayURL, GatewayToken string
	// SessionTimeout is how long a call may sit idle before its session is gone; default
	// 10 minutes.
	SessionTimeout time.Duration
	// Texts overrides DefaultTexts by key. Unknown keys are an error.
	Texts map[string]string
	// Location is the time zone a caller is told a lock's end in (config timezone);
	// nil: UTC.
	Location *time.Location

	// CallTimeout bounds one request to the gateway (default 10 s); Concurrency is how
	// many run at once (default 4); MaxAttempts is how many tries a call gets before it
	// fails for good (default 10).
	CallTimeout time.Duration
	Concurrency int
	MaxAttempts int

	// DB, when it is on PostgreSQL, keeps the calls in its table (Schema) instead of in
	// memory, so that any node sharing the database answers any callback of any call
	// (contract section 13). On SQLite, or nil, calls stay in memory.
	DB *store.DB
}

// Service is the IVR: it answers the voice gateway's callbacks (Handler) and, when a
// gateway URL is configured, requests outbound calls (Caller). It is safe for concurrent
// use; Run sweeps idle calls and runs the Caller.
type Service struct {
	cfg    Config
	engine Engine
	queue  Queue
	texts  *texts.Set
	now    func() time.Time
	log    zerolog.Logger
	caller *Caller // nil: no gateway configured

	mu         sync.Mutex       // guards sessions
	sessions   *sessionIndex    // the calls in memory
	db         *sessiondb.Table // set on PostgreSQL: the calls live there, not in sessions
	flightWait time.Duration    // flightWait; tests shorten it

	callbacks *prometheus.CounterVec // callbacks by direction and result
	evicted   prometheus.Counter     // calls forgotten to make room (see maxSessions)
}

// New returns the IVR over engine and queue. now is its clock (nil: time.Now); reg, when
// not nil, gets its metrics.
func New(cfg Config, engine Engine, queue Queue, now func() time.Time, log zerolog.Logger,
	reg prometheus.Registerer) (*Service, error) {
	if engine == nil || queue == nil {
		return nil, errors.New("ivr: New needs an engine and a queue")
	}
	if now == nil {
		now = time.Now
	}
	if cfg.SessionTimeout == 0 {
		cfg.SessionTimeout = DefaultSessionTimeout
	}
	if cfg.SessionTimeout < 0 {
		return nil, fmt.Errorf("ivr: session timeout %v: must be > 0", cfg.SessionTimeout)
	}
	tx, err := newTexts(cfg.Texts)
	if err != nil {
		return nil, err
	}
	s := &Service{
		cfg: cfg, engine: engine, queue: queue, texts: tx, now: now,
		log:        log.With().Str("component", "ivr").Logger(),
		sessions:   newSessionIndex(maxSessions, maxPerNumber),
		flightWait: flightWait,
		callbacks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "payswitch_ivr_callbacks_total",
			Help: "Voice gateway callbacks by direction and result: prompt, end, reject, hangup, unknown, error.",
		}, []string{"direction", "result"}),
		evicted: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "payswitch_ivr_sessions_evicted_total",
			Help: "Voice calls forgotten before their end to make room for new ones (per-number or global limit).",
		}),
	}
	if cfg.DB != nil && cfg.DB.Dialect() == store.Postgres {
		if s.db, err = sessiondb.New(cfg.DB, sessiondb.Options{Name: "ivr_sessions", Max: maxSessions, PerNumber: maxPerNumber}); err != nil {
			return nil, err
		}
	}
	collectors := []prometheus.Collector{s.callbacks, s.evicted, prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "payswitch_ivr_sessions",
		Help: "Voice calls in memory, ended ones included until they time out.",
	}, func() float64 { return float64(s.Sessions()) })}
	if cfg.GatewayURL != "" {
		if s.caller, err = NewCaller(CallerConfig{
			URL: cfg.GatewayURL, Token: cfg.GatewayToken, From: cfg.Number, Timeout: cfg.CallTimeout,
			Concurrency: cfg.Concurrency, MaxAttempts: cfg.MaxAttempts,
		}, queue, now, log); err != nil {
			return nil, err
		}
		s.caller.key = func(to string) string {
			if n, err := engine.Normalize(to); err == nil {
				return n
			}
			return to
		}
		collectors = append(collectors, s.caller.calls)
	}
	if reg != nil {
		for _, c := range collectors {
			if err := reg.Register(c); err != nil {
				return nil, fmt.Errorf("ivr: register metrics: %w", err)
			}
		}
	}
	return s, nil
}

// Caller is the worker that requests outbound calls, or nil when no gateway URL is
// configured. Run runs it; it is exposed for tests and for running it apart.
func (s *Service) Caller() *Caller { return s.caller }

// Run sweeps idle calls away and runs the Caller (when configured) until ctx ends, then
// waits for the gateway requests in flight to be recorded and returns nil.
func (s *Service) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	if s.caller != nil {
		wg.Go(func() {
			if err := s.caller.Run(ctx); err != nil && ctx.Err() == nil {
				s.log.Error().Err(err).Msg("voice caller stopped")
			}
		})
	}
	t := time.NewTicker(min(max(s.cfg.SessionTimeout/4, time.Second), time.Minute))
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			wg.Wait()
			return nil
		case <-t.C:
			s.Sweep()
		}
	}
}
