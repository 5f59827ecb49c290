package ivr

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/payswitch/payswitch/outbox"
	payswitch "github.com/payswitch/payswitch/switch"
)

// Caller tuning.
const (
	callerPoll      = 500 * time.Millisecond
	bookkeepTimeout = 10 * time.Second // for MarkSent/Retry/Fail, which must outlive shutdown
	maxGatewayBody  = 64 << 10
	maxCallID       = 128
)

// CallerConfig configures a Caller.
type CallerConfig struct {
	URL, Token  string        // the gateway's API and bearer token
	From        string        // caller ID when a message names none
	Timeout     time.Duration // one request; default 10 s
	Concurrency int           // requests at once; default 4
	MaxAttempts int           // tries before a call fails for good; default 10
}

// Caller requests the outbox's calls from the voice gateway: it claims messages of kind
// "call", POSTs each to the gateway's URL with JSON
//
//	{"to": "254700000900", "from": "254709000000", "purpose": "merchant_notice", "payment_id": "K7PQ2RSTUV"}
//
// and headers Authorization: Bearer <token> and Idempotency-Key: payswitch-call-<id> (the
// same on every retry of a message, for gateways that deduplicate), and records the
// outcome. A 2xx is sent: the call ID in the answer is kept with the message (see
// callID), and the call's callbacks are matched by it alone; a 2xx without an ID is
// logged as an error, and that call's callbacks are rejected. A timeout, a connection error, a
// 5xx, 408 or 429 is retried after outbox.Backoff (or the gateway's Retry-After, if
// longer); any other 4xx, or the last of MaxAttempts tries, fails the call for good.
//
// It polls the outbox rather than waiting on its Kick: that signal has one slot, and a
// Kick taken here would be missing from the SMS sender, which carries codes.
type Caller struct {
	q      Queue
	client *http.Client
	cfg    CallerConfig
	now    func() time.Time
	log    zerolog.Logger

	lease, poll time.Duration
	backoff     func(attempt int) time.Duration // outbox.Backoff; tests shorten it
	key         func(to string) string          // a number as callbacks name it; nil: as queued

	mu      sync.Mutex                 // guards flights
	flights map[string][]chan struct{} // by number called: requests not yet recorded
	waiting func()                     // told when a callback starts waiting for flights; tests set it

	calls *prometheus.CounterVec // gateway requests by result: requested, unmatchable, retry, failed
}

// NewCaller returns a Caller of q's calls; now is its clock (nil: time.Now). Its metrics
// are registered by New; a Caller made alone counts but does not export them.
func NewCaller(cfg CallerConfig, q Queue, now func() time.Time, log zerolog.Logger) (*Caller, error) {
	u, err := url.Parse(cfg.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("ivr: gateway url %q: want an http or https URL", cfg.URL)
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultCallTimeout
	}
	if cfg.Concurrency <= 0 {
		cfg.Concurrency = DefaultConcurrency
	}
	if cfg.MaxAttempts <= 0 {
		cfg.MaxAttempts = DefaultMaxAttempts
	}
	if now == nil {
		now = time.Now
	}
	return &Caller{
		q: q, cfg: cfg, now: now,
		client: &http.Client{Timeout: cfg.Timeout},
		log:    log.With().Str("component", "voice_caller").Logger(),
		// A lease outlives a request and its bookkeeping, so that a live worker never
		// sees its call claimed again.
		lease:   cfg.Timeout + 2*bookkeepTimeout,
		poll:    callerPoll,
		backoff: outbox.Backoff,
		flights: make(map[string][]chan struct{}),
		calls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "payswitch_ivr_calls_total",
			Help: "Outbound call requests to the voice gateway by result: requested, unmatchable (accepted without a call ID), retry, failed.",
		}, []string{"result"}),
	}, nil
}

