package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"time"

	"github.com/payswitch/payswitch/internal/durable"
)

// checkFreeSpace sets lowDisk from the free space on the database's filesystem.
func (db *DB) checkFreeSpace() {
	if free, ok := freeBytes(filepath.Dir(db.path)); ok {
		db.lowDisk.Store(free < minFreeBytes)
	}
}

// minFreeBytes is the free space below which the store calls the disk full and refuses
// writes (ErrDiskFull): a few seconds of payments at full speed.
const minFreeBytes = 1 << 20

func (db *DB) loop(maxBatch int, onThread func()) {
	defer db.wg.Done()
	// The writer keeps an OS thread of its own. Unlocked, Go's scheduler ran it next on
	// the thread of whichever goroutine woke it (a network handler), in turns with that
	// goroutine's neighbours; on its own thread the OS runs it beside them, and the
	// outbox's records gather into larger bulk statements meanwhile. Fewer statements
	// and less CPU per payment were measured (README, Performance).
	runtime.LockOSThread()
	if onThread != nil {
		// The hook may change the thread (its CPUs): it is never unlocked, so that Go
		// ends it with this goroutine instead of running other goroutines on it.
		onThread()
	} else {
		defer runtime.UnlockOSThread()
	}
	if db.toSync != nil {
		defer close(db.toSync)
	}
	var g *openGroup
	for {
		if g == nil {
			select {
			case o, ok := <-db.ops:
				if !ok {
					return
				}
				g = db.begin(o, maxBatch)
			case <-db.synced:
			}
			continue
		}
		if g.aborted { // its callers are answered; start afresh
			g = nil
			continue
		}
		// A group commits as soon as the disk is free for it: at once when nothing is
		// being synced (low latency when quiet), otherwise, taking in every operation
		// that arrives meanwhile, when the sync ends (large groups when busy: the
		// writer works while the disk syncs) or, if the writer has nothing left to run
		// before then, at once, so that its COMMIT overlaps the sync under way instead
		// of following it, and the next sync can start the moment this one ends. At
		// most one group waits committed for a sync, so commits are no more frequent
		// than syncs and groups no smaller than they need to be.
		if db.commitNow(g, maxBatch) {
			g.takeQueued(db.ops, maxBatch)
			db.finish(g)
			g = nil
			continue
		}
		select {
		case o, ok := <-db.ops:
			if !ok {
				db.finish(g)
				return
			}
			g.add(o)
		case <-db.synced:
		}
	}
}

// commitNow reports whether the open group g should commit now (see loop).
func (db *DB) commitNow(g *openGroup, maxBatch int) bool {
	switch n := db.unsynced.Load(); {
	case n == 0 || len(g.ops) >= maxBatch:
		return true
	case n == 1:
		return len(db.ops) == 0 // the writer would wait idle for the sync
	default:
		return false
	}
}

// openGroup is the transaction the writer is filling.
type openGroup struct {
	stats   *stats
	writer  *sql.DB // for the new transaction of a redo
	tx      *groupTx
	ops     []*op
	errs    []error
	ran     []bool // ops[i]'s function ran (and so wrote, perhaps)
	safe    bool   // each operation runs in a savepoint (after a redo)
	aborted bool   // the transaction is gone; ops and errs are already answered
}

// begin opens a group's transaction and runs its first operation. A group that could
// not begin is returned already answered.
func (db *DB) begin(first *op, maxBatch int) *openGroup {
	g := &openGroup{stats: &db.stats, writer: db.writer, ops: make([]*op, 0, min(maxBatch, 1+len(db.ops)))}
	if perr := db.syncErr.Load(); perr != nil {
		first.done <- *perr
		g.aborted = true
		return g
	}
	tx, err := beginGroup(db.writer)
	if err != nil {
		first.done <- fmt.Errorf("store: begin: %w", err)
		g.aborted = true
		return g
	}
	g.tx = tx
	g.add(first)
	return g
}

