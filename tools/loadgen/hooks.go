package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/payswitch/payswitch/webhook"
)

// Bounds of the webhook receiver.
const (
	// maxHookListeners is how many listeners the receiver opens: one per till up to
	// this many, so that each merchant's endpoint is its own host:port to the switch's
	// HTTP client, as distinct merchants' servers are (its idle connections are kept
	// per host); tills beyond share them.
	maxHookListeners = 64
	// maxHookBody bounds a delivery's body; the switch's own cap is far larger than a
	// payment's event ever is.
	maxHookBody = 1 << 20
	// maxHookEvents caps the events the receiver remembers; later ones are only counted.
	maxHookEvents = 4 << 20
)

// hookPath is the path of a till's endpoint on the receiver.
func hookPath(till string) string { return "/hook/" + till }

// arrival is a payment.completed event as the receiver first took it in, signature
// verified.
type arrival struct {
	at     time.Time
	till   string // whose endpoint it came to
	state  string // data.state
	amount int64  // data.amount
	payee  string // data.payee
}

// hookReceiver is the merchants' side of the webhooks: an HTTP server in loadgen that
// verifies every delivery's signature with webhook.Verify, under the secret of the till
// whose path it came to, and records when each event first arrived.
type hookReceiver struct {
	secrets   map[string][]byte // by till code; read-only once serving
	now       func() time.Time  // the receiver's clock: arrivals and Verify's tolerance
	listeners []net.Listener
	srv       *http.Server

	mu        sync.Mutex         // guards the maps below
	events    map[string]int     // event ID -> deliveries with a valid signature
	completed map[string]arrival // payment ID -> its first payment.completed
	types     map[string]int     // event type -> events

	deliveries atomic.Int64 // every POST to a till's path
	valid      atomic.Int64 // distinct events with a valid signature
	last       atomic.Int64 // UnixNano of the last one's arrival
	duplicates atomic.Int64 // valid deliveries of an event already received
	bad        atomic.Int64 // deliveries refused by webhook.Verify
	malformed  atomic.Int64 // deliveries refused otherwise: an unknown till, a body that is no event
	overflow   atomic.Int64 // valid events past maxHookEvents, counted only
	// reCompleted counts payment.completed events about a payment that already had
	// one under another event ID: the switch queues one per merchant, type and payment.
	reCompleted atomic.Int64

	badMu      sync.Mutex // guards badSamples
	badSamples []string   // the first few refusals, for the log
}

// startHookReceiver opens the receiver's listeners on loopback for tills, each with its
// secret, and serves them until close; now is its clock (time.Now).
func startHookReceiver(secrets map[string][]byte, now func() time.Time) (*hookReceiver, error) {
	r := &hookReceiver{secrets: secrets, now: now, events: map[string]int{}, completed: map[string]arrival{}, types: map[string]int{}}
	for range min(len(secrets), maxHookListeners) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			r.close()
			return nil, fmt.Errorf("webhook receiver: %w", err)
		}
		r.listeners = append(r.listeners, ln)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /hook/{till}", r.receive)
	r.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute}
	for _, ln := range r.listeners {
		go func() { _ = r.srv.Serve(ln) }()
	}
	return r, nil
}

// url is the endpoint of the i-th till whose code is till.
func (r *hookReceiver) url(i int, till string) string {
	return "http://" + r.listeners[i%len(r.listeners)].Addr().String() + hookPath(till)
}

func (r *hookReceiver) close() {
	if r.srv != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = r.srv.Shutdown(ctx)
		return
	}
	for _, ln := range r.listeners {
		ln.Close()
	}
}

// event is the envelope of a delivery, with the parts of the payment the checks read.
type event struct {
	ID        string `json:"id"`
	Type      string `json:"type"`
	CreatedAt string `json:"created_at"`
	Data      struct {
		ID     string `json:"id"`
		State  string `json:"state"`
		Amount int64  `json:"amount"`
		Payee  string `json:"payee"`
	} `json:"data"`
}

// receive takes one delivery: 204 once its signature is good and its body an event,
// else 400 (or 404 for a till the receiver does not know), which the switch retries.
func (r *hookReceiver) receive(w http.ResponseWriter, req *http.Request) {
	at := r.now()
	r.deliveries.Add(1)
	till := req.PathValue("till")
	secret, ok := r.secrets[till]
	if !ok {
		r.refuse(w, &r.malformed, http.StatusNotFound, "a delivery to till %s, which has no webhook", till)
		return
	}
	body, err := io.ReadAll(io.LimitReader(req.Body, maxHookBody+1))
	if err != nil || len(body) > maxHookBody {
		r.refuse(w, &r.malformed, http.StatusBadRequest, "till %s: body unreadable or over %d bytes (%v)", till, maxHookBody, err)
		return
	}
	if err := webhook.Verify(req.Header.Get(webhook.SignatureHeader), secret, body, at, 0); err != nil {
		r.refuse(w, &r.bad, http.StatusBadRequest, "till %s: %v", till, err)
		return
	}
	var ev event
	if err := json.Unmarshal(body, &ev); err != nil || ev.ID == "" || ev.Type == "" || ev.CreatedAt == "" || ev.Data.ID == "" {
		r.refuse(w, &r.malformed, http.StatusBadRequest, "till %s: not an event with id, type, created_at and data.id: %.200s", till, body)
		return
	}
	r.record(at, till, ev)
	w.WriteHeader(http.StatusNoContent)
}

// record notes a validly signed event.
func (r *hookReceiver) record(at time.Time, till string, ev event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if n, seen := r.events[ev.ID]; seen {
		r.events[ev.ID] = n + 1
		r.duplicates.Add(1)
		return
	}
	if len(r.events) >= maxHookEvents {
		r.overflow.Add(1)
		return
	}
	r.events[ev.ID] = 1
	r.valid.Add(1)
	r.last.Store(at.UnixNano())
	r.types[ev.Type]++
	if ev.Type != webhook.PaymentCompleted {
		return
	}
	if _, dup := r.completed[ev.Data.ID]; dup {
		r.reCompleted.Add(1)
		return
	}
	r.completed[ev.Data.ID] = arrival{at: at, till: till, state: ev.Data.State, amount: ev.Data.Amount,
		payee: ev.Data.Payee}
}

// refuse answers status, counts the refusal in count and keeps the first few reasons.
func (r *hookReceiver) refuse(w http.ResponseWriter, count *atomic.Int64, status int, format string, args ...any) {
	count.Add(1)
	r.badMu.Lock()
	if len(r.badSamples) < maxProblems {
		r.badSamples = append(r.badSamples, fmt.Sprintf(format, args...))
	}
	r.badMu.Unlock()
	http.Error(w, http.StatusText(status), status)
}

// completedArrival returns the first payment.completed event of payment id.
func (r *hookReceiver) completedArrival(id string) (arrival, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	a, ok := r.completed[id]
	return a, ok
}

// completedIDs lists the payments whose completion has arrived.
func (r *hookReceiver) completedIDs() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]string, 0, len(r.completed))
	for id := range r.completed {
		out = append(out, id)
	}
	return out
}

// typeCounts copies the events counted by type.
func (r *hookReceiver) typeCounts() map[string]int {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make(map[string]int, len(r.types))
	for k, v := range r.types {
		out[k] = v
	}
	return out
}

// refusals returns the first refusals the receiver logged.
func (r *hookReceiver) refusals() []string {
	r.badMu.Lock()
	defer r.badMu.Unlock()
	return append([]string(nil), r.badSamples...)
}
