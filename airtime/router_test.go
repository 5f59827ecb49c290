package airtime

import (
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
)

func TestRouterFor(t *testing.T) {
	rt, err := NewRouter([]CarrierConfig{
		{Name: "safari", Prefixes: []string{"2547", "25411"}, URL: "http://127.0.0.1:1/a"},
		{Name: "zain", Prefixes: []string{"25473", "25478"}, URL: "http://127.0.0.1:1/b"},
		{Name: "tele", Prefixes: []string{"25477"}}, // sells no airtime
		{Name: "any", URL: "http://127.0.0.1:1/c"},  // the default
	}, nil, zerolog.Nop(), nil)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		msisdn string
		want   string // "" for none
	}{
		{"short prefix", "254700000001", "safari"},
		{"longest prefix wins", "254730000001", "zain"},
		{"second prefix", "254110000001", "safari"},
		{"leading plus", "+254780000001", "zain"},
		{"default", "256700000001", "any"},
		{"carrier without airtime", "254770000001", ""},
		{"empty", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, ok := rt.For(tt.msisdn)
			switch {
			case tt.want == "" && ok:
				t.Fatalf("For(%q) = %s, want none", tt.msisdn, c.Name())
			case tt.want != "" && (!ok || c.Name() != tt.want):
				t.Fatalf("For(%q) = %v, %v, want %s", tt.msisdn, c, ok, tt.want)
			}
		})
	}
}

func TestRouterNoDefault(t *testing.T) {
	rt, err := NewRouter([]CarrierConfig{{Name: "a", Prefixes: []string{"2547"}, URL: "https://a.example/topup"}},
		nil, zerolog.Nop(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if c, ok := rt.For("256700000001"); ok {
		t.Fatalf("For found %s for a number no carrier serves", c.Name())
	}
	empty, err := NewRouter(nil, nil, zerolog.Nop(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := empty.For("254700000001"); ok {
		t.Fatal("a router without carriers found one")
	}
}

func TestRouterGet(t *testing.T) {
	rt, err := NewRouter([]CarrierConfig{
		{Name: "a", Prefixes: []string{"2547"}, URL: "https://a.example/topup", Timeout: 3 * time.Second},
		{Name: "b", Prefixes: []string{"2541"}, URL: "https://b.example/topup"},
		{Name: "off", Prefixes: []string{"2542"}},
	}, nil, zerolog.Nop(), nil)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name        string
		wantOK      bool
		wantTimeout time.Duration
	}{
		{"a", true, 3 * time.Second},
		{"b", true, DefaultTimeout},
		{"off", false, 0},
		{"nobody", false, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, ok := rt.Get(tt.name)
			if ok != tt.wantOK {
				t.Fatalf("Get(%q) ok = %v, want %v", tt.name, ok, tt.wantOK)
			}
			if ok && (c.Name() != tt.name || c.timeout != tt.wantTimeout) {
				t.Fatalf("Get(%q) = %s with timeout %s, want timeout %s", tt.name, c.Name(), c.timeout, tt.wantTimeout)
			}
		})
	}
}

func TestNewRouterRejectsBadConfig(t *testing.T) {
	ok := CarrierConfig{Name: "a", Prefixes: []string{"2547"}, URL: "https://a.example/topup"}
	tests := []struct {
		name string
		cfgs []CarrierConfig
		want string
	}{
		{"no name", []CarrierConfig{{URL: "https://x.example"}}, "no name"},
		{"same name twice", []CarrierConfig{ok, {Name: "a", Prefixes: []string{"2541"}}}, "configured twice"},
		{"prefix claimed twice", []CarrierConfig{ok, {Name: "b", Prefixes: []string{"2547"}}}, "both claim prefix 2547"},
		{"two defaults", []CarrierConfig{{Name: "a"}, {Name: "b"}}, "only one may be the default"},
		{"prefix not digits", []CarrierConfig{{Name: "a", Prefixes: []string{"+254"}}}, "digits only"},
		{"relative url", []CarrierConfig{{Name: "a", URL: "carrier.example/topup"}}, "absolute http"},
		{"ftp url", []CarrierConfig{{Name: "a", URL: "ftp://carrier.example/topup"}}, "absolute http"},
		{"url with fragment", []CarrierConfig{{Name: "a", URL: "https://carrier.example/topup#x"}}, "fragment"},
		{"negative timeout", []CarrierConfig{{Name: "a", URL: "https://c.example", Timeout: -time.Second}}, "negative"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := NewRouter(tt.cfgs, nil, zerolog.Nop(), nil)
			if !errors.Is(err, ErrBadConfig) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("NewRouter = %v, want ErrBadConfig about %q", err, tt.want)
			}
		})
	}
}

func TestNewRouterURLNotEchoed(t *testing.T) {
	_, err := NewRouter([]CarrierConfig{{Name: "a", URL: "carrier.example/topup?key=SECRETKEY"}}, nil, zerolog.Nop(), nil)
	if err == nil || strings.Contains(err.Error(), "SECRETKEY") {
		t.Fatalf("NewRouter = %v, want an error that does not quote the URL", err)
	}
}

func TestNewRouterLeavesCallersClient(t *testing.T) {
	client := &http.Client{}
	if _, err := NewRouter([]CarrierConfig{{Name: "a", URL: "https://a.example"}}, client, zerolog.Nop(), nil); err != nil {
		t.Fatal(err)
	}
	if client.CheckRedirect != nil {
		t.Fatal("NewRouter changed the caller's client")
	}
}

func TestMetricsRegistered(t *testing.T) {
	reg := prometheus.NewRegistry()
	cfgs := []CarrierConfig{{Name: "a", URL: "https://a.example"}}
	if _, err := NewRouter(cfgs, nil, zerolog.Nop(), reg); err != nil {
		t.Fatal(err)
	}
	// A second router on the same registry (a restart in tests) shares the collectors.
	rt, err := NewRouter(cfgs, nil, zerolog.Nop(), reg)
	if err != nil {
		t.Fatalf("second NewRouter on one registry: %v", err)
	}
	c, _ := rt.Get("a")
	c.m.requests.WithLabelValues("a", "success").Inc()
	c.m.duration.WithLabelValues("a").Observe(0.1)

	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, mf := range mfs {
		var labels []string
		for _, l := range mf.GetMetric()[0].GetLabel() {
			labels = append(labels, l.GetName())
		}
		got[mf.GetName()] = strings.Join(labels, ",")
	}
	want := map[string]string{
		"payswitch_airtime_requests_total":           "carrier,outcome",
		"payswitch_airtime_request_duration_seconds": "carrier",
		"payswitch_airtime_circuit_open":             "carrier",
	}
	for name, labels := range want {
		if got[name] != labels {
			t.Fatalf("metric %s has labels %q, want %q (gathered %v)", name, got[name], labels, got)
		}
	}
}