// takeQueued runs the operations already waiting, up to maxBatch in the group.
func (g *openGroup) takeQueued(ops <-chan *op, maxBatch int) {
	for len(g.ops) < maxBatch && !g.aborted {
		select {
		case o, ok := <-ops:
			if !ok {
				return
			}
			g.add(o)
		default:
			return
		}
	}
}

// add runs o in the group's transaction.
//
// Operations run bare, without a savepoint of their own: SQLite copies every page an
// operation first changes inside a savepoint into a journal kept in memory, and that
// (with the SAVEPOINT and RELEASE themselves) was 5-9% of the writer's time. The
// savepoint is only needed when an operation fails after writing part of its work,
// which the switch's operations almost never do (a refusal is an answer, not an
// error). When one does, redo rolls the whole transaction back and runs the group's
// operations again, each in its own savepoint, so that the failing one fails alone. The
// same goes for an operation whose own parts skipped their savepoints in a bare group
// (Optimistic) and called RunAlone when one failed half done.
// That is why a Write function may run twice, and must leave no trace outside tx.
func (g *openGroup) add(o *op) {
	if g.aborted {
		// Only reached when the group could not begin: nothing can run in it.
		o.done <- errors.New("store: transaction aborted")
		return
	}
	start := time.Now()
	defer func() { g.stats.runNanos.Add(int64(time.Since(start))) }()
	g.ops = append(g.ops, o)
	i := len(g.errs)
	g.errs = append(g.errs, nil)
	g.ran = append(g.ran, false)
	if !o.state.CompareAndSwap(opQueued, opRunning) {
		g.errs[i] = context.Canceled // abandoned by its caller, who no longer listens
		return
	}
	if err := o.ctx.Err(); err != nil {
		g.errs[i] = err
		return
	}
	g.ran[i] = true
	if g.safe {
		g.runSafe(i)
		return
	}
	g.tx.group = true
	if g.errs[i] = run(o.fn, g.tx); g.errs[i] != nil || g.tx.alone {
		g.redo()
	}
}

// flushAppends inserts the rows the group's Appenders kept (append.go), and reports
// whether the group is still there to commit. When the insert fails, the group is run
// again with each operation in a savepoint (redo), where rows go in at once, so that the
// operation whose row fails fails alone.
func (g *openGroup) flushAppends() bool {
	if len(g.tx.appends) == 0 {
		return true
	}
	start := time.Now()
	defer func() { g.stats.runNanos.Add(int64(time.Since(start))) }()
	if err := g.tx.flushAppends(context.Background()); err != nil {
		g.redo()
	}
	return !g.aborted
}

// redo rolls the group's transaction back, after an operation failed with its work
// perhaps half done, and runs every operation that had run again, each in a savepoint
// of a new transaction, as are those that join the group later.
func (g *openGroup) redo() {
	g.tx.rollback()
	g.tx = nil
	g.stats.redos.Add(1)
	tx, err := beginGroup(g.writer)
	if err != nil {
		g.abort(fmt.Errorf("store: begin: %w", err), -1)
		return
	}
	g.tx, g.safe = tx, true
	for i := range g.ops {
		if g.ran[i] {
			g.errs[i] = nil
			if g.runSafe(i); g.aborted {
				return
			}
		}
	}
}

// runSafe runs ops[i] in its own savepoint of the group's transaction.
func (g *openGroup) runSafe(i int) {
	bg := context.Background()
	if _, err := g.tx.ExecContext(bg, "SAVEPOINT op"); err != nil {
		g.errs[i] = fmt.Errorf("store: savepoint: %w", err)
		return
	}
	g.errs[i] = run(g.ops[i].fn, g.tx)
	if g.errs[i] != nil {
		if _, rerr := g.tx.ExecContext(bg, "ROLLBACK TO op"); rerr != nil {
			// SQLite rolled the whole transaction back (SQLITE_FULL or an I/O error
			// inside fn does that) or it is in an unknown state: give up on all of it.
			// Ops that failed on their own keep their error; the rest learn why nothing
			// stuck, with the cause, so that a full disk still reads as one.
			g.abort(fmt.Errorf("store: transaction aborted: %w", errors.Join(g.errs[i], rerr)), i)
			return
		}
	}
	g.tx.ExecContext(bg, "RELEASE op")
}

