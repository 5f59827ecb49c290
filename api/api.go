// Package api serves the operators' and auditors' HTTP API (/api/v1), /healthz and
// /metrics, and mounts the gateway callbacks of the other channels (/ussd, /ivr) on the
// same server. It turns HTTP into calls on the engine and the engine's answers into JSON.
package api

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/rs/zerolog"

	"github.com/payswitch/payswitch/internal/failures"
	"github.com/payswitch/payswitch/ledger"
	"github.com/payswitch/payswitch/store"
	payswitch "github.com/payswitch/payswitch/switch"
)

// Role is what a token may do.
type Role string

// The two roles of the contract.
const (
	Operator Role = "operator" // read and write
	Auditor  Role = "auditor"  // read only
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
	s.route("GET /api/v1/accounts/{id}", Auditor, s.getAccount)
	s.route("PATCH /api/v1/accounts/{id}", Operator, s.patchAccount)
	s.route("GET /api/v1/accounts", Auditor, s.findAccount)
	s.route("POST /api/v1/deposits", Operator, s.deposit)
	s.route("GET /api/v1/payments/{id}", Auditor, s.getPayment)
	s.route("GET /api/v1/payments", Auditor, s.listPayments)
	s.route("POST /api/v1/payments/{id}/reverse", Operator, s.reversePayment)
	s.route("POST /api/v1/airtime/topups", Operator, s.airtimeTopup)
	s.route("GET /api/v1/ledger/trial-balance", Auditor, s.trialBalance)
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

// route mounts an API handler that needs at least role min (Auditor: any valid token).
func (s *Server) route(pattern string, min Role, h func(w http.ResponseWriter, r *http.Request) error) {
	_, path, _ := strings.Cut(pattern, " ")
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// The token first: a valid token always works, so that an address's failures
		// (a neighbour behind the same NAT, a forged request from this machine) cannot
		// lock the operator out. Only failures are limited.
		name, role, ok := s.authenticate(r)
		if !ok {
			s.refuseToken(w, clientIP(r))
			return
		}
		if min == Operator && role != Operator {
			writeError(w, http.StatusForbidden, "forbidden", "this token may only read")
			return
		}
		ctx, cancel := context.WithTimeout(r.Context(), s.cfg.Timeout)
		defer cancel()
		// The token's name goes with the request: a change that records who made it
		// (an account's freeze) names the operator by it.
		ctx = context.WithValue(ctx, actorKey{}, name)
		if err := h(w, r.WithContext(ctx)); err != nil {
			s.fail(w, r, err)
		}
	})
	s.mux.Handle(pattern, s.instrument(path, s.limitBody(handler)))
}

// refuseToken answers a request without a valid token: 401, or 429 once client has
// failed too often within the window. The failure that reaches the limit is logged, so
// that an operator sees the guessing; the address is not a phone number and is logged
// whole, the token never.
func (s *Server) refuseToken(w http.ResponseWriter, client string) {
	now := s.cfg.Now()
	if !s.guesses.Allowed(client, now) {
		w.Header().Set("Retry-After", "60")
		writeError(w, http.StatusTooManyRequests, "too_many_attempts", "too many failed token attempts; wait a minute")
		return
	}
	if s.guesses.Failed(client, now) {
		s.cfg.Log.Warn().Str("client", client).Int("failures", s.guesses.Max()).Dur("window", s.guesses.Window()).
			Msg("too many bad API tokens from one address; its bad tokens get 429 for the rest of the window")
	}
	w.Header().Set("WWW-Authenticate", `Bearer realm="payswitch"`)
	writeError(w, http.StatusUnauthorized, "unauthorized", "a valid bearer token is required")
}

// authenticate compares the presented token with every known one in constant time, so
// that neither which token nor how much of it matched shows in the timing.
// It returns the matching token's name and role.
func (s *Server) authenticate(r *http.Request) (string, Role, bool) {
	h := r.Header.Get("Authorization")
	scheme, tok, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || tok == "" {
		return "", "", false
	}
	d := sha256.Sum256([]byte(strings.TrimSpace(tok)))
	var role Role
	var name string
	found := 0
	for _, t := range s.tokens {
		if subtle.ConstantTimeCompare(d[:], t.digest[:]) == 1 {
			role, name = t.role, t.name
			found = 1
		}
	}
	return name, role, found == 1
}

// actorKey is the context key of the name of the token a request came with.
type actorKey struct{}

// actor is the name of the token r came with ("" outside route).
func actor(r *http.Request) string {
	name, _ := r.Context().Value(actorKey{}).(string)
	return name
}

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

// fail maps an engine or ledger error to the contract's JSON error.
func (s *Server) fail(w http.ResponseWriter, r *http.Request, err error) {
	if fault := s.cfg.Diagnose(err); fault != "" {
		// The database cannot take the write (disk full, read-only, locked): the client
		// should wait and retry. /healthz says why, and the fault is logged once where
		// the database is watched, not here for every request.
		w.Header().Set("Retry-After", "10")
		writeError(w, http.StatusServiceUnavailable, "database_unavailable", fmt.Sprintf(
			"the database cannot be written right now (%s); the request was not completed: retry it later, with the same reference where it has one", fault))
		return
	}
	var status int
	var code string
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &tooBig):
		writeError(w, http.StatusRequestEntityTooLarge, "body_too_large", fmt.Sprintf(
			"the request body is larger than the limit of %d bytes; nothing was changed", tooBig.Limit))
		return
	case errors.Is(err, errBadJSON), errors.Is(err, payswitch.ErrInvalid):
		status, code = http.StatusBadRequest, "invalid_request"
	case errors.Is(err, payswitch.ErrNotFound), errors.Is(err, ledger.ErrNotFound):
		status, code = http.StatusNotFound, "not_found"
	case errors.Is(err, payswitch.ErrAirtimeDelivered):
		status, code = http.StatusConflict, "airtime_delivered"
	case errors.Is(err, payswitch.ErrConflict), errors.Is(err, ledger.ErrDuplicate), errors.Is(err, ledger.ErrIdempotencyConflict):
		status, code = http.StatusConflict, "conflict"
	case errors.Is(err, ledger.ErrInsufficientFunds), errors.Is(err, payswitch.ErrInsufficientFund):
		status, code = http.StatusUnprocessableEntity, "insufficient_funds"
	case errors.Is(err, context.DeadlineExceeded):
		status, code = http.StatusServiceUnavailable, "timeout"
	default:
		s.cfg.Log.Error().Err(err).Str("path", r.URL.Path).Msg("request failed")
		writeError(w, http.StatusInternalServerError, "internal", "internal error; nothing was changed unless the result says so")
		return
	}
	writeError(w, status, code, cleanMessage(err))
}

// cleanMessage drops the package prefixes that sentinel errors carry.
func cleanMessage(err error) string {
	msg := err.Error()
	for _, p := range []string{"payswitch: ", "ledger: ", "api: "} {
		msg = strings.ReplaceAll(msg, p, "")
	}
	return msg
}

type errorBody struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

func writeError(w http.ResponseWriter, status int, code, message string) {
	var b errorBody
	b.Error.Code, b.Error.Message = code, message
	writeJSON(w, status, b)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.Encode(v)
}
