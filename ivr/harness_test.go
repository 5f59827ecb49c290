package ivr

import (
	"context"
	"encoding/json"
	"encoding/xml"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/payswitch/payswitch/internal/switchtest"
	"github.com/payswitch/payswitch/outbox"
	"github.com/payswitch/payswitch/store"
	payswitch "github.com/payswitch/payswitch/switch"
)

var (
	_ Engine = (*payswitch.Engine)(nil)
	_ Queue  = (*outbox.Outbox)(nil)
	_ Queue  = (*countingQueue)(nil)
)

const (
	alice     = "254700000001"
	bob       = "254700000002"
	mama      = "254700000900"
	till      = "55501"
	ivrNumber = "254709000000"
	token     = "voice-secret-token"
)

// countingQueue is the real outbox, counting how the Caller settles messages.
type countingQueue struct {
	*outbox.Outbox
	markSent, retry, fail atomic.Int64
}

func (q *countingQueue) MarkSent(ctx context.Context, m outbox.Message, link string, ids []string) error {
	q.markSent.Add(1)
	return q.Outbox.MarkSent(ctx, m, link, ids)
}

func (q *countingQueue) Retry(ctx context.Context, id int64, errText string, next time.Time) error {
	q.retry.Add(1)
	return q.Outbox.Retry(ctx, id, errText, next)
}

func (q *countingQueue) Fail(ctx context.Context, id int64, errText string) error {
	q.fail.Add(1)
	return q.Outbox.Fail(ctx, id, errText)
}

// gateway is a fake voice gateway's call API: it records each request and answers with
// what answer returns for the request's number (1-based).
type gateway struct {
	srv    *httptest.Server
	mu     sync.Mutex // guards reqs and answer
	reqs   []gatewayRequest
	answer func(n int, w http.ResponseWriter, r *http.Request)
	got    chan struct{} // a request arrived
}

type gatewayRequest struct {
	Body           callRequest
	RawBody        string
	Auth           string
	ContentType    string
	IdempotencyKey string
}

