package callback

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/rs/zerolog"

	payswitch "github.com/payswitch/payswitch/switch"
)

const secret = "s3cret-of-the-gateway"

// seen is what the guarded handler got, if it was called.
type seen struct {
	called      bool
	origin      string
	query       string
	requestURI  string
	headerKey   string
	otherHeader string
}

func guarded(t *testing.T, cfg Config) (http.Handler, *seen) {
	t.Helper()
	g, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	s := &seen{}
	return g.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		*s = seen{called: true, origin: payswitch.OriginOf(r.Context()), query: r.URL.RawQuery,
			requestURI: r.RequestURI, headerKey: r.Header.Get(KeyHeader), otherHeader: r.Header.Get("X-Other")}
		w.Write([]byte("CON menu"))
	})), s
}

func TestGuard(t *testing.T) {
	withSecret := Config{Channel: "ussd", Allow: []string{"10.0.0.0/8", "::1/128"}, Secret: secret, Log: zerolog.Nop()}
	noSecret := Config{Channel: "ivr", Allow: []string{"127.0.0.0/8", "::1/128"}, Log: zerolog.Nop()}
	for _, tc := range []struct {
		name    string
		cfg     Config
		remote  string
		target  string
		headers map[string]string
		status  int
		origin  string // for admitted requests
		query   string // what the handler sees of the query
	}{
		{"key in header", withSecret, "10.1.2.3:4000", "/ussd", map[string]string{KeyHeader: secret}, 200, "ussd:10.1.2.3", ""},
		{"key in query, other parameters kept", withSecret, "10.1.2.3:4000", "/ussd?a=1&key=" + secret + "&b=2", nil, 200, "ussd:10.1.2.3", "a=1&b=2"},
		{"key in a query with a malformed pair", withSecret, "10.1.2.3:4000", "/ussd?x=1;y=2&key=" + secret, nil, 200, "ussd:10.1.2.3", ""},
		{"empty header, key in query", withSecret, "10.1.2.3:4000", "/ussd?key=" + secret, map[string]string{KeyHeader: ""}, 200, "ussd:10.1.2.3", ""},
		{"IPv4 through a dual-stack listener", withSecret, "[::ffff:10.9.9.9]:4000", "/ussd", map[string]string{KeyHeader: secret}, 200, "ussd:10.9.9.9", ""},
		{"IPv6 loopback", withSecret, "[::1]:4000", "/ussd", map[string]string{KeyHeader: secret}, 200, "ussd:::1", ""},
		{"no secret configured, none needed", noSecret, "127.0.0.1:5000", "/ivr", nil, 200, "ivr:127.0.0.1", ""},
		{"another network", withSecret, "192.168.1.1:4000", "/ussd", map[string]string{KeyHeader: secret}, 403, "", ""},
		{"X-Forwarded-For is not believed", withSecret, "192.168.1.1:4000", "/ussd",
			map[string]string{KeyHeader: secret, "X-Forwarded-For": "10.0.0.1", "X-Real-IP": "10.0.0.1"}, 403, "", ""},
		{"loopback not in allow", withSecret, "127.0.0.1:4000", "/ussd", map[string]string{KeyHeader: secret}, 403, "", ""},
		{"public address, no secret configured", noSecret, "203.0.113.5:4000", "/ivr", nil, 403, "", ""},
		{"key missing", withSecret, "10.1.2.3:4000", "/ussd", nil, 403, "", ""},
		{"key wrong", withSecret, "10.1.2.3:4000", "/ussd", map[string]string{KeyHeader: "s3cret-of-the-gatewaX"}, 403, "", ""},
		{"key a prefix of the secret", withSecret, "10.1.2.3:4000", "/ussd?key=s3cret", nil, 403, "", ""},
		{"key longer than the secret", withSecret, "10.1.2.3:4000", "/ussd", map[string]string{KeyHeader: secret + "x"}, 403, "", ""},
		{"wrong header beats a right query", withSecret, "10.1.2.3:4000", "/ussd?key=" + secret, map[string]string{KeyHeader: "nope"}, 403, "", ""},
		{"key in the wrong parameter", withSecret, "10.1.2.3:4000", "/ussd?secret=" + secret, nil, 403, "", ""},
		{"cross-site Origin", noSecret, "127.0.0.1:5000", "/ivr", map[string]string{"Origin": "https://evil.example"}, 403, "", ""},
		{"opaque Origin", noSecret, "127.0.0.1:5000", "/ivr", map[string]string{"Origin": "null"}, 403, "", ""},
		{"Origin even with the key", withSecret, "10.1.2.3:4000", "/ussd", map[string]string{KeyHeader: secret, "Origin": "https://evil.example"}, 403, "", ""},
		{"Sec-Fetch-Site cross-site", noSecret, "127.0.0.1:5000", "/ivr", map[string]string{"Sec-Fetch-Site": "cross-site"}, 403, "", ""},
		{"Sec-Fetch-Site same-origin", noSecret, "127.0.0.1:5000", "/ivr", map[string]string{"Sec-Fetch-Site": "same-origin"}, 403, "", ""},
		{"Sec-Fetch-Mode alone", noSecret, "127.0.0.1:5000", "/ivr", map[string]string{"Sec-Fetch-Mode": "navigate"}, 403, "", ""},
		{"not an address", noSecret, "pipe", "/ivr", nil, 403, "", ""},
		{"empty allow admits nobody", Config{Channel: "ussd", Log: zerolog.Nop()}, "127.0.0.1:5000", "/ussd", nil, 403, "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h, s := guarded(t, tc.cfg)
			req := httptest.NewRequest("POST", tc.target, strings.NewReader("sessionId=S1&phoneNumber=254700000001&text=4*1"))
			req.RemoteAddr = tc.remote
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			req.Header.Set("X-Other", "kept")
			for k, v := range tc.headers {
				req.Header.Set(k, v)
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code != tc.status {
				t.Fatalf("status %d, want %d (body %q)", rec.Code, tc.status, rec.Body)
			}
			if tc.status != 200 {
				if s.called {
					t.Fatal("a refused request reached the channel")
				}
				if body := rec.Body.String(); body != "forbidden\n" {
					t.Fatalf("refusal body %q", body)
				}
				return
			}
			if !s.called || s.origin != tc.origin {
				t.Fatalf("handler called %v with origin %q, want %q", s.called, s.origin, tc.origin)
			}
			if s.query != tc.query || strings.Contains(s.requestURI, secret) || s.headerKey != "" || s.otherHeader != "kept" {
				t.Fatalf("the handler saw query %q, URI %q, key header %q, other header %q", s.query, s.requestURI, s.headerKey, s.otherHeader)
			}
		})
	}
}

