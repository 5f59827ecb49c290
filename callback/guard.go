// Package callback decides who may call a gateway callback (POST /ussd, POST /ivr).
//
// Such a request names a phone number and the switch acts as that number: it reads the
// balance, holds funds, sends codes, takes code attempts. The number is only the
// gateway's word, so the request itself must come from the gateway: from an allowed
// source network, with the shared secret when one is configured, and not from a web
// browser, which any page could make send a simple form POST. A Guard refuses anything
// else with 403 before the channel sees it, so a refused request changes nothing.
package callback

import (
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/payswitch/payswitch/internal/logthrottle"
	payswitch "github.com/payswitch/payswitch/switch"
)

// KeyHeader and KeyParam carry the secret; the header wins when both are present.
const (
	KeyHeader = "X-Payswitch-Key"
	KeyParam  = "key"
)

// Reasons a request is refused, as logged and counted.
const (
	ReasonAddress = "address" // RemoteAddr is not an IP address and port
	ReasonSource  = "source"  // not from an allowed network
	ReasonBrowser = "browser" // carries a browser's Origin or Sec-Fetch-* header
	ReasonKey     = "key"     // the secret is missing or wrong
)

// Config sets up a Guard.
type Config struct {
	// Channel is "ussd" or "ivr": the origin's prefix ("ussd:10.0.0.7"), in logs and
	// in metrics.
	Channel string
	// Allow lists the source networks (CIDRs) requests may come from; none: none may.
	Allow []string
	// Secret, when not empty, must arrive in the KeyHeader header or the KeyParam query
	// parameter.
	Secret   string
	Log      zerolog.Logger
	Registry prometheus.Registerer // where the refusal counter goes; nil: none
	// Now is the clock of the log throttle; nil: time.Now.
	Now func() time.Time
}

// Guard admits only the gateway's requests to a callback.
type Guard struct {
	channel string
	allow   []netip.Prefix
	secret  *[32]byte // SHA-256 of the secret; nil: none asked
	log     zerolog.Logger
	logs    *logthrottle.Throttle
	refused *prometheus.CounterVec
}

// New builds a Guard. config has already checked Allow; an error here names the bad
// entry all the same.
func New(cfg Config) (*Guard, error) {
	if cfg.Channel == "" {
		return nil, errors.New("callback: channel is required")
	}
	g := &Guard{channel: cfg.Channel, log: cfg.Log, logs: logthrottle.New(logInterval, cfg.Now)}
	for _, a := range cfg.Allow {
		p, err := netip.ParsePrefix(a)
		if err != nil {
			return nil, fmt.Errorf("callback: %s allow %q: %w", cfg.Channel, a, err)
		}
		g.allow = append(g.allow, p.Masked())
	}
	if cfg.Secret != "" {
		d := sha256.Sum256([]byte(cfg.Secret))
		g.secret = &d
	}
	g.refused = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name:        "payswitch_callback_refused_total",
		Help:        "Gateway callbacks refused with 403, by reason (source, browser, key, address).",
		ConstLabels: prometheus.Labels{"channel": cfg.Channel},
	}, []string{"reason"})
	if cfg.Registry != nil {
		if err := cfg.Registry.Register(g.refused); err != nil {
			return nil, fmt.Errorf("callback: %s: register metrics: %w", cfg.Channel, err)
		}
	}
	return g, nil
}

// Wrap returns h behind the guard. What reaches h carries the origin
// "<channel>:<source address>" for the engine (payswitch.WithOrigin), and neither the
// secret's header nor its query parameter.
func (g *Guard) Wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ip, reason := g.check(r)
		if reason != "" {
			g.refuse(w, r, ip, reason)
			return
		}
		ctx := payswitch.WithOrigin(r.Context(), g.channel+":"+ip.String())
		h.ServeHTTP(w, withoutKey(r.WithContext(ctx)))
	})
}

// check returns the request's source and why it is refused ("" when it is not).
func (g *Guard) check(r *http.Request) (netip.Addr, string) {
	// The connection's own address: X-Forwarded-For and the like are whatever the
	// sender wrote. Behind a proxy, the proxy is the source and the secret decides.
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		return netip.Addr{}, ReasonAddress
	}
	// An IPv4 client of a dual-stack listener shows as ::ffff:a.b.c.d; the allow list
	// names it as a.b.c.d.
	ip := ap.Addr().Unmap().WithZone("")
	if !g.allowed(ip) {
		return ip, ReasonSource
	}
	if fromBrowser(r.Header) {
		return ip, ReasonBrowser
	}
	if g.secret != nil && !g.keyMatches(r) {
		return ip, ReasonKey
	}
	return ip, ""
}

func (g *Guard) allowed(ip netip.Addr) bool {
	for _, p := range g.allow {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

// fromBrowser reports whether h carries a header that browsers add and pages cannot
// remove: Origin (on every cross-site POST) or any Sec-Fetch-* (fetch metadata). No
// gateway sends them, and from a browser the request may be a page's forgery that
// arrives from an allowed address, the user's own machine or office network.
func fromBrowser(h http.Header) bool {
	if _, ok := h["Origin"]; ok {
		return true
	}
	for k := range h {
		if strings.HasPrefix(k, "Sec-Fetch-") {
			return true
		}
	}
	return false
}

// keyMatches compares the presented key with the secret in constant time: both are
// hashed to 32 bytes first, so that neither the secret's length nor how much of it
// matched shows in the timing.
func (g *Guard) keyMatches(r *http.Request) bool {
	key := r.Header.Get(KeyHeader)
	if key == "" {
		key = r.URL.Query().Get(KeyParam)
	}
	if key == "" {
		return false
	}
	d := sha256.Sum256([]byte(key))
	return subtle.ConstantTimeCompare(d[:], g.secret[:]) == 1
}

// withoutKey drops the secret from r (a shallow copy, whose Header and URL are still
// the original's, so they are replaced rather than edited), so that no handler can log
// or echo it.
func withoutKey(r *http.Request) *http.Request {
	if _, ok := r.Header[KeyHeader]; ok {
		r.Header = r.Header.Clone()
		r.Header.Del(KeyHeader)
	}
	if r.URL.RawQuery == "" {
		return r
	}
	// A malformed pair (a ';', a bad escape) is an error but the rest still parses, as
	// keyMatches read it; the malformed pairs go too rather than keep the key in view.
	q, _ := url.ParseQuery(r.URL.RawQuery)
	if !q.Has(KeyParam) {
		return r
	}
	q.Del(KeyParam)
	u := *r.URL
	u.RawQuery = q.Encode()
	r.URL = &u
	r.RequestURI = u.RequestURI() // it still held the key
	return r
}

// refuse answers 403 without saying which check failed (the log says), and logs the
// refusal, at most once per reason per logInterval.
func (g *Guard) refuse(w http.ResponseWriter, r *http.Request, ip netip.Addr, reason string) {
	g.refused.WithLabelValues(reason).Inc()
	src := r.RemoteAddr
	if ip.IsValid() {
		src = ip.String()
	}
	// Never the presented key, nor the query that may hold it.
	g.logs.Event(reason, g.log.Warn()).Str("channel", g.channel).Str("source", src).Str("reason", reason).
		Str("path", r.URL.Path).Msg("gateway callback refused (403)")
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusForbidden)
	fmt.Fprintln(w, "forbidden")
}

// logInterval is how often one reason of refusal is logged at most.
const logInterval = 10 * time.Second