func newGateway(t testing.TB) *gateway {
	g := &gateway{got: make(chan struct{}, 100)}
	g.answer = func(n int, w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"sessionId": "ATVId_` + string(rune('0'+n%10)) + `"}`))
	}
	g.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		raw, _ := io.ReadAll(r.Body)
		var body callRequest
		json.Unmarshal(raw, &body)
		g.mu.Lock()
		g.reqs = append(g.reqs, gatewayRequest{Body: body, RawBody: string(raw), Auth: r.Header.Get("Authorization"),
			ContentType: r.Header.Get("Content-Type"), IdempotencyKey: r.Header.Get("Idempotency-Key")})
		n, answer := len(g.reqs), g.answer
		g.mu.Unlock()
		select {
		case g.got <- struct{}{}:
		default:
		}
		answer(n, w, r)
	}))
	t.Cleanup(g.srv.Close)
	return g
}

func (g *gateway) setAnswer(f func(n int, w http.ResponseWriter, r *http.Request)) {
	g.mu.Lock()
	g.answer = f
	g.mu.Unlock()
}

func (g *gateway) requests() []gatewayRequest {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]gatewayRequest(nil), g.reqs...)
}

// harness is a switch on a real database in a temporary directory, with the IVR served
// over HTTP on loopback and, when asked, a fake voice gateway.
type harness struct {
	*switchtest.Rig
	t       testing.TB
	queue   *countingQueue
	svc     *Service
	srv     *httptest.Server
	gateway *gateway
}

type options struct {
	gateway bool
	cfg     func(*Config)
	fraud   payswitch.Fraud
	origin  string // what the callback guard would say the callbacks came through
	engine  func(*payswitch.Config)
}

func newHarness(t testing.TB, o options) *harness {
	t.Helper()
	// The clock starts at the real time because the outbox stamps messages with the real
	// time when they are queued, and moves a microsecond at every reading so that
	// payments made one after the other are ordered.
	h := &harness{t: t, Rig: switchtest.New(t, switchtest.Options{Start: time.Now().UTC().Truncate(time.Second),
		Tick: time.Microsecond, Sealed: true, VoiceNumber: ivrNumber, Fraud: o.fraud, Config: o.engine})}
	h.queue = &countingQueue{Outbox: h.Outbox}
	var err error
	cfg := Config{Number: ivrNumber}
	if o.gateway {
		h.gateway = newGateway(t)
		cfg.GatewayURL, cfg.GatewayToken = h.gateway.srv.URL+"/calls", token
	}
	if o.cfg != nil {
		o.cfg(&cfg)
	}
	if h.svc, err = New(cfg, h.Engine, h.queue, h.Clock.Now, zerolog.Nop(), nil); err != nil {
		t.Fatal(err)
	}
	if c := h.svc.Caller(); c != nil {
		c.poll = 5 * time.Millisecond
		c.backoff = func(int) time.Duration { return 0 }
	}
	handler := h.svc.Handler()
	if o.origin != "" {
		inner := handler
		handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			inner.ServeHTTP(w, r.WithContext(payswitch.WithOrigin(r.Context(), o.origin)))
		})
	}
	h.srv = httptest.NewServer(handler)
	t.Cleanup(h.srv.Close)
	return h
}

// run runs the service (the Caller and the sweeper) until the test ends.
func (h *harness) run() {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { h.svc.Run(ctx); close(done) }()
	h.t.Cleanup(func() { cancel(); <-done })
}

// lastPayment is msisdn's newest payment that is not a deposit.
func (h *harness) lastPayment(msisdn string) *payswitch.Payment {
	h.t.Helper()
	for _, p := range h.Payments(msisdn) {
		if p.Type != payswitch.DepositPayment {
			return p
		}
	}
	h.t.Fatalf("%s has made no payment", msisdn)
	return nil
}

func (h *harness) payment(id string) *payswitch.Payment {
	h.t.Helper()
	p, err := h.Engine.Payment(context.Background(), id)
	if err != nil {
		h.t.Fatal(err)
	}
	return p
}

var codeRun = regexp.MustCompile(`(^|[^0-9])([0-9]{6})([^0-9]|$)`)

// code reads the newest one-time code sent to msisdn by SMS.
func (h *harness) code(msisdn string) string {
	h.t.Helper()
	ms, err := h.Outbox.List(context.Background(), msisdn, 50)
	if err != nil {
		h.t.Fatal(err)
	}
	for _, m := range ms {
		if m.Purpose == "otp" {
			if c := codeRun.FindStringSubmatch(m.Text); c != nil {
				return c[2]
			}
			h.t.Fatalf("no code in %q", m.Text)
		}
	}
	h.t.Fatalf("no code sent to %s", msisdn)
	return ""
}

// callsTo are the call messages queued for msisdn, newest first.
func (h *harness) callsTo(msisdn string) []outbox.Message {
	h.t.Helper()
	ms, err := h.Outbox.List(context.Background(), msisdn, 100)
	if err != nil {
		h.t.Fatal(err)
	}
	var calls []outbox.Message
	for _, m := range ms {
		if m.Kind == outbox.KindCall {
			calls = append(calls, m)
		}
	}
	return calls
}

// enqueueCall queues a call message as the engine would.
func (h *harness) enqueueCall(to, purpose, paymentID string) int64 {
	h.t.Helper()
	var id int64
	err := h.DB.Write(context.Background(), func(tx store.Tx) error {
		var err error
		id, err = h.Outbox.Enqueue(context.Background(), tx, outbox.Message{Kind: outbox.KindCall, To: to,
			From: ivrNumber, PaymentID: paymentID, Purpose: purpose, CreatedAt: h.Clock.Now()})
		return err
	})
	if err != nil {
		h.t.Fatal(err)
	}
	return id
}

// post sends raw callback form fields and returns the answer, which must be 200 with an
// XML Response.
func (h *harness) post(form url.Values) Response {
	h.t.Helper()
	resp, err := http.PostForm(h.srv.URL+"/ivr", form)
	if err != nil {
		h.t.Fatal(err)
	}
	return h.read(resp)
}

func (h *harness) read(resp *http.Response) Response {
	h.t.Helper()
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		h.t.Fatalf("status %d: %s", resp.StatusCode, body)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/xml") {
		h.t.Fatalf("Content-Type %q", ct)
	}
	var r Response
	if err := xml.Unmarshal(body, &r); err != nil {
		h.t.Fatalf("answer is not XML: %v\n%s", err, body)
	}
	return r
}

// call is one phone call on the gateway.
type call struct {
	h        *harness
	id       string
	outbound bool
	number   string // the customer's number as the gateway writes it
}

func (h *harness) inbound(id, caller string) *call { return &call{h: h, id: id, number: caller} }

func (h *harness) outboundCall(id, called string) *call {
	return &call{h: h, id: id, number: called, outbound: true}
}

// key posts the keys (empty: the first callback, or silence) during the call.
func (c *call) key(digits string) Response {
	c.h.t.Helper()
	return c.h.post(c.form(digits))
}

// form is the callback of c that carries digits.
func (c *call) form(digits string) url.Values {
	f := url.Values{"sessionId": {c.id}, "isActive": {"1"}, "dtmfDigits": {digits}}
	if c.outbound {
		f.Set("direction", "Outbound")
		f.Set("callerNumber", "+"+ivrNumber)
		f.Set("destinationNumber", c.number)
	} else {
		f.Set("direction", "Inbound")
		f.Set("callerNumber", c.number)
		f.Set("destinationNumber", "+"+ivrNumber)
	}
	return f
}

// hangUp posts the end of the call.
func (c *call) hangUp() Response {
	c.h.t.Helper()
	dir := "Inbound"
	if c.outbound {
		dir = "Outbound"
	}
	return c.h.post(url.Values{"sessionId": {c.id}, "isActive": {"0"}, "direction": {dir},
		"callerNumber": {c.number}, "durationInSeconds": {"42"}})
}

// wantPrompt checks that r waits for keys and says every one of says.
func wantPrompt(t testing.TB, r Response, numDigits int, says ...string) {
	t.Helper()
	if r.GetDigits == nil || r.GetDigits.Say == nil || r.Reject != nil {
		t.Fatalf("want a GetDigits prompt, got %+v", r)
	}
	if r.GetDigits.NumDigits != numDigits || r.GetDigits.FinishOnKey != "#" || r.GetDigits.Timeout <= 0 {
		t.Errorf("GetDigits %+v: want numDigits %d, finishOnKey #, a timeout", *r.GetDigits, numDigits)
	}
	wantSays(t, r, says...)
}

// wantFinal checks that r ends the call and says every one of says.
func wantFinal(t testing.TB, r Response, says ...string) {
	t.Helper()
	if r.GetDigits != nil || r.Reject != nil || r.Say == nil || r.Say.Text == "" {
		t.Fatalf("want a final Say, got %+v", r)
	}
	wantSays(t, r, says...)
}

func wantSays(t testing.TB, r Response, says ...string) {
	t.Helper()
	text := r.text()
	for _, s := range says {
		if !strings.Contains(text, s) {
			t.Errorf("answer %q does not say %q", text, s)
		}
	}
}

// eventually polls cond until it holds or a generous deadline passes.
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
