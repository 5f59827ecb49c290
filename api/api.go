// Package api serves the HTTP API (/api/v1) of operators, auditors and merchants'
// systems (a merchant key sees only its own merchant's things), /healthz and
// /metrics, and mounts the gateway callbacks of the other channels (/ussd, /ivr) on the
// same server. It turns HTTP into calls on the engine and the engine's answers into JSON.
package api

import (
	"context"
	"crypto/sha256"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/rs/zerolog"

	"github.com/payswitch/payswitch/internal/failures"
	"github.com/payswitch/payswitch/store"
)

// Role is what a token may do.
type Role string

// The roles of the contract. A configured token is an operator's or an auditor's; a
// merchant's role is its keys' (package merchant), never a configured token's.
const (
	Operator Role = "operator" // read and write
	Auditor  Role = "auditor"  // read only
	Merchant Role = "merchant" // its own account, payments, requests, products and webhook
)

// Token is one bearer token the API accepts.
type Token struct {
	Name  string
	Token string
	Role  Role
}

// Health is what /healthz reports.
type Health struct {
	Database ComponentHealth `json:"database"`
	Links    []LinkHealth    `json:"links"`
	// Server lists the accounts of the switch's own SMPP server; a carrier not bound
	// there does not make the switch degraded.
	Server []LinkHealth     `json:"smpp_server,omitempty"`
	Outbox map[string]int64 `json:"outbox,omitempty"` // messages by state
	// Replicas are the database's continuous copies; one that cannot be written makes
	// the switch degraded, not unavailable: payments go on.
	Replicas []ReplicaHealth `json:"replicas,omitempty"`
}

// ReplicaHealth is one replica's state. LagSeconds bounds what losing the disk now
// would lose: every commit older than that is on the replica.
type ReplicaHealth struct {
	Name       string  `json:"name"`
	OK         bool    `json:"ok"`
	LagSeconds float64 `json:"lag_seconds"`
	CaughtUpAt string  `json:"caught_up_at"`
	Error      string  `json:"error,omitempty"`
	ErrorSince string  `json:"error_since,omitempty"`
}

// ComponentHealth is one part's state. Fault is one word for what is wrong when OK is
// false (for the database: busy, full, read-only, io-error, corrupt; see store.Fault),
// Error the error itself.
type ComponentHealth struct {
	OK    bool   `json:"ok"`
	Path  string `json:"path,omitempty"`
	Fault string `json:"fault,omitempty"`
	Error string `json:"error,omitempty"`
	// LastCheckpoint (RFC 3339, the database's only) is when the store's checkpointer
	// last copied the WAL back: an old one means the WAL only grows.
	LastCheckpoint string `json:"last_checkpoint,omitempty"`
	// Host (PostgreSQL only) is the server this node writes to, host:port: after a
	// failover, the promoted standby.
	Host string `json:"host,omitempty"`
}

// LinkHealth is one SMPP link's (or SMPP server account's) state and counters.
type LinkHealth struct {
	Name      string `json:"name"`
	State     string `json:"state"`
	Sessions  int    `json:"sessions"`
	InFlight  int    `json:"in_flight"`
	Window    int    `json:"window"`
	Submitted uint64 `json:"submitted"`
	Failed    uint64 `json:"failed"`
	Throttled uint64 `json:"throttled"`
	Received  uint64 `json:"received"`
}

// Config is how the API is set up.
type Config struct {
	Tokens       []Token
	MaxBodyBytes int64 // default 64 KiB
	Timeout      time.Duration
	// Health reports the database (OK false makes /healthz answer 503) and the links.
	Health func(ctx context.Context) Health
	// Diagnose names the database fault behind a failed request (see store.Fault), which
	// makes it a 503; nil: store.FaultOf, which cannot look at the filesystem.
	Diagnose func(err error) store.Fault
	Gatherer prometheus.Gatherer   // what /metrics exposes; nil: prometheus.DefaultGatherer
	Registry prometheus.Registerer // where the API's own metrics go; nil: none
	Log      zerolog.Logger
	// Now is the clock of the failed-token limit; nil: time.Now.
	Now func() time.Time

	// What the merchants' routes (contract section 10) use. Each may be nil: then the
	// routes that need it answer 501 not_configured, and without Keys no merchant key
	// is accepted.
	Keys     MerchantKeys // merchants' API keys; *merchant.Keys
	Catalog  Catalog      // merchants' products; *merchant.Catalog
	Requests Requests     // requests to pay; the engine
	Webhooks Webhooks     // merchants' webhook endpoints and deliveries

	// What the routes of guaranteed payments (contract section 11) use; each may be nil,
	// and then its route answers 501 not_configured.
	Guarantees Guarantees    // merchants' escrow setting; *merchant.Guarantees
	Escrow     EscrowSettler // settles payments in escrow; the engine
	Stores     Stores        // merchants' stores and tills (contract section 11); *merchant.Stores
	Sales      SalesReports  // sales reports; *sales.Reports
}

