package ivr

import (
	"context"
	"encoding/json"
	"encoding/xml"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/payswitch/payswitch/ledger"
	"github.com/payswitch/payswitch/otp"
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

// clock is a test clock: time moves a microsecond per reading, so that payments made one
// after the other are ordered, and otherwise only when the test says so. It starts at
// the real time because the outbox stamps messages with the real time when they are
// queued.
type clock struct {
	mu sync.Mutex // guards t
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(time.Microsecond)
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

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
	t       testing.TB
	clock   *clock
	db      *store.DB
	ledger  *ledger.Ledger
	outbox  *outbox.Outbox
	queue   *countingQueue
	engine  *payswitch.Engine
	svc     *Service
	srv     *httptest.Server
	gateway *gateway
}

type options struct {
	gateway bool
	cfg     func(*Config)
}

func newHarness(t testing.TB, o options) *harness {
	t.Helper()
	h := &harness{t: t, clock: &clock{t: time.Now().UTC().Truncate(time.Second)}}
	db, err := store.Open(filepath.Join(t.TempDir(), "payswitch.db"), store.Options{Synchronous: "NORMAL"},
		ledger.Schema, otp.Schema, outbox.Schema, payswitch.Schema)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	secret := []byte("0123456789abcdef0123456789abcdef")
	iss, err := otp.NewIssuer(secret, otp.Config{Digits: 6, TTL: 5 * time.Minute, MaxAttempts: 3})
	if err != nil {
		t.Fatal(err)
	}
	h.db = db
	h.ledger = ledger.New(db, h.clock.Now)
	if h.outbox, err = outbox.NewSealed(db, h.clock.Now, secret); err != nil {
		t.Fatal(err)
	}
	h.queue = &countingQueue{Outbox: h.outbox}
	h.engine, err = payswitch.New(payswitch.Config{Currency: "KES", Shortcode: "22333", CountryCode: "254",
		MinAmount: 100, MaxAmount: 15000000, DailyMax: 30000000, VoiceNumber: ivrNumber},
		payswitch.Deps{DB: db, Ledger: h.ledger, OTP: iss, Outbox: h.outbox, Now: h.clock.Now, Log: zerolog.Nop()})
	if err != nil {
		t.Fatal(err)
	}
	cfg := Config{Number: ivrNumber}
	if o.gateway {
		h.gateway = newGateway(t)
		cfg.GatewayURL, cfg.GatewayToken = h.gateway.srv.URL+"/calls", token
	}
	if o.cfg != nil {
		o.cfg(&cfg)
	}
	if h.svc, err = New(cfg, h.engine, h.queue, h.clock.Now, zerolog.Nop(), nil); err != nil {
		t.Fatal(err)
	}
	if c := h.svc.Caller(); c != nil {
		c.poll = 5 * time.Millisecond
		c.backoff = func(int) time.Duration { return 0 }
	}
	h.srv = httptest.NewServer(h.svc.Handler())
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

func (h *harness) wallet(msisdn string, balance int64) ledger.Account {
	h.t.Helper()
	ctx := context.Background()
	a, err := h.engine.OpenAccount(ctx, payswitch.OpenAccount{Type: ledger.Wallet, Name: "W" + msisdn[len(msisdn)-3:], MSISDN: msisdn})
	if err != nil {
		h.t.Fatal(err)
	}
	if balance > 0 {
		if _, err := h.engine.Deposit(ctx, payswitch.Deposit{Account: a.ID, Amount: balance, Reference: "seed-" + msisdn}); err != nil {
			h.t.Fatal(err)
		}
	}
	return a
}

func (h *harness) merchant(code, name, msisdn string) ledger.Account {
	h.t.Helper()
	a, err := h.engine.OpenAccount(context.Background(), payswitch.OpenAccount{Type: ledger.Merchant, Name: name, Code: code, MSISDN: msisdn})
	if err != nil {
		h.t.Fatal(err)
	}
	return a
}

func (h *harness) balance(id string) ledger.Balance {
	h.t.Helper()
	a, err := h.ledger.Account(context.Background(), id)
	if err != nil {
		h.t.Fatal(err)
	}
	return a.Balance
}

// payments are msisdn's payments, newest first.
func (h *harness) payments(msisdn string) []*payswitch.Payment {
	h.t.Helper()
	ps, err := h.engine.Payments(context.Background(), msisdn, 100)
	if err != nil {
		h.t.Fatal(err)
	}
	return ps
}

// lastPayment is msisdn's newest payment that is not a deposit.
func (h *harness) lastPayment(msisdn string) *payswitch.Payment {
	h.t.Helper()
	for _, p := range h.payments(msisdn) {
		if p.Type != payswitch.DepositPayment {
			return p
		}
	}
	h.t.Fatalf("%s has made no payment", msisdn)
	return nil
}

func (h *harness) payment(id string) *payswitch.Payment {
	h.t.Helper()
	p, err := h.engine.Payment(context.Background(), id)
	if err != nil {
		h.t.Fatal(err)
	}
	return p
}

var codeRun = regexp.MustCompile(`(^|[^0-9])([0-9]{6})([^0-9]|$)`)

// code reads the newest one-time code sent to msisdn by SMS.
func (h *harness) code(msisdn string) string {
	h.t.Helper()
	ms, err := h.outbox.List(context.Background(), msisdn, 50)
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
	ms, err := h.outbox.List(context.Background(), msisdn, 100)
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
	err := h.db.Write(context.Background(), func(tx store.Tx) error {
		var err error
		id, err = h.outbox.Enqueue(context.Background(), tx, outbox.Message{Kind: outbox.KindCall, To: to,
			From: ivrNumber, PaymentID: paymentID, Purpose: purpose, CreatedAt: h.clock.Now()})
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
	return c.h.post(f)
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
