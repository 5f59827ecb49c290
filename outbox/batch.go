package outbox

import (
	"context"
	"database/sql"
	"fmt"
	"runtime/debug"
	"slices"
	"sync"

	"github.com/payswitch/payswitch/store"
)

// The outbox's writes are small (a submit recorded, a receipt applied) and many: a few
// per payment, from the sender's workers and the links' receipt handlers at once. Each
// store operation costs the single writer a hand-off and a savepoint of its own, more
// than the statements inside, so the outbox combines them: a write that finds another
// one waiting for the writer joins it, and all of them run in that one operation, one
// after another. A write that finds none starts a new operation at once, so combining
// never holds a write back; it only lets writes that would have queued anyway share.
//
// A write that fails in the middle may have written part of its work, which must not
// commit. Then the whole combined operation is rolled back and every write in it runs
// again in an operation of its own, where a failure undoes only itself. A write that
// refuses (refuse) before it has changed anything does not need that: it fails alone and
// the others commit.

// batcher combines concurrent writes into one store operation.
type batcher struct {
	db *store.DB

	mu   sync.Mutex // guards open and every batch's calls and started
	open *batch     // the batch whose operation is queued but not started; nil: none
}

// batch is one store operation and the writes in it.
type batch struct {
	calls   []*call
	started bool // the writer took it (or it was given up): no write joins or leaves
	cancel  context.CancelFunc
	done    chan struct{} // closed when every call has its err
}

// call is one write: fn runs inside the batch's transaction and err is its outcome.
type call struct {
	fn  func(tx *sql.Tx) error
	err error
}

// refusal is the error of a write that changed nothing: the rest of its batch stands.
// A write's fn returns it as is, unwrapped; do hands the caller err.
type refusal struct{ err error }

func (r refusal) Error() string { return r.err.Error() }
func (r refusal) Unwrap() error { return r.err }

// refuse marks err as the error of a write that has not changed anything.
func refuse(err error) error { return refusal{err} }

// unrefuse is what the caller of a write that returned err is told.
func unrefuse(err error) error {
	if r, ok := err.(refusal); ok {
		return r.err
	}
	return err
}

// do runs fn inside a store transaction, combined with the other writes waiting for
// the writer, and returns once it is durable (nil) or undone (its error). fn may run
// twice (see the comment above): it must start from scratch each time, setting every
// result it reports. Like store.Write, do returns ctx's error only if fn has not
// started; once it has, do waits for the outcome.
func (b *batcher) do(ctx context.Context, fn func(tx *sql.Tx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	c := &call{fn: fn}
	b.mu.Lock()
	bt := b.open
	if bt == nil {
		wctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
		bt = &batch{cancel: cancel, done: make(chan struct{})}
		b.open = bt
		go b.run(wctx, bt)
	}
	bt.calls = append(bt.calls, c)
	b.mu.Unlock()

	select {
	case <-bt.done:
		return unrefuse(c.err)
	case <-ctx.Done():
	}
	b.mu.Lock()
	if !bt.started {
		bt.calls = slices.DeleteFunc(bt.calls, func(x *call) bool { return x == c })
		if len(bt.calls) == 0 { // nobody is left: let the store drop the operation
			bt.started = true
			b.open = nil
			bt.cancel()
		}
		b.mu.Unlock()
		return ctx.Err()
	}
	b.mu.Unlock()
	<-bt.done
	return unrefuse(c.err)
}

// run writes batch bt and answers its calls.
func (b *batcher) run(ctx context.Context, bt *batch) {
	defer bt.cancel()
	var calls []*call
	var failed error // a call's error that may have left a partial write
	err := b.db.Write(ctx, func(tx *sql.Tx) error {
		calls, failed = b.take(bt), nil
		for _, c := range calls {
			c.err = runCall(c.fn, tx)
			if _, refused := c.err.(refusal); c.err != nil && !refused {
				failed = c.err
				return c.err
			}
		}
		return nil
	})
	if calls == nil {
		calls = b.take(bt) // fn never ran: the store failed, or everyone left
	}
	switch {
	case failed != nil:
		// Rolled back: each write again in an operation of its own, so that only the
		// failing one fails. They are queued together and still share a commit.
		var wg sync.WaitGroup
		for _, c := range calls {
			wg.Go(func() { c.err = b.db.Write(ctx, c.fn) })
		}
		wg.Wait()
	case err != nil:
		for _, c := range calls {
			c.err = err
		}
	}
	close(bt.done)
}

// take closes bt to new calls and returns its calls.
func (b *batcher) take(bt *batch) []*call {
	b.mu.Lock()
	defer b.mu.Unlock()
	bt.started = true
	if b.open == bt {
		b.open = nil
	}
	return slices.Clip(bt.calls)
}

// runCall runs one write of a batch; a panic fails it (and so the batch) as an error,
// which its solo run, where the store recovers it, then reports to its caller alone.
func runCall(fn func(*sql.Tx) error, tx *sql.Tx) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("outbox: panic in write: %v\n%s", r, debug.Stack())
		}
	}()
	return fn(tx)
}