// Run requests calls until ctx ends, then waits for the requests in flight to be
// recorded and returns nil.
func (c *Caller) Run(ctx context.Context) error {
	var (
		wg    sync.WaitGroup
		slots = make(chan struct{}, c.cfg.Concurrency) // one per request in flight
		freed = make(chan struct{}, 1)
	)
	defer wg.Wait()
	tick := time.NewTicker(c.poll)
	defer tick.Stop()
	for ctx.Err() == nil {
		// Only this loop fills slots, so free never overstates what is free.
		free := cap(slots) - len(slots)
		full := false
		if free > 0 {
			msgs, err := c.q.Claim(ctx, outbox.KindCall, free, c.lease)
			if err != nil && ctx.Err() == nil {
				c.log.Error().Err(err).Msg("outbox claim failed")
			}
			full = len(msgs) == free
			for _, m := range msgs {
				slots <- struct{}{}
				wg.Go(func() {
					defer func() {
						<-slots
						select {
						case freed <- struct{}{}:
						default:
						}
					}()
					c.deliver(ctx, m)
				})
			}
		}
		if full {
			continue // there may be more due right now
		}
		select {
		case <-ctx.Done():
		case <-freed:
		case <-tick.C:
		}
	}
	return nil
}

// callRequest is the JSON body of a request to the gateway.
type callRequest struct {
	To        string `json:"to"`
	From      string `json:"from"`
	Purpose   string `json:"purpose"`
	PaymentID string `json:"payment_id"`
}

// gatewayError is a failed request; permanent ones are not retried.
type gatewayError struct {
	status     int
	permanent  bool
	retryAfter time.Duration
	msg        string
}

func (e *gatewayError) Error() string { return e.msg }

// deliver makes one attempt at m and records the outcome.
func (c *Caller) deliver(ctx context.Context, m outbox.Message) {
	defer c.takeOff(m.To)()
	id, err := c.request(ctx, m)
	bctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), bookkeepTimeout)
	defer cancel()
	log := c.log.With().Int64("outbox_id", m.ID).Str("to", payswitch.Mask(m.To)).Str("payment", m.PaymentID).
		Str("purpose", m.Purpose).Int("attempt", m.Attempts).Logger()
	var gerr *gatewayError
	errors.As(err, &gerr)
	var qerr error
	switch {
	case err == nil && id == "":
		// Callbacks are matched only by the call ID (see matchCall): this call's will be
		// rejected. It is sent all the same, since the gateway took it and a retry
		// would ring the phone twice; a payer still confirms by SMS.
		qerr = c.q.MarkSent(bctx, m, voiceLink, nil)
		c.calls.WithLabelValues("unmatchable").Inc()
		log.Error().Msg("voice gateway accepted the call without a call ID: its callbacks cannot be matched and will be rejected")
	case err == nil:
		qerr = c.q.MarkSent(bctx, m, voiceLink, []string{id})
		c.calls.WithLabelValues("requested").Inc()
		log.Info().Str("call_id", id).Msg("call requested")
	case gerr != nil && gerr.permanent, m.Attempts >= c.cfg.MaxAttempts:
		qerr = c.q.Fail(bctx, m.ID, err.Error())
		c.calls.WithLabelValues("failed").Inc()
		log.Error().Err(err).Msg("call failed for good")
	default:
		wait := c.backoff(m.Attempts)
		if gerr != nil && gerr.retryAfter > wait {
			wait = min(gerr.retryAfter, 10*time.Minute)
		}
		if ctx.Err() != nil {
			wait = 0 // shutting down: due again as soon as the switch is back
		}
		next := c.now().Add(wait)
		qerr = c.q.Retry(bctx, m.ID, err.Error(), next)
		c.calls.WithLabelValues("retry").Inc()
		log.Warn().Err(err).Time("next", next).Msg("call not requested; will retry")
	}
	if errors.Is(qerr, outbox.ErrState) {
		// Another attempt settled the message meanwhile (its lease ran out while this
		// one waited for the gateway): that outcome stands.
		log.Info().Msg("call already settled; attempt outcome ignored")
		return
	}
	if qerr != nil {
		log.Error().Err(qerr).Msg("outbox update failed; the lease will expire and the call is requested again")
	}
}

// takeOff records a request to number to as in flight until the returned function is
// called, once its outcome is recorded: a callback of the call that arrives before then
// waits for it (see inFlight).
func (c *Caller) takeOff(to string) (landed func()) {
	if c.key != nil {
		to = c.key(to)
	}
	done := make(chan struct{})
	c.mu.Lock()
	c.flights[to] = append(c.flights[to], done)
	c.mu.Unlock()
	return func() {
		c.mu.Lock()
		rest := slices.DeleteFunc(c.flights[to], func(d chan struct{}) bool { return d == done })
		if len(rest) == 0 {
			delete(c.flights, to)
		} else {
			c.flights[to] = rest
		}
		c.mu.Unlock()
		close(done)
	}
}

