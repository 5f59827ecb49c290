package airtime

import (
	"sync"
	"time"
)

// breaker is a carrier's circuit breaker: it stops the switch from queueing requests at a
// carrier that is not answering, so that a dead carrier costs one trial every cooldown
// instead of a timeout per top-up.
type breaker struct {
	now       func() time.Time // the clock; tests replace it
	threshold int              // consecutive faults that open it
	cooldown  time.Duration    // how long it stays open before a trial
	onChange  func(open bool)  // called with mu held on every open/close

	mu       sync.Mutex // guards the fields below
	state    breakerState
	faults   int       // consecutive faults while closed
	openedAt time.Time // when it last opened
	trial    bool      // a half-open trial is in flight
	gen      uint64    // bumped on every change of state; stale verdicts are ignored
}

type breakerState int

const (
	closed breakerState = iota
	open
	halfOpen
)

// verdict is what one request said about the carrier's health.
type verdict int

const (
	healthy verdict = iota // the carrier answered (whatever it said)
	fault                  // no usable answer: timeout, transport error, 5xx, garbage
	neutral                // says nothing about the carrier: our caller gave up
)

// allow asks to send one request. It returns the generation to hand back to done, or
// false while the breaker is open or a half-open trial is already in flight.
func (b *breaker) allow() (uint64, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	switch b.state {
	case closed:
		return b.gen, true
	case open:
		if b.now().Sub(b.openedAt) < b.cooldown {
			return 0, false
		}
		b.state, b.trial = halfOpen, true
		b.gen++
		return b.gen, true
	default: // halfOpen
		if b.trial {
			return 0, false
		}
		b.trial = true // the earlier trial ended neutral; this one takes its place
		return b.gen, true
	}
}

// done reports how the request allowed in generation gen went.
func (b *breaker) done(gen uint64, v verdict) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if gen != b.gen {
		return // sent before the last change of state; the state has moved on
	}
	switch b.state {
	case closed:
		switch v {
		case fault:
			if b.faults++; b.faults >= b.threshold {
				b.openLocked()
			}
		case healthy:
			b.faults = 0
		}
	case halfOpen:
		switch v {
		case fault:
			b.openLocked()
		case healthy:
			b.state, b.faults, b.trial = closed, 0, false
			b.gen++
			b.onChange(false)
		default:
			b.trial = false
		}
	}
}

// openLocked opens the breaker; b.mu must be held.
func (b *breaker) openLocked() {
	b.state, b.faults, b.trial = open, 0, false
	b.openedAt = b.now()
	b.gen++
	b.onChange(true)
}

// isOpen reports whether requests are being refused or trialled.
func (b *breaker) isOpen() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.state != closed
}
