package ussd

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/payswitch/payswitch/api"
)

// TestMountedOnTheAPIServer serves the callback as serve does: on the operator API's
// server, without a bearer token.
func TestMountedOnTheAPIServer(t *testing.T) {
	h := newHarness(t, nil)
	h.Wallet(alice, 0)
	reg := prometheus.NewRegistry()
	srv, err := api.New(h.Engine, api.Config{Gatherer: reg, Log: zerolog.Nop()})
	if err != nil {
		t.Fatal(err)
	}
	srv.Handle("POST /ussd", h.menu.Handler())
	ts := httptest.NewServer(srv)
	defer ts.Close()

	resp, err := http.PostForm(ts.URL+"/ussd", url.Values{"sessionId": {"s1"}, "phoneNumber": {alice}, "text": {""}})
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(body) != mainScreen {
		t.Fatalf("%d %q", resp.StatusCode, body)
	}
	resp, err = http.Get(ts.URL + "/ussd")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Fatalf("GET /ussd: %d", resp.StatusCode)
	}
}

func TestMetrics(t *testing.T) {
	h := newHarness(t, nil)
	h.Wallet(alice, 0)
	reg := prometheus.NewRegistry()
	m, err := New(h.Engine, Config{Now: h.Clock.Now, Registry: reg})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	m.Step(ctx, Input{SessionID: "a", Phone: alice})
	m.Step(ctx, Input{SessionID: "a", Phone: alice, Text: "4"})
	m.Step(ctx, Input{SessionID: "b", Phone: alice, Text: "4"})
	m.Step(ctx, Input{SessionID: "c"})
	got := map[string]float64{}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			name := mf.GetName()
			for _, l := range m.GetLabel() {
				name += "/" + l.GetValue()
			}
			got[name] = m.GetCounter().GetValue() + m.GetGauge().GetValue()
		}
	}
	want := map[string]float64{
		"payswitch_ussd_sessions":                    1,
		"payswitch_ussd_sessions_evicted_total":      0,
		"payswitch_ussd_push_sessions":               0,
		"payswitch_ussd_push_sessions_evicted_total": 0,
		"payswitch_ussd_steps_total/bad_request":     1,
		"payswitch_ussd_steps_total/continue":        2,
		"payswitch_ussd_steps_total/expired":         1,
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("metrics %v, want %v", got, want)
	}
}

func TestRunStopsWithItsContext(t *testing.T) {
	h := newHarness(t, nil)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- h.menu.Run(ctx) }()
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after its context ended")
	}
}

func TestNewChecksItsConfig(t *testing.T) {
	h := newHarness(t, nil)
	if _, err := New(nil, Config{}); err == nil {
		t.Fatal("New without an engine")
	}
	if _, err := New(h.Engine, Config{SessionTimeout: -time.Second}); err == nil || !strings.Contains(err.Error(), "session timeout") {
		t.Fatalf("negative timeout: %v", err)
	}
	reg := prometheus.NewRegistry()
	if _, err := New(h.Engine, Config{Registry: reg}); err != nil {
		t.Fatal(err)
	}
	if _, err := New(h.Engine, Config{Registry: reg}); err == nil {
		t.Fatal("registering the metrics twice went unnoticed")
	}
}