// abort gives up on the group's transaction: every operation is answered with cause,
// except those (other than failed) that failed on their own, which keep their error.
func (g *openGroup) abort(cause error, failed int) {
	if g.tx != nil {
		g.tx.rollback()
		g.tx = nil
	}
	for j, o := range g.ops {
		if j == failed || g.errs[j] == nil {
			o.done <- cause
		} else {
			o.done <- g.errs[j]
		}
	}
	g.aborted = true
}

// finish commits the group and answers its callers: at once when the commit failed or
// the store does not sync, else through the syncer once the commit is on disk.
func (db *DB) finish(g *openGroup) {
	if g.aborted {
		return
	}
	if !g.flushAppends() {
		return
	}
	commit := time.Now()
	err := g.tx.commit()
	done := time.Now()
	db.stats.groups.Add(1)
	ran := 0
	for _, r := range g.ran {
		if r {
			ran++
		}
	}
	db.stats.ops.Add(int64(ran))
	db.stats.commitNanos.Add(int64(done.Sub(commit)))
	db.stats.pages.Add(g.tx.pages)
	if err != nil {
		// (groupTx.commit has rolled a transaction that stayed open back.)
		for i := range g.errs {
			if g.errs[i] == nil {
				g.errs[i] = fmt.Errorf("store: commit: %w", err)
			}
		}
	} else if db.toSync != nil {
		db.unsynced.Add(1)
		db.toSync <- g
		return
	}
	for i, o := range g.ops {
		o.done <- g.errs[i]
	}
}

// syncer answers committed groups once an fsync of the WAL has made them durable. One
// fsync serves every group committed before it started.
func (db *DB) syncer() {
	defer db.wg.Done()
	for g := range db.toSync {
		groups := []*openGroup{g}
	more:
		for {
			select {
			case g, ok := <-db.toSync:
				if !ok {
					break more
				}
				groups = append(groups, g)
			default:
				break more
			}
		}
		var serr error
		if perr := db.syncErr.Load(); perr != nil {
			serr = *perr
		} else {
			if db.beforeSync != nil {
				db.beforeSync()
			}
			start := time.Now()
			err := db.syncWAL()
			db.stats.syncs.Add(1)
			db.stats.syncNanos.Add(int64(time.Since(start)))
			db.stats.syncedGroups.Add(int64(len(groups)))
			if err != nil {
				serr = fmt.Errorf("%w: %w", ErrSyncFailed, err)
				db.syncErr.CompareAndSwap(nil, &serr)
			}
		}
		for _, g := range groups {
			for i, o := range g.ops {
				if g.errs[i] == nil {
					g.errs[i] = serr
				}
				o.done <- g.errs[i]
			}
		}
		db.unsynced.Add(-int64(len(groups)))
		select {
		case db.synced <- struct{}{}:
		default: // the writer has not taken the last signal yet; one is enough
		}
	}
}

// syncWAL makes everything written to the WAL so far durable. The file is opened anew
// each time, so that a WAL that SQLite deleted and created again is never missed; when
// it is a new file, its directory entry is synced too.
func (db *DB) syncWAL() error {
	f, err := os.Open(db.path + "-wal")
	if err != nil {
		return err
	}
	defer f.Close()
	if err := durable.Datasync(f); err != nil {
		return err
	}
	ino, err := inode(f)
	if err != nil {
		return err
	}
	if ino != db.walIno {
		if err := durable.SyncDir(filepath.Dir(db.path)); err != nil {
			return err
		}
		db.walIno = ino
	}
	return nil
}

func run(fn func(Tx) error, tx Tx) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("store: panic in write: %v\n%s", r, debug.Stack())
		}
	}()
	return fn(tx)
}
