// Package failures counts failed attempts (bad tokens, failed sign-ins) per client, so
// that guessing from one address is slowed: after Max failures within Window, the
// caller refuses that client (429) until the window has passed. It lives in memory; a
// restart forgives.
package failures

import (
	"sync"
	"time"
)

// maxClients bounds the table under a spray from many addresses: past it, clients
// whose window has passed are forgotten.
const maxClients = 10000

// Limiter counts failures per client within a fixed window from the first.
type Limiter struct {
	max    int
	window time.Duration
	mu     sync.Mutex // guards seen
	seen   map[string]*count
}

type count struct {
	start time.Time
	n     int
}

// New returns a Limiter that allows max failures per client within window.
func New(max int, window time.Duration) *Limiter {
	return &Limiter{max: max, window: window, seen: make(map[string]*count)}
}

// Max is how many failures a client may make within the window.
func (l *Limiter) Max() int { return l.max }

// Window is the length of the window, from a client's first failure.
func (l *Limiter) Window() time.Duration { return l.window }

// Allowed reports whether client may still fail: false once it has failed max times
// within the window.
func (l *Limiter) Allowed(client string, now time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	e := l.seen[client]
	return e == nil || now.Sub(e.start) > l.window || e.n < l.max
}

// Failed counts a failure from client and reports whether it was the one that reached
// the limit (so that the caller logs it once).
func (l *Limiter) Failed(client string, now time.Time) (limited bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.seen) > maxClients {
		for k, e := range l.seen {
			if now.Sub(e.start) > l.window {
				delete(l.seen, k)
			}
		}
	}
	e := l.seen[client]
	if e == nil || now.Sub(e.start) > l.window {
		e = &count{start: now}
		l.seen[client] = e
	}
	e.n++
	return e.n == l.max
}
