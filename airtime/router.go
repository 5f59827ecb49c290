package airtime

import (
	"fmt"
	"net"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
)

// CarrierConfig is one carrier's airtime API, as in the airtime.carriers section of
// config.yaml.
type CarrierConfig struct {
	Name     string
	Prefixes []string // MSISDN prefixes of the carrier's subscribers; none: every other number
	URL      string   // http(s) endpoint for top-ups; empty: the carrier sells no airtime
	Token    string   // bearer token; empty: no Authorization header
	Timeout  time.Duration
}

// Router finds the carrier that sells airtime for a number. It is safe for concurrent use.
type Router struct {
	byName map[string]*Carrier
	routes []route // longest prefix first
	def    *route  // the carrier configured without prefixes, if any
}

// route maps a prefix to its carrier; carrier is nil when that carrier sells no airtime.
type route struct {
	prefix  string
	name    string
	carrier *Carrier
}

// NewRouter builds the carriers from cfgs. A nil client gets a default with bounded
// connection pools and dial and TLS timeouts; either way redirects are not followed (a
// redirected POST may turn into a GET). reg may be nil (no metrics are registered).
//
// A carrier with an empty URL sells no airtime: Get does not find it and For reports no
// carrier for its numbers, rather than sending them to the default carrier, which could
// not credit another carrier's subscriber. Two carriers may not claim the same prefix,
// nor two be the default.
func NewRouter(cfgs []CarrierConfig, client *http.Client, log zerolog.Logger, reg prometheus.Registerer) (*Router, error) {
	m, err := newMetrics(reg)
	if err != nil {
		return nil, err
	}
	if client == nil {
		client = defaultClient()
	}
	cl := *client // a copy, so that the caller's client keeps its own redirect policy
	cl.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }

	rt := &Router{byName: map[string]*Carrier{}}
	names := map[string]bool{}
	claimed := map[string]string{} // prefix -> carrier name
	for i, cfg := range cfgs {
		if cfg.Name == "" {
			return nil, fmt.Errorf("%w: carrier %d has no name", ErrBadConfig, i)
		}
		if names[cfg.Name] {
			return nil, fmt.Errorf("%w: carrier %q is configured twice", ErrBadConfig, cfg.Name)
		}
		names[cfg.Name] = true
		var c *Carrier
		if cfg.URL != "" {
			if c, err = newCarrier(cfg, &cl, log, m); err != nil {
				return nil, err
			}
			rt.byName[cfg.Name] = c
		}
		if len(cfg.Prefixes) == 0 {
			if rt.def != nil {
				return nil, fmt.Errorf("%w: carriers %q and %q both have no prefixes (only one may be the default)",
					ErrBadConfig, rt.def.name, cfg.Name)
			}
			rt.def = &route{name: cfg.Name, carrier: c}
		}
		for _, p := range cfg.Prefixes {
			if p == "" || strings.ContainsFunc(p, notDigit) {
				return nil, fmt.Errorf("%w: carrier %q: prefix %q: digits only", ErrBadConfig, cfg.Name, p)
			}
			if other, dup := claimed[p]; dup {
				return nil, fmt.Errorf("%w: carriers %q and %q both claim prefix %s", ErrBadConfig, other, cfg.Name, p)
			}
			claimed[p] = cfg.Name
			rt.routes = append(rt.routes, route{prefix: p, name: cfg.Name, carrier: c})
		}
	}
	sort.SliceStable(rt.routes, func(i, j int) bool { return len(rt.routes[i].prefix) > len(rt.routes[j].prefix) })
	return rt, nil
}

func newCarrier(cfg CarrierConfig, client *http.Client, log zerolog.Logger, m *metrics) (*Carrier, error) {
	u, err := url.Parse(cfg.URL)
	if err != nil || u.Scheme != "http" && u.Scheme != "https" || u.Host == "" {
		// The URL is not quoted back: it may carry credentials.
		return nil, fmt.Errorf("%w: carrier %q: url must be an absolute http:// or https:// URL", ErrBadConfig, cfg.Name)
	}
	if u.Fragment != "" {
		return nil, fmt.Errorf("%w: carrier %q: url must not have a fragment", ErrBadConfig, cfg.Name)
	}
	timeout := cfg.Timeout
	switch {
	case timeout < 0:
		return nil, fmt.Errorf("%w: carrier %q: timeout %s: must not be negative", ErrBadConfig, cfg.Name, timeout)
	case timeout == 0:
		timeout = DefaultTimeout
	}
	c := &Carrier{
		name: cfg.Name, url: u, token: cfg.Token, timeout: timeout, client: client,
		log: log.With().Str("component", "airtime").Str("carrier", cfg.Name).Logger(),
		m:   m, tries: defaultTries, backoff: defaultBackoff,
	}
	gauge := m.circuitOpen.WithLabelValues(cfg.Name)
	gauge.Set(0)
	c.br = &breaker{now: time.Now, threshold: breakerThreshold, cooldown: breakerCooldown,
		onChange: func(open bool) {
			if open {
				gauge.Set(1)
				c.log.Error().Dur("for", breakerCooldown).Msg("carrier not answering: circuit open, top-ups wait")
				return
			}
			gauge.Set(0)
			c.log.Info().Msg("carrier answering again: circuit closed")
		}}
	return c, nil
}

// defaultClient is an HTTP client for a handful of carrier APIs: small pools, bounded
// dial and TLS handshakes. The whole exchange is bounded by each carrier's timeout.
func defaultClient() *http.Client {
	return &http.Client{Transport: &http.Transport{
		Proxy:                  http.ProxyFromEnvironment,
		DialContext:            (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		ForceAttemptHTTP2:      true,
		MaxIdleConns:           64,
		MaxIdleConnsPerHost:    16,
		MaxConnsPerHost:        64,
		IdleConnTimeout:        90 * time.Second,
		TLSHandshakeTimeout:    5 * time.Second,
		ExpectContinueTimeout:  time.Second,
		MaxResponseHeaderBytes: 64 << 10,
	}}
}

// For is the carrier that sells airtime for msisdn: the one with the longest prefix that
// matches, else the default carrier. It reports false when there is none, or when the
// number's carrier sells no airtime.
func (r *Router) For(msisdn string) (*Carrier, bool) {
	msisdn = strings.TrimPrefix(msisdn, "+")
	for _, rt := range r.routes {
		if strings.HasPrefix(msisdn, rt.prefix) {
			return rt.carrier, rt.carrier != nil
		}
	}
	if r.def == nil || msisdn == "" {
		return nil, false
	}
	return r.def.carrier, r.def.carrier != nil
}

// Get is the carrier named name, if it sells airtime.
func (r *Router) Get(name string) (*Carrier, bool) {
	c, ok := r.byName[name]
	return c, ok
}
