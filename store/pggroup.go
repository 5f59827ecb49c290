package store

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Group commit on PostgreSQL. A node's Writes are queued and run by a few group loops,
// each filling one transaction with every Write waiting when it starts, running their
// finishers once at the end (the ledger's credits, one UPDATE per account for the whole
// group, and one journal append) and committing once: one COMMIT, one WAL flush and one
// turn at the journal's head for the group, where each Write had its own. A loop runs its
// group's statements one after another, so a node's database work is bounded by round
// trips rather than by the machine's cores, and another node adds its own loops: nodes
// scale out where a node of many concurrent transactions only queued on the same locks.
//
// The group is the fast path only. PostgreSQL aborts a whole transaction at a failed
// statement, so an operation that fails (an error, a deadlock, a lock wait that timed
// out, a transaction left aborted by a statement it caught), a finisher that fails, a
// COMMIT that the server refused, or a connection that broke before COMMIT, rolls the
// group back and sends each of its operations to run alone, in a transaction of its own
// with the retries described in postgres.go: each then gets its own answer, and no
// operation's failure becomes another's. (A Write function may so run more than once,
// as on SQLite.) A COMMIT whose answer was lost is the exception: every operation of the
// group gets ErrCommitUnknown, since any of them may have committed.

// errRunAlone tells a Write whose group was rolled back to run alone.
var errRunAlone = errors.New("store: run alone")

// pgGroupBatch caps how many operations share a group when Options.MaxBatch is unset:
// a group holds its row locks until its COMMIT, so one much larger would make the
// operations at its start wait long for those at its end.
const pgGroupBatch = 64

// inGroup queues fn for a group and waits for its outcome; alone reports that the group
// could not take it, and the caller runs it in a transaction of its own.
func (p *pgBackend) inGroup(ctx context.Context, fn func(Tx) error) (err error, alone bool) {
	o := &op{ctx: ctx, fn: fn, done: make(chan error, 1)}
	select {
	case p.ops <- o:
	case <-ctx.Done():
		return ctx.Err(), false
	}
	select {
	case err = <-o.done:
	case <-ctx.Done():
		if o.state.CompareAndSwap(opQueued, opAbandoned) {
			return ctx.Err(), false
		}
		err = <-o.done // fn is running: its outcome is the answer
	}
	if errors.Is(err, errRunAlone) {
		return nil, true
	}
	return err, false
}

// groupLoop runs groups until the queue is closed.
func (p *pgBackend) groupLoop() {
	defer p.loops.Done()
	for o := range p.ops {
		p.runGroup(o)
	}
}

// runGroup runs a group that starts with first and takes in every operation already
// queued, up to the batch size, then finishes and commits it (see the file's comment).
func (p *pgBackend) runGroup(first *op) {
	conn, dc, dtx, err := p.begin(context.Background())
	if err != nil {
		first.done <- errRunAlone // alone, it will say why, or reach the database
		return
	}
	tx := &groupTx{conn: conn, tx: dtx, finishing: true, group: true, pgc: dc}
	ops := make([]*op, 0, 8)
	failed := false
	start := time.Now()
	// spoiled: the group cannot commit as it is (see the file's comment).
	spoiled := func(err error) bool {
		return err != nil || tx.alone || dc.retryable != nil || dc.aborted() || dc.broken()
	}
	add := func(o *op) {
		if !o.state.CompareAndSwap(opQueued, opRunning) {
			o.done <- context.Canceled // abandoned by its caller, who no longer listens
			return
		}
		if err := o.ctx.Err(); err != nil {
			o.done <- err
			return
		}
		ops = append(ops, o)
		failed = spoiled(run(o.fn, tx))
	}
	add(first)
more:
	for !failed && len(ops) < p.maxBatch {
		select {
		case o, ok := <-p.ops:
			if !ok {
				break more
			}
			add(o)
		default:
			break more
		}
	}
	if !failed && len(ops) > 0 {
		failed = spoiled(tx.finish(context.Background()))
	}
	if !failed && len(ops) > 0 {
		failed = spoiled(dc.flushLater(context.Background()))
	}
	p.stats.runNanos.Add(int64(time.Since(start)))
	if failed || len(ops) == 0 {
		tx.rollback()
		if len(ops) > 0 {
			p.stats.redos.Add(1)
		}
		answer(ops, errRunAlone)
		return
	}
	start = time.Now()
	err = tx.commit()
	p.stats.commitNanos.Add(int64(time.Since(start)))
	p.stats.groups.Add(1)
	p.stats.ops.Add(int64(len(ops)))
	switch {
	case err == nil:
		answer(ops, nil)
	case commitUnknown(err):
		answer(ops, fmt.Errorf("%w: %w", ErrCommitUnknown, err))
	default: // refused, or never sent: nothing committed
		answer(ops, errRunAlone)
	}
}

func answer(ops []*op, err error) {
	for _, o := range ops {
		o.done <- err
	}
}

// aborted reports whether the connection's transaction is in the failed state: a
// statement failed and the function went on without rolling back to a savepoint.
func (c *pgDriverConn) aborted() bool {
	return c.Conn.Conn().PgConn().TxStatus() == 'E'
}
