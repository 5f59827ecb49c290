// Package handover is the bounded hand-over between the writes that queue work in the
// store and the one worker that does it: a write that has become durable hands its item
// over in memory, so that the worker need not claim it from the database (the outbox's
// fresh SMS, webhook's fresh events). The database row stays the durable record: what
// is not handed over, or is spilled, is found there by the worker's claims.
package handover

import "sync"

// Queue holds items handed over and not yet taken, and counts those the worker took and
// has not finished (Done). While it holds its max of items, handed or taken and not
// done, more are spilled: kept apart for the worker to give back to the database. Its
// zero value is not usable: call New.
type Queue[T any] struct {
	mu      sync.Mutex
	open    bool // a worker takes items
	max     int
	handed  []T // not yet taken
	spilled []T // beyond max: to give back to the database
	held    int // handed plus those taken and not yet done
	ready   chan struct{}
}

// New returns a closed Queue that holds at most max items.
func New[T any](max int) *Queue[T] {
	return &Queue[T]{max: max, ready: make(chan struct{}, 1)}
}

// Open starts taking items.
func (q *Queue[T]) Open() {
	q.mu.Lock()
	q.open = true
	q.mu.Unlock()
}

// Close stops taking items and returns those handed and spilled and not taken, which
// the worker must give back. The handed ones count as held until Done, as taken ones do.
func (q *Queue[T]) Close() (handed, spilled []T) {
	q.mu.Lock()
	q.open = false
	q.mu.Unlock()
	return q.Take(-1)
}

// IsOpen reports whether a worker takes items.
func (q *Queue[T]) IsOpen() bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.open
}

// Hand gives the worker an item whose write is durable. An item handed while the queue
// is closed is dropped: its row waits in the database for a claim.
func (q *Queue[T]) Hand(item T) {
	q.mu.Lock()
	switch {
	case !q.open:
	case q.held >= q.max:
		q.spilled = append(q.spilled, item)
	default:
		q.handed = append(q.handed, item)
		q.held++
	}
	q.mu.Unlock()
	select {
	case q.ready <- struct{}{}:
	default:
	}
}

// Ready is signalled after a Hand; signals not yet received collapse into one.
func (q *Queue[T]) Ready() <-chan struct{} { return q.ready }

// Take returns up to limit items handed over (all of them when limit < 0), oldest
// first, and every spilled one. The items taken count as held until Done.
func (q *Queue[T]) Take(limit int) (handed, spilled []T) {
	q.mu.Lock()
	defer q.mu.Unlock()
	n := len(q.handed)
	if limit >= 0 {
		n = min(n, limit)
	}
	handed = append([]T(nil), q.handed[:n]...)
	q.handed = append(q.handed[:0], q.handed[n:]...)
	spilled, q.spilled = q.spilled, nil
	return handed, spilled
}

// Done counts n taken items as finished (started, or given back).
func (q *Queue[T]) Done(n int) {
	q.mu.Lock()
	q.held -= n
	q.mu.Unlock()
}
