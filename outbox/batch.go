package outbox

import (
	"context"
	"fmt"
	"runtime/debug"
	"slices"
	"sync"

	"github.com/payswitch/payswitch/store"
)

// The outbox's writes are small (a submit recorded, a receipt applied) and many: a few
// per payment, from the sender's workers and the links' receipt handlers at once. Each
// store operation costs the single writer a hand-off between goroutines and its own
// bookkeeping, so the outbox combines them: a write that finds another
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
	db   *store.DB
	bulk bulkStatements // writes MarkSents and receipts of a batch in bulk (bulk.go); nil: one by one

	mu   sync.Mutex // guards open and every batch's calls, started and cancel
	open *batch     // the batch whose operation is queued but not started; nil: none
}

// batch is one store operation and the writes in it.
type batch struct {
	calls   []*call
	started bool               // the writer took it (or it was given up): no write joins or leaves
	cancel  context.CancelFunc // drops the operation; set only once the leader left (see lead)
	done    chan struct{}      // closed when every call has its err
}

// call is one write: fn runs inside the batch's transaction and err is its outcome.
// A MarkSent or a receipt also comes as data (mark, receipt), which bulk writes with
// the others of its batch instead of running fn.
type call struct {
	fn      func(tx store.Tx) error
	mark    *markArgs
	receipt *receiptArgs
	err     error
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
func (b *batcher) do(ctx context.Context, fn func(tx store.Tx) error) error {
	return b.doCall(ctx, &call{fn: fn})
}

// doCall is do for a call that may carry its write as data too.
func (b *batcher) doCall(ctx context.Context, c *call) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	b.mu.Lock()
	if bt := b.open; bt != nil {
		bt.calls = append(bt.calls, c)
		b.mu.Unlock()
		return b.wait(ctx, bt, c)
	}
	bt := &batch{calls: []*call{c}, done: make(chan struct{})}
	b.open = bt
	b.mu.Unlock()
	return b.lead(ctx, bt, c)
}

// lead writes batch bt, which c opened, on c's goroutine, so that a write that finds
// no other takes no more hand-offs between goroutines than a store.Write. If c's ctx
// ends while bt waits for the writer, c leaves and a goroutine of its own writes what
// others joined.
func (b *batcher) lead(ctx context.Context, bt *batch, c *call) error {
	calls, ran, failed, err := b.write(ctx, bt)
	if !ran && ctx.Err() != nil {
		b.mu.Lock()
		bt.calls = slices.DeleteFunc(bt.calls, func(x *call) bool { return x == c })
		rest := len(bt.calls) > 0
		if rest {
			var wctx context.Context
			wctx, bt.cancel = context.WithCancel(context.WithoutCancel(ctx))
			go b.run(wctx, bt)
		} else {
			bt.started = true
			if b.open == bt {
				b.open = nil
			}
			close(bt.done)
		}
		b.mu.Unlock()
		return ctx.Err()
	}
	b.finish(context.WithoutCancel(ctx), bt, calls, ran, failed, err)
	return unrefuse(c.err)
}

// wait waits for the batch bt that c joined, or leaves it when ctx ends before it ran.
func (b *batcher) wait(ctx context.Context, bt *batch, c *call) error {
	select {
	case <-bt.done:
		return unrefuse(c.err)
	case <-ctx.Done():
	}
	b.mu.Lock()
	if !bt.started {
		bt.calls = slices.DeleteFunc(bt.calls, func(x *call) bool { return x == c })
		// Only a batch whose leader left can end up empty: let the store drop it.
		if len(bt.calls) == 0 && bt.cancel != nil {
			bt.started = true
			if b.open == bt {
				b.open = nil
			}
			bt.cancel()
		}
		b.mu.Unlock()
		return ctx.Err()
	}
	b.mu.Unlock()
	<-bt.done
	return unrefuse(c.err)
}

// run writes batch bt, whose leader left, and answers its calls.
func (b *batcher) run(ctx context.Context, bt *batch) {
	defer bt.cancel()
	calls, ran, failed, err := b.write(ctx, bt)
	b.finish(ctx, bt, calls, ran, failed, err)
}

// write runs batch bt in one store operation. ran says whether its function ran, and
// so took the calls; failed is the error of a call that may have written in part.
func (b *batcher) write(ctx context.Context, bt *batch) (calls []*call, ran bool, failed, err error) {
	err = b.db.Write(ctx, func(tx store.Tx) error {
		calls, ran, failed = b.take(bt), true, nil
		each := calls
		if b.bulk != nil && len(calls) > 1 {
			var err error
			if each, err = runBulk(ctx, tx, b.bulk, calls); err != nil {
				failed = err
				return err
			}
		}
		for _, c := range each {
			c.err = runCall(c.fn, tx)
			if _, refused := c.err.(refusal); c.err != nil && !refused {
				failed = c.err
				return c.err
			}
		}
		return nil
	})
	return calls, ran, failed, err
}

// finish answers bt's calls once write returned, running each again on its own after
// a failure that rolled them all back.
func (b *batcher) finish(ctx context.Context, bt *batch, calls []*call, ran bool, failed, err error) {
	if !ran {
		calls = b.take(bt) // the store failed before fn, or everyone left
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

// runBulk is bulk, a panic in it (the callers' work on receipts) failing the batch as
// runCall fails a call: each then runs alone.
func runBulk(ctx context.Context, tx store.Tx, st bulkStatements, calls []*call) (rest []*call, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("outbox: panic in bulk write: %v\n%s", r, debug.Stack())
		}
	}()
	return bulk(ctx, tx, st, calls)
}

// runCall runs one write of a batch; a panic fails it (and so the batch) as an error,
// which its solo run, where the store recovers it, then reports to its caller alone.
func runCall(fn func(store.Tx) error, tx store.Tx) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("outbox: panic in write: %v\n%s", r, debug.Stack())
		}
	}()
	return fn(tx)
}
