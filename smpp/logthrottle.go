package smpp

import (
	"sync"
	"time"

	"github.com/rs/zerolog"
)

// logThrottle keeps a failure that repeats from flooding the log: while a database is
// full, every poll of the sender and every redelivered MO fails the same way, which
// was thousands of lines an hour saying one thing. Per key, the first failure is
// logged; for the next interval the same key is only counted, and the next line that
// is logged says how many were left out. The cause is on /healthz and in the metrics.
type logThrottle struct {
	interval time.Duration
	now      func() time.Time

	mu   sync.Mutex
	keys map[string]*throttled
}

type throttled struct {
	last       time.Time
	suppressed int
}

// logThrottleInterval is how often one kind of failure is logged at most.
const logThrottleInterval = 10 * time.Second

func newLogThrottle(interval time.Duration) *logThrottle {
	return &logThrottle{interval: interval, now: time.Now, keys: make(map[string]*throttled)}
}

// event returns e, with the count of lines left out since the last, when key may be
// logged now; otherwise it counts the failure and returns nil, on which zerolog's
// methods are no-ops.
func (t *logThrottle) event(key string, e *zerolog.Event) *zerolog.Event {
	t.mu.Lock()
	defer t.mu.Unlock()
	now := t.now()
	k, ok := t.keys[key]
	if !ok { // keys are a handful of constant strings: the map stays small
		k = &throttled{}
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
