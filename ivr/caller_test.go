package ivr

import (
	"context"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/payswitch/payswitch/outbox"
)

// The gateway is down (500s), then up: the call is retried with the same idempotency
// key, nothing is lost, and it is marked sent once.
func TestCallerRetriesUntilGatewayUp(t *testing.T) {
	h := newHarness(t, options{gateway: true})
	h.gateway.setAnswer(func(n int, w http.ResponseWriter, r *http.Request) {
		if n <= 3 {
			http.Error(w, "upstream trunk down", http.StatusInternalServerError)
			return
		}
		w.Write([]byte(`{"id": "call-4"}`))
	})
	id := h.enqueueCall(mama, PurposeMerchantNotice, "K7PQ2RSTUV")
	h.run()
	m := h.sent(id)
	if m.Attempts != 4 || !slices.Equal(m.MessageIDs, []string{"call-4"}) {
		t.Errorf("sent after %d attempts with ids %v, want 4 and [call-4]", m.Attempts, m.MessageIDs)
	}
	reqs := h.gateway.requests()
	if len(reqs) != 4 {
		t.Fatalf("%d gateway requests, want 4", len(reqs))
	}
	for _, r := range reqs {
		if r.IdempotencyKey != reqs[0].IdempotencyKey || r.Body != reqs[0].Body {
			t.Errorf("retry differs from the first request: %+v vs %+v", r, reqs[0])
		}
	}
	if got := h.queue.retry.Load(); got != 3 {
		t.Errorf("Retry %d times, want 3", got)
	}
	if got := h.queue.markSent.Load(); got != 1 {
		t.Errorf("MarkSent %d times, want 1", got)
	}
	if got := h.queue.fail.Load(); got != 0 {
		t.Errorf("Fail %d times, want 0", got)
	}
}

func TestCallerOutcomes(t *testing.T) {
	tests := []struct {
		name     string
		answer   func(w http.ResponseWriter, r *http.Request)
		attempts int    // when the call fails for good
		lastErr  string // in the message's last error
	}{
		{"bad request fails at once", func(w http.ResponseWriter, r *http.Request) {
			http.Error(w, `{"error": "invalid phone number"}`, http.StatusBadRequest)
		}, 1, "400"},
		{"unauthorized fails at once", func(w http.ResponseWriter, r *http.Request) {
			http.Error(w, "bad token", http.StatusUnauthorized)
		}, 1, "401"},
		{"5xx gives up after max attempts", func(w http.ResponseWriter, r *http.Request) {
			http.Error(w, "busy", http.StatusServiceUnavailable)
		}, 3, "503"},
		{"429 is retried", func(w http.ResponseWriter, r *http.Request) {
			http.Error(w, "slow down", http.StatusTooManyRequests)
		}, 3, "429"},
		{"timeout is retried", func(w http.ResponseWriter, r *http.Request) {
			<-r.Context().Done() // never answers
		}, 3, "Timeout"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, options{gateway: true, cfg: func(c *Config) {
				c.MaxAttempts = 3
				c.CallTimeout = 50 * time.Millisecond
			}})
			h.gateway.setAnswer(func(n int, w http.ResponseWriter, r *http.Request) { tt.answer(w, r) })
			id := h.enqueueCall(mama, PurposeMerchantNotice, "K7PQ2RSTUV")
			h.run()
			var m outbox.Message
			eventually(t, "the call to fail", func() bool {
				m, _ = h.Outbox.Get(context.Background(), id)
				return m.State == outbox.StateFailed
			})
			if m.Attempts != tt.attempts || !strings.Contains(m.LastError, tt.lastErr) {
				t.Errorf("failed after %d attempts with %q, want %d attempts and %q", m.Attempts, m.LastError, tt.attempts, tt.lastErr)
			}
			if strings.Contains(m.LastError, token) {
				t.Errorf("the last error shows the token: %q", m.LastError)
			}
			if got := h.queue.markSent.Load(); got != 0 {
				t.Errorf("MarkSent %d times", got)
			}
		})
	}
}