func TestNewRefusesABadNetwork(t *testing.T) {
	if _, err := New(Config{Channel: "ussd", Allow: []string{"10.0.0.0/8", "10.0.0.1"}}); err == nil || !strings.Contains(err.Error(), `"10.0.0.1"`) {
		t.Fatalf("New with a bare address: %v", err)
	}
	if _, err := New(Config{Allow: []string{"10.0.0.0/8"}}); err == nil {
		t.Fatal("New without a channel")
	}
}

// Refusals are logged with their source and reason, never the key presented, at most
// once per reason per interval, and each is counted.
func TestRefusalsLoggedThrottledAndCounted(t *testing.T) {
	var buf bytes.Buffer
	now := time.Date(2026, 12, 6, 9, 0, 0, 0, time.UTC)
	reg := prometheus.NewRegistry()
	g, err := New(Config{Channel: "ussd", Allow: []string{"10.0.0.0/8"}, Secret: secret,
		Log: zerolog.New(&buf), Registry: reg, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	h := g.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { t.Fatal("admitted") }))
	post := func(remote, key string) {
		req := httptest.NewRequest("POST", "/ussd?key="+key, nil)
		req.RemoteAddr = remote
		req.Header.Set(KeyHeader, key)
		h.ServeHTTP(httptest.NewRecorder(), req)
	}
	const guess = "guessed-key-0123456789"
	for range 5 {
		post("10.1.2.3:4000", guess)
	}
	post("192.0.2.9:4000", secret) // the right key, from elsewhere: another reason
	if n := strings.Count(buf.String(), "\n"); n != 2 {
		t.Fatalf("%d lines logged, want one per reason:\n%s", n, buf.String())
	}
	now = now.Add(logInterval)
	post("10.7.7.7:4000", guess)
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 3 {
		t.Fatalf("after the interval: %q", lines)
	}
	for _, want := range []string{`"level":"warn"`, `"source":"10.7.7.7"`, `"reason":"key"`, `"suppressed":4`, `"channel":"ussd"`} {
		if !strings.Contains(lines[2], want) {
			t.Fatalf("log line %s lacks %s", lines[2], want)
		}
	}
	if !strings.Contains(lines[1], `"source":"192.0.2.9"`) || !strings.Contains(lines[1], `"reason":"source"`) {
		t.Fatalf("source refusal logged as %s", lines[1])
	}
	if strings.Contains(buf.String(), guess) || strings.Contains(buf.String(), secret) {
		t.Fatalf("a key reached the log:\n%s", buf.String())
	}
	count := func(reason string) float64 {
		var m dto.Metric
		if err := g.refused.WithLabelValues(reason).Write(&m); err != nil {
			t.Fatal(err)
		}
		return m.GetCounter().GetValue()
	}
	if n := count(ReasonKey); n != 6 {
		t.Fatalf("key refusals counted %v, want 6", n)
	}
	if n := count(ReasonSource); n != 1 {
		t.Fatalf("source refusals counted %v, want 1", n)
	}
	// The two channels' counters live side by side in one registry.
	if _, err := New(Config{Channel: "ivr", Allow: []string{"10.0.0.0/8"}, Registry: reg}); err != nil {
		t.Fatalf("a second channel's guard on the same registry: %v", err)
	}
}