// awaitFlights waits until the requests to number to that are in flight now have their
// outcome recorded, or limit has passed, or ctx ends. With none in flight it returns at
// once: the caller looks again all the same, since a request may have landed between
// its first look-up and this call.
func (c *Caller) awaitFlights(ctx context.Context, to string, limit time.Duration) {
	c.mu.Lock()
	flights := slices.Clone(c.flights[to])
	c.mu.Unlock()
	if len(flights) == 0 {
		return
	}
	if c.waiting != nil {
		c.waiting()
	}
	t := time.NewTimer(limit)
	defer t.Stop()
	for _, done := range flights {
		select {
		case <-done:
		case <-t.C:
			return
		case <-ctx.Done():
			return
		}
	}
}

// request POSTs m to the gateway and returns the call ID its answer carries, if any.
func (c *Caller) request(ctx context.Context, m outbox.Message) (string, error) {
	from := m.From
	if from == "" {
		from = c.cfg.From
	}
	body, err := json.Marshal(callRequest{To: m.To, From: from, Purpose: m.Purpose, PaymentID: m.PaymentID})
	if err != nil {
		return "", &gatewayError{permanent: true, msg: fmt.Sprintf("ivr: encode call request: %v", err)}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.cfg.URL, bytes.NewReader(body))
	if err != nil {
		return "", &gatewayError{permanent: true, msg: fmt.Sprintf("ivr: call request: %v", err)}
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	req.Header.Set("Authorization", "Bearer "+c.cfg.Token)
	req.Header.Set("Idempotency-Key", "payswitch-call-"+strconv.FormatInt(m.ID, 10))
	resp, err := c.client.Do(req)
	if err != nil {
		// Timeouts, refused connections, resets: the gateway may come back. The error
		// names the URL, never the token.
		return "", fmt.Errorf("ivr: gateway: %w", err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(io.LimitReader(resp.Body, maxGatewayBody))
	switch s := resp.StatusCode; {
	case s >= 200 && s < 300:
		return callID(data), nil
	case s >= 400 && s < 500 && s != http.StatusRequestTimeout && s != http.StatusTooEarly && s != http.StatusTooManyRequests:
		return "", &gatewayError{status: s, permanent: true, msg: fmt.Sprintf("ivr: gateway answered %s: %s", resp.Status, snippet(data))}
	default:
		return "", &gatewayError{status: s, retryAfter: retryAfter(resp.Header.Get("Retry-After")),
			msg: fmt.Sprintf("ivr: gateway answered %s: %s", resp.Status, snippet(data))}
	}
}

// callID reads the call's ID from the gateway's answer, in the shapes voice APIs use:
// a top-level "sessionId", "session_id", "callId", "call_id" or "id" (a string or a
// number), the same inside "data", or inside the first of "entries" (Africa's Talking
// style). Anything else, or no JSON at all, is no ID, and the call's callbacks cannot
// be matched (see matchCall).
func callID(body []byte) string {
	var doc map[string]any
	if json.Unmarshal(body, &doc) != nil {
		return ""
	}
	if id := idIn(doc); id != "" {
		return id
	}
	if d, ok := doc["data"].(map[string]any); ok {
		if id := idIn(d); id != "" {
			return id
		}
	}
	if es, ok := doc["entries"].([]any); ok && len(es) > 0 {
		if e, ok := es[0].(map[string]any); ok {
			return idIn(e)
		}
	}
	return ""
}

func idIn(m map[string]any) string {
	for _, k := range []string{"sessionId", "session_id", "callId", "call_id", "id"} {
		var s string
		switch v := m[k].(type) {
		case string:
			s = strings.TrimSpace(v)
		case float64:
			s = strconv.FormatFloat(v, 'f', -1, 64)
		}
		if s != "" && len(s) <= maxCallID {
			return s
		}
	}
	return ""
}

// retryAfter reads a Retry-After header in seconds; 0 when absent or a date.
func retryAfter(h string) time.Duration {
	n, err := strconv.Atoi(strings.TrimSpace(h))
	if err != nil || n <= 0 {
		return 0
	}
	return time.Duration(n) * time.Second
}

// snippet is the start of an error body, for the message's last error.
func snippet(b []byte) string {
	s := strings.TrimSpace(string(b))
	if len(s) > 200 {
		s = s[:200] + "..."
	}
	return strings.ToValidUTF8(s, "?")
}