// A gateway whose port refuses connections is retried, not failed at once.
func TestCallerConnectionRefused(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	h := newHarness(t, options{cfg: func(c *Config) {
		c.GatewayURL = "http://" + addr + "/calls"
		c.MaxAttempts = 3
	}})
	h.svc.Caller().poll = 5 * time.Millisecond
	h.svc.Caller().backoff = func(int) time.Duration { return 0 }
	id := h.enqueueCall(mama, PurposeMerchantNotice, "K7PQ2RSTUV")
	h.run()
	var m outbox.Message
	eventually(t, "the call to fail", func() bool {
		m, _ = h.Outbox.Get(context.Background(), id)
		return m.State == outbox.StateFailed
	})
	if m.Attempts != 3 || !strings.Contains(m.LastError, "refused") {
		t.Errorf("failed after %d attempts with %q, want 3 attempts, connection refused", m.Attempts, m.LastError)
	}
	if got := h.queue.retry.Load(); got != 2 {
		t.Errorf("Retry %d times, want 2", got)
	}
}

// Concurrency bounds the requests in flight; every call still goes out once.
func TestCallerConcurrency(t *testing.T) {
	h := newHarness(t, options{gateway: true, cfg: func(c *Config) { c.Concurrency = 2 }})
	release := make(chan struct{})
	var (
		mu             sync.Mutex // guards inflight and peak
		inflight, peak int
	)
	h.gateway.setAnswer(func(n int, w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		inflight++
		peak = max(peak, inflight)
		mu.Unlock()
		<-release
		mu.Lock()
		inflight--
		mu.Unlock()
		w.WriteHeader(http.StatusOK)
	})
	var ids []int64
	for range 6 {
		ids = append(ids, h.enqueueCall(mama, PurposeMerchantNotice, "K7PQ2RSTUV"))
	}
	h.run()
	eventually(t, "two requests in flight", func() bool { mu.Lock(); defer mu.Unlock(); return inflight == 2 })
	close(release)
	for _, id := range ids {
		h.sent(id)
	}
	mu.Lock()
	defer mu.Unlock()
	if peak > 2 {
		t.Errorf("%d requests in flight at once, want at most 2", peak)
	}
	if got := len(h.gateway.requests()); got != 6 {
		t.Errorf("%d requests for 6 calls", got)
	}
}

// Shutting down mid-request hands the call back, due at once.
func TestCallerShutdownRequeues(t *testing.T) {
	h := newHarness(t, options{gateway: true})
	h.gateway.setAnswer(func(n int, w http.ResponseWriter, r *http.Request) { <-r.Context().Done() })
	id := h.enqueueCall(mama, PurposeMerchantNotice, "K7PQ2RSTUV")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { h.svc.Caller().Run(ctx); close(done) }()
	<-h.gateway.got
	cancel()
	<-done
	m, err := h.Outbox.Get(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	if m.State != outbox.StateQueued || m.NextAttemptAt.After(h.Clock.Now()) {
		t.Errorf("after shutdown: %s due %v, want queued and due", m.State, m.NextAttemptAt)
	}
}

func TestCallID(t *testing.T) {
	tests := []struct{ name, body, want string }{
		{"sessionId", `{"sessionId": "ATVId_1"}`, "ATVId_1"},
		{"id", `{"id": "call-9"}`, "call-9"},
		{"numeric id", `{"id": 12345}`, "12345"},
		{"snake case", `{"call_id": "c1"}`, "c1"},
		{"sessionId wins over id", `{"id": "x", "sessionId": "s"}`, "s"},
		{"inside data", `{"data": {"callId": "d1"}}`, "d1"},
		{"Africa's Talking entries", `{"entries": [{"phoneNumber": "+254700000900", "status": "Queued", "sessionId": "ATVId_e"}], "errorMessage": "None"}`, "ATVId_e"},
		{"empty", ``, ""},
		{"not JSON", `queued`, ""},
		{"blank id", `{"id": "  "}`, ""},
		{"too long", `{"id": "` + strings.Repeat("x", 200) + `"}`, ""},
		{"array", `[1, 2]`, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := callID([]byte(tt.body)); got != tt.want {
				t.Errorf("callID(%s) = %q, want %q", tt.body, got, tt.want)
			}
		})
	}
}

func TestNewCallerRefusesBadURL(t *testing.T) {
	for _, u := range []string{"", "ftp://x/y", "http://", "::"} {
		if _, err := NewCaller(CallerConfig{URL: u}, nil, nil, zerolog.Nop()); err == nil {
			t.Errorf("NewCaller(%q) accepted", u)
		}
	}
}