// Server is the HTTP handler of the whole switch.
type Server struct {
	engine  Engine
	cfg     Config
	mux     *http.ServeMux
	tokens  []tokenDigest
	latency *prometheus.HistogramVec
	guesses *failures.Limiter
}

type tokenDigest struct {
	name   string
	role   Role
	digest [32]byte
}

// New builds the API. Tokens with an empty value are skipped: an unset environment
// variable must not become a token that matches an empty Authorization header.
func New(e Engine, cfg Config) (*Server, error) {
	if cfg.MaxBodyBytes <= 0 {
		cfg.MaxBodyBytes = 64 << 10
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 10 * time.Second
	}
	if cfg.Gatherer == nil {
		cfg.Gatherer = prometheus.DefaultGatherer
	}
	if cfg.Diagnose == nil {
		cfg.Diagnose = store.FaultOf
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	s := &Server{engine: e, cfg: cfg, mux: http.NewServeMux(), guesses: failures.New(10, time.Minute)}
	for _, t := range cfg.Tokens {
		if t.Token == "" {
			continue
		}
		if t.Role != Operator && t.Role != Auditor {
			return nil, fmt.Errorf("api: token %q: role %q: want operator or auditor", t.Name, t.Role)
		}
		s.tokens = append(s.tokens, tokenDigest{name: t.Name, role: t.Role, digest: sha256.Sum256([]byte(t.Token))})
	}
	s.latency = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "payswitch_http_request_duration_seconds",
		Help:    "HTTP request latency by route and status code.",
		Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 10},
	}, []string{"route", "code"})
	if cfg.Registry != nil {
		if err := cfg.Registry.Register(s.latency); err != nil {
			return nil, fmt.Errorf("api: register metrics: %w", err)
		}
	}

	s.route("POST /api/v1/accounts", Operator, s.openAccount)
	s.merchantRoute("GET /api/v1/accounts/{id}", Auditor, s.getAccount)
	s.route("PATCH /api/v1/accounts/{id}", Operator, s.patchAccount)
	s.route("GET /api/v1/accounts", Auditor, s.findAccount)
	s.route("POST /api/v1/deposits", Operator, s.deposit)
	s.merchantRoute("GET /api/v1/payments/{id}", Auditor, s.getPayment)
	s.route("GET /api/v1/payments", Auditor, s.listPayments)
	s.route("POST /api/v1/payments/{id}/reverse", Operator, s.reversePayment)
	s.route("POST /api/v1/airtime/topups", Operator, s.airtimeTopup)
	s.route("GET /api/v1/ledger/trial-balance", Auditor, s.trialBalance)
	s.mountMerchantRoutes()
	s.mountEscrowRoutes()
	s.mux.Handle("/api/", s.instrument("unknown", http.HandlerFunc(s.unknownRoute)))
	s.mux.Handle("GET /healthz", s.instrument("/healthz", http.HandlerFunc(s.healthz)))
	s.mux.Handle("GET /metrics", promhttp.HandlerFor(cfg.Gatherer, promhttp.HandlerOpts{}))
	return s, nil
}

// Handle mounts another channel's handler (the USSD or IVR gateway callback) on the
// same server, with the same body limit and latency metrics but no bearer token: those
// gateways are not operators, and the handler brings its own guard (package callback).
func (s *Server) Handle(pattern string, h http.Handler) {
	route := pattern
	if _, p, ok := strings.Cut(pattern, " "); ok {
		route = p
	}
	s.mux.Handle(pattern, s.Wrap(route, h))
}

// Wrap is h with what Handle adds (the body limit, the latency metrics under route,
// and a panic costing one request), for a handler served on another listener.
func (s *Server) Wrap(route string, h http.Handler) http.Handler {
	return s.instrument(route, s.limitBody(h))
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.mux.ServeHTTP(w, r) }

func (s *Server) limitBody(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.Body = http.MaxBytesReader(w, r.Body, s.cfg.MaxBodyBytes)
		h.ServeHTTP(w, r)
	})
}

type statusRecorder struct {
	http.ResponseWriter
	code int
}

func (r *statusRecorder) WriteHeader(code int) {
	r.code = code
	r.ResponseWriter.WriteHeader(code)
}

func (r *statusRecorder) Flush() {
	if f, ok := r.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func (s *Server) instrument(route string, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rec := &statusRecorder{ResponseWriter: w, code: http.StatusOK}
		defer func() {
			if v := recover(); v != nil {
				// A bug must cost one request, not the process that holds everyone's money.
				s.cfg.Log.Error().Interface("panic", v).Str("route", route).Msg("handler panicked")
				writeError(rec, http.StatusInternalServerError, "internal", "internal error")
			}
			s.latency.WithLabelValues(route, strconv.Itoa(rec.code)).Observe(time.Since(start).Seconds())
		}()
		h.ServeHTTP(rec, r)
	})
}
