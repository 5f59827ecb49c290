// Package logthrottle keeps a failure or refusal that repeats from flooding the log.
// While a database is full every poll fails the same way, and a forger or an ESME can
// repeat a refused request as fast as it can send: thousands of lines an hour saying
// one thing. Per key, the first occurrence is logged; for the next interval the same
// key is only counted, and the next line that is logged says how many were left out.
package logthrottle

import (
	"sync"
	"time"

	"github.com/rs/zerolog"
)

// Interval is how often one key is logged at most, unless a caller chooses otherwise.
const Interval = 10 * time.Second

// Throttle holds, per key, when it was last logged and how many were left out since.
// Keys should come from a small set (kinds of failure, reasons, accounts): the map is
// never pruned.
type Throttle struct {
	interval time.Duration
	now      func() time.Time

	mu   sync.Mutex // guards keys
	keys map[string]*state
}

type state struct {
	last       time.Time
	suppressed int
}

// New returns a Throttle that logs each key at most once per interval, on the clock
// now (nil: time.Now).
func New(interval time.Duration, now func() time.Time) *Throttle {
	if now == nil {
		now = time.Now
	}
	return &Throttle{interval: interval, now: now, keys: make(map[string]*state)}
}

// Event returns e, with the count of lines left out since the last ("suppressed"),
// when key may be logged now; otherwise it counts the occurrence, discards e and
// returns nil, on which zerolog's methods do nothing.
func (t *Throttle) Event(key string, e *zerolog.Event) *zerolog.Event {
	t.mu.Lock()
	defer t.mu.Unlock()
	now := t.now()
	k, ok := t.keys[key]
	if !ok {
		k = &state{}
		t.keys[key] = k
	} else if now.Sub(k.last) < t.interval {
		k.suppressed++
		e.Discard()
		return nil
	}
	k.last = now
	if k.suppressed > 0 {
		e = e.Int("suppressed", k.suppressed)
		k.suppressed = 0
	}
	return e
}
