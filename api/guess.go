package api

import (
	"net"
	"net/http"
	"sync"
	"time"
)

// guessLimiter counts a client's failed token attempts: after max within window, its
// requests without a valid token are refused with 429 until the window has passed (a
// valid token still works: the API checks the token first). It is memory only; a
// restart forgives.
type guessLimiter struct {
	max    int
	window time.Duration
	mu     sync.Mutex // guards seen
	seen   map[string]*guesses
}

type guesses struct {
	start time.Time
	count int
}

func newGuessLimiter(max int, window time.Duration) *guessLimiter {
	return &guessLimiter{max: max, window: window, seen: map[string]*guesses{}}
}

// allowed reports whether client may still fail: false once it has failed max times
// within the window.
func (g *guessLimiter) allowed(client string, now time.Time) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	e := g.seen[client]
	if e == nil || now.Sub(e.start) > g.window {
		return true
	}
	return e.count < g.max
}

// failed counts a failed attempt from client and reports whether it was the one that
// reached the limit.
func (g *guessLimiter) failed(client string, now time.Time) (limited bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if len(g.seen) > 10000 { // bound memory under a spray from many addresses
		for k, e := range g.seen {
			if now.Sub(e.start) > g.window {
				delete(g.seen, k)
			}
		}
	}
	e := g.seen[client]
	if e == nil || now.Sub(e.start) > g.window {
		e = &guesses{start: now}
		g.seen[client] = e
	}
	e.count++
	return e.count == g.max
}

// clientIP is the address a request came from (the switch listens directly; no proxy
// headers are trusted).
func clientIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}
