package ivr

import (
	"context"
	"errors"
	"fmt"
	"github.com/payswitch/payswitch/texts"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/payswitch/payswitch/ledger"
	"github.com/payswitch/payswitch/outbox"
	payswitch "github.com/payswitch/payswitch/switch"
)

// Defaults for zero Config fields.
const (
	DefaultSessionTimeout = 10 * time.Minute
	DefaultCallTimeout    = 10 * time.Second
	DefaultConcurrency    = 4
	DefaultMaxAttempts    = 10
	DefaultMatchWindow    = 10 * time.Minute
)

// Limits on what a callback may create.
const (
	maxSessionID = 128     // bytes of a gateway session ID
	maxSessions  = 100_000 // calls in memory at once; more are told to call again
	maxRepeats   = 2       // times a prompt is repeated after a wrong or missing key
	maxNotices   = 3       // times a merchant may hear a notice again
	stepTimeout  = 10 * time.Second
)

// Engine is what the IVR needs of the payment engine; *payswitch.Engine has it. The
// ledger serves read-only look-ups: a merchant code before the amount is asked, and
// balances, which are spoken in words rather than as the engine's SMS text.
type Engine interface {
	Request(ctx context.Context, r payswitch.Request) (payswitch.Outcome, error)
	Confirm(ctx context.Context, ch payswitch.Channel, msisdn, paymentID, code string) (payswitch.Outcome, error)
	Payment(ctx context.Context, id string) (*payswitch.Payment, error)
	Normalize(msisdn string) (string, error)
	Currency() string
	CodeDigits() int
	Ledger() *ledger.Ledger
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

	// CallTimeout bounds one request to the gateway (default 10 s); Concurrency is how
	// many run at once (default 4); MaxAttempts is how many tries a call gets before it
	// fails for good (default 10).
	CallTimeout time.Duration
	Concurrency int
	MaxAttempts int
	// MatchWindow is how recent a sent call must be for an outbound callback that the
	// gateway gave no ID for to be matched to it by number (default 10 minutes).
	MatchWindow time.Duration
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

	mu       sync.Mutex          // guards sessions and sent
	sessions map[string]*session // by gateway session ID
	sent     map[int64]time.Time // call messages this process sent, when: see matchCall

	callbacks *prometheus.CounterVec // callbacks by direction and result
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
	if cfg.MatchWindow == 0 {
		cfg.MatchWindow = DefaultMatchWindow
	}
	if cfg.SessionTimeout < 0 || cfg.MatchWindow < 0 {
		return nil, fmt.Errorf("ivr: session timeout %v and match window %v: must be > 0", cfg.SessionTimeout, cfg.MatchWindow)
	}
	tx, err := newTexts(cfg.Texts)
	if err != nil {
		return nil, err
	}
	s := &Service{
		cfg: cfg, engine: engine, queue: queue, texts: tx, now: now,
		log:      log.With().Str("component", "ivr").Logger(),
		sessions: make(map[string]*session),
		sent:     make(map[int64]time.Time),
		callbacks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "payswitch_ivr_callbacks_total",
			Help: "Voice gateway callbacks by direction and result: prompt, end, reject, hangup, unknown, error.",
		}, []string{"direction", "result"}),
	}
	collectors := []prometheus.Collector{s.callbacks, prometheus.NewGaugeFunc(prometheus.GaugeOpts{
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
		s.caller.sent = s.noteSent
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

// Sessions is how many calls are in memory.
func (s *Service) Sessions() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.sessions)
}

// Sweep forgets calls idle longer than the session timeout and returns how many. A
// payment such a call started stays with the engine: its code still confirms it by SMS
// until it expires.
func (s *Service) Sweep() int {
	cutoff := s.now().Add(-s.cfg.SessionTimeout)
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for id, sess := range s.sessions {
		if !sess.mu.TryLock() { // in the middle of a step: alive
			continue
		}
		if sess.seen.Before(cutoff) {
			delete(s.sessions, id)
			n++
		}
		sess.mu.Unlock()
	}
	for id, at := range s.sent {
		if at.Before(s.now().Add(-s.cfg.MatchWindow)) {
			delete(s.sent, id)
		}
	}
	return n
}

// end forgets a call that the gateway reports ended.
func (s *Service) end(id string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.sessions[id]
	delete(s.sessions, id)
	return ok
}

// noteSent remembers when the Caller handed call message id to the gateway.
func (s *Service) noteSent(id int64, at time.Time) {
	s.mu.Lock()
	s.sent[id] = at
	s.mu.Unlock()
}

// sentAt is when call message m went to the gateway, as far as this process knows: the
// Caller's record, or else (after a restart) when it was queued.
func (s *Service) sentAt(m outbox.Message) time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	if at, ok := s.sent[m.ID]; ok {
		return at
	}
	return m.CreatedAt
}
