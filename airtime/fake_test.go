package airtime

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/rs/zerolog"
)

const testToken = "s3cret-token-never-logged"

// fakeCarrier is a carrier airtime API over real HTTP. By default it behaves as the
// contract says: a POST credits a reference once (repeats answer the first outcome),
// and GET /<reference> tells what became of it. The hooks make it misbehave.
type fakeCarrier struct {
	srv  *httptest.Server
	stop chan struct{} // closed at cleanup: releases hanging handlers

	// postHook and getHook, if set, choose how the nth POST or GET (from 1) is treated.
	postHook func(n int) behaviour
	getHook  func(n int) behaviour

	mu      sync.Mutex        // guards the fields below
	posts   int               // POSTs received
	gets    int               // lookups received
	refuse  map[string]string // msisdn -> reason the carrier refuses it with
	outcome map[string]string // reference -> "success" or the refusal reason
	credits map[string]int    // reference -> times airtime was credited
	auth    []string          // Authorization header of every request
	bodies  []topup           // every POST body
}

// topup is a POST body as the carrier decodes it, strictly.
type topup struct {
	Reference string `json:"reference"`
	MSISDN    string `json:"msisdn"`
	Amount    int64  `json:"amount"`
	Currency  string `json:"currency"`
}

// behaviour is how the fake treats one request. process: do what the contract says
// (credit or refuse, record it); then answer with status and body, or hang (the answer
// is lost, as with a timeout). A zero status with no hang means the contract's answer.
type behaviour struct {
	process bool
	hang    bool
	status  int
	body    string
}

var (
	asContract    = behaviour{process: true}
	creditAndHang = behaviour{process: true, hang: true}
	hangOnly      = behaviour{hang: true}
)

func answer500() behaviour { return behaviour{status: 500, body: "oops"} }

func newFakeCarrier(t testing.TB) *fakeCarrier {
	t.Helper()
	f := &fakeCarrier{stop: make(chan struct{}), refuse: map[string]string{},
		outcome: map[string]string{}, credits: map[string]int{}}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/topup", f.handlePost)
	mux.HandleFunc("GET /v1/topup/{ref}", f.handleGet)
	f.srv = httptest.NewServer(mux)
	t.Cleanup(f.srv.Close)
	t.Cleanup(func() { close(f.stop) }) // runs first: hanging handlers return
	return f
}

// url is the carrier's configured airtime URL.
func (f *fakeCarrier) url() string { return f.srv.URL + "/v1/topup" }

func (f *fakeCarrier) handlePost(w http.ResponseWriter, r *http.Request) {
	var req topup
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	err := dec.Decode(&req)
	f.mu.Lock()
	f.posts++
	n := f.posts
	f.auth = append(f.auth, r.Header.Get("Authorization"))
	f.bodies = append(f.bodies, req)
	f.mu.Unlock()
	if err != nil || r.Header.Get("Content-Type") != "application/json" {
		http.Error(w, `{"status":"failed","reason":"bad json"}`, http.StatusBadRequest)
		return
	}
	b := asContract
	if f.postHook != nil {
		b = f.postHook(n)
	}
	var out string
	if b.process {
		f.mu.Lock()
		out = f.outcome[req.Reference]
		if out == "" { // first time this reference is seen: act on it, once
			out = "success"
			if reason, ok := f.refuse[req.MSISDN]; ok {
				out = reason
			} else {
				f.credits[req.Reference]++
			}
			f.outcome[req.Reference] = out
		}
		f.mu.Unlock()
	}
	f.respond(w, r, b, req.Reference, out)
}

func (f *fakeCarrier) handleGet(w http.ResponseWriter, r *http.Request) {
	ref := r.PathValue("ref")
	f.mu.Lock()
	f.gets++
	n := f.gets
	f.auth = append(f.auth, r.Header.Get("Authorization"))
	out := f.outcome[ref]
	f.mu.Unlock()
	b := asContract
	if f.getHook != nil {
		b = f.getHook(n)
	}
	if b.status == 0 && !b.hang && out == "" {
		http.Error(w, `{"error":"not found"}`, http.StatusNotFound)
		return
	}
	f.respond(w, r, b, ref, out)
}

func (f *fakeCarrier) respond(w http.ResponseWriter, r *http.Request, b behaviour, ref, out string) {
	switch {
	case b.hang:
		select {
		case <-r.Context().Done():
		case <-f.stop:
		}
	case b.status != 0:
		w.WriteHeader(b.status)
		fmt.Fprint(w, b.body)
	case out == "success":
		fmt.Fprintf(w, `{"status":"success","carrier_reference":"CR-%s"}`, ref)
	default:
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]string{"status": "failed", "reason": out})
	}
}

// counts returns the POSTs and lookups received so far.
func (f *fakeCarrier) counts() (posts, gets int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.posts, f.gets
}

// creditsOf is how many times reference was credited.
func (f *fakeCarrier) creditsOf(ref string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.credits[ref]
}

// record makes the carrier act on a reference (as an earlier POST would), once.
func (f *fakeCarrier) record(ref, outcome string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.outcome[ref] != "" {
		return // the carrier acts on a reference once
	}
	f.outcome[ref] = outcome
	if outcome == "success" {
		f.credits[ref]++
	}
}

// testClock is the breaker's clock, moved by hand.
type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *testClock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// logBuffer collects log lines from concurrent goroutines.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// harness is a Carrier under test with what it talks to.
type harness struct {
	c     *Carrier
	clock *testClock
	reg   *prometheus.Registry
	logs  *logBuffer
}

// newHarness builds one carrier "ca" at url through NewRouter, with a fast backoff and
// a hand-moved clock for its breaker.
func newHarness(t testing.TB, url string, timeout time.Duration) *harness {
	t.Helper()
	h := &harness{clock: &testClock{t: time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)},
		reg: prometheus.NewRegistry(), logs: &logBuffer{}}
	log := zerolog.New(h.logs).Level(zerolog.DebugLevel)
	rt, err := NewRouter([]CarrierConfig{{Name: "ca", Prefixes: []string{"2547"}, URL: url,
		Token: testToken, Timeout: timeout}}, nil, log, h.reg)
	if err != nil {
		t.Fatal(err)
	}
	c, ok := rt.Get("ca")
	if !ok {
		t.Fatal("carrier ca not found")
	}
	c.backoff = time.Millisecond
	c.br.now = h.clock.Now
	h.c = c
	return h
}

// req is a valid top-up with the given reference.
func req(ref string) Request {
	return Request{Reference: ref, MSISDN: "254700000001", Amount: 5000, Currency: "KES"}
}

// wantResult fails the test unless got has the outcome and its reason holds reasonPart.
func wantResult(t *testing.T, got Result, outcome Outcome, reasonPart string) {
	t.Helper()
	if got.Outcome != outcome || !strings.Contains(got.Reason, reasonPart) {
		t.Fatalf("got %+v, want outcome %s with a reason containing %q", got, outcome, reasonPart)
	}
}

// value reads a counter or gauge.
func value(t *testing.T, m prometheus.Metric) float64 {
	t.Helper()
	var d dto.Metric
	if err := m.Write(&d); err != nil {
		t.Fatal(err)
	}
	if d.Counter != nil {
		return d.Counter.GetValue()
	}
	return d.Gauge.GetValue()
}
