// Package store opens payswitch's one SQLite file and commits writes in groups.
//
// Every package that keeps state (ledger, otp, outbox, the engine) owns its tables as a
// Schema and writes through DB.Write, so that a payment's state change, its ledger effect
// and the messages it sends commit in one SQLite transaction. Writes go through a single
// writer goroutine that gathers whatever callers are waiting into one transaction (group
// commit): one failing operation rolls back alone while the rest commit (the group is
// run again with a SAVEPOINT around each operation when one fails; see openGroup.add),
// and every caller is answered only after the commit is durable.
//
// Durable commits are pipelined. With synchronous FULL, SQLite would write a group's WAL
// frames and then wait for fsync before the writer could start the next group, so the
// one goroutine that runs every write spent a third of its time waiting for the disk.
// Instead the writer connection runs with synchronous NORMAL (SQLite writes the WAL
// frames to the OS at commit, which a killed process cannot lose, and syncs around
// checkpoints), and a second goroutine fsyncs the WAL file itself and only then answers
// the group's callers. The writer meanwhile runs the next group, and one fsync covers
// every group committed before it, because the WAL is written in order. An answer still
// means "survives power loss", exactly as with SQLite's FULL. The cost: a read through
// Reader may see a commit a millisecond before it is durable, though nobody has been told
// it succeeded yet.
package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	_ "modernc.org/sqlite" // registers the "sqlite" driver, used by OpenReadOnly
)

// Errors returned by the store.
var (
	ErrClosed      = errors.New("store: closed")
	ErrNewerSchema = errors.New("store: database written by a newer schema")
	// ErrSyncFailed means an fsync of the WAL failed. After that the kernel may have
	// dropped the unsynced pages, so nothing written since can be called durable: the
	// store refuses every later write until the process restarts and SQLite recovers
	// from what is really on disk (what PostgreSQL does for the same reason).
	ErrSyncFailed = errors.New("store: fsync of the write-ahead log failed; restart needed")
	// ErrDiskFull is Write's answer while the database's filesystem has less than a
	// mebibyte free. SQLite could still fit some writes into pages it owns (the WAL
	// starts again from its beginning after a checkpoint), so on a full disk some
	// writes failed and others went through, at random; refusing them all until
	// there is room again makes the state clear to callers, operators and /healthz.
	// It wraps ENOSPC.
	ErrDiskFull = fmt.Errorf("store: less than %d bytes free on the database's filesystem: %w", minFreeBytes, syscall.ENOSPC)
)

// Options tune durability and batching. The zero value is durable and sensible.
type Options struct {
	// Synchronous is SQLite's synchronous pragma: FULL (default) makes every commit
	// survive power loss (through the pipelined fsync described in the package comment);
	// EXTRA is SQLite's own, fsync inside every commit, unpipelined; NORMAL survives a
	// process crash but not an OS crash; OFF is for throwaway files.
	Synchronous string
	// BusyTimeout is how long a connection waits for a lock (default 5s).
	BusyTimeout time.Duration
	// MaxBatch caps how many operations share one transaction (default 512).
	MaxBatch int
	// Readers is the size of the read-only connection pool (default 4).
	Readers int
	// OnStatement, when set, is called with the text of every statement run on the
	// writer connection (the SAVEPOINT and RELEASE of a group run again included; the
	// group's BEGIN and COMMIT not), on the writer goroutine.
	// Benchmarks use it to report statements per operation; it must be quick.
	OnStatement func(query string)
	// OnUpgrade, when set, is called before the migrations of a component whose tables
	// exist at an older version run (not for a new database): a migration that
	// rebuilds a table takes a while on a large database, and serve says so.
	OnUpgrade func(component string, from, to int)
}

// Schema is one component's tables: Migrations[i] brings it to version i+1.
// Migrations are append-only; a released one is never edited.
type Schema struct {
	Component  string
	Migrations []string
}

// DB is the database: one writer connection fed by Write, and a pool of readers.
type DB struct {
	path   string
	writer *sql.DB
	reader *sql.DB
	ckpt   *sql.DB       // the checkpointer's connection
	stop   chan struct{} // closed by Close: the checkpointer ends
	ops    chan *op
	wg     sync.WaitGroup

	// toSync carries committed groups to the syncer; nil when commits are not synced
	// by the store (synchronous other than FULL).
	toSync  chan *openGroup
	synced  chan struct{}         // the syncer finished a round (capacity 1)
	syncErr atomic.Pointer[error] // the first fsync failure; every write fails after it
	walIno  uint64                // inode of the WAL last synced; syncer only
	// unsynced counts the groups committed and handed to the syncer but not yet
	// answered: the writer's loop adds, the syncer subtracts.
	unsynced atomic.Int64
	// beforeSync, when set (by tests), runs on the syncer before each fsync.
	beforeSync func()
	// lowDisk is set while the database's filesystem has less than minFreeBytes free
	// (the checkpointer looks every checkpointInterval): Write refuses then.
	lowDisk  atomic.Bool
	lastCkpt atomic.Pointer[Checkpoint] // the checkpointer's last success; see LastCheckpoint
	// readOnly is set for a copy opened by OpenCopy: only reader is open.
	readOnly bool
	// beforeFinalCheckpoint, set by BeforeFinalCheckpoint, runs in Close once the
	// writer has stopped and before the WAL is checkpointed and truncated.
	beforeFinalCheckpoint func()

	stats stats

	mu     sync.RWMutex // guards closed; held for reading while sending on ops
	closed bool
}

// stats are the writer's running totals, read by Stats.
type stats struct {
	groups, ops, redos             atomic.Int64
	runNanos, commitNanos          atomic.Int64
	syncs, syncNanos, syncedGroups atomic.Int64
}

// Stats are running totals of the writer since Open, for metrics: divide their
// differences over an interval to get group sizes, utilisation and latencies.
type Stats struct {
	Groups int64 // transactions committed (or failed)
	Ops    int64 // operations run in them (once each, however often a redo ran them)
	Redos  int64 // groups run again because an operation failed (see openGroup.add)
	// Run is the writer's time inside operations (savepoints included) and Commit its
	// time in COMMIT (writing the WAL frames; with synchronous EXTRA, SQLite's fsync
	// too). While their sum grows as fast as the clock, the writer is the bottleneck.
	Run, Commit time.Duration
	// Syncs and Sync are the store's own fsyncs of the WAL (synchronous FULL) and the
	// time they took; SyncedGroups is how many groups they made durable.
	Syncs        int64
	Sync         time.Duration
	SyncedGroups int64
}

// Stats returns the writer's running totals.
func (db *DB) Stats() Stats {
	s := &db.stats
	return Stats{Groups: s.groups.Load(), Ops: s.ops.Load(), Redos: s.redos.Load(), Run: time.Duration(s.runNanos.Load()),
		Commit: time.Duration(s.commitNanos.Load()), Syncs: s.syncs.Load(), Sync: time.Duration(s.syncNanos.Load()),
		SyncedGroups: s.syncedGroups.Load()}
}

type op struct {
	ctx   context.Context
	fn    func(Tx) error
	done  chan error
	state atomic.Int32 // opQueued, then opRunning (writer) or opAbandoned (caller gave up)
}

const (
	opQueued int32 = iota
	opRunning
	opAbandoned
)

// Open opens (creating with mode 0600 if needed) the SQLite file at path, applies the
// schemas' pending migrations and starts the writer.
func Open(path string, opts Options, schemas ...Schema) (*DB, error) {
	if opts.Synchronous == "" {
		opts.Synchronous = "FULL"
	}
	switch strings.ToUpper(opts.Synchronous) {
	case "FULL", "NORMAL", "EXTRA", "OFF":
	default:
		return nil, fmt.Errorf("store: synchronous %q: want FULL, NORMAL, EXTRA or OFF", opts.Synchronous)
	}
	if opts.BusyTimeout <= 0 {
		opts.BusyTimeout = 5 * time.Second
	}
	if opts.MaxBatch <= 0 {
		opts.MaxBatch = 512
	}
	if opts.Readers <= 0 {
		opts.Readers = 4
	}
	if dir := filepath.Dir(path); dir != "" {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, fmt.Errorf("store: create directory %q: %w", dir, err)
		}
	}
	// Create the file ourselves so that it is private to this user from its first byte.
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("store: open %q: %w", path, err)
	}
	f.Close()

	// FULL is kept by the store itself: SQLite runs NORMAL and the syncer fsyncs.
	pipelined := strings.ToUpper(opts.Synchronous) == "FULL"
	sqliteSync := strings.ToUpper(opts.Synchronous)
	if pipelined {
		sqliteSync = "NORMAL"
	}
	dsn := func(readOnly bool) string {
		q := url.Values{}
		q.Add("_pragma", "busy_timeout("+fmt.Sprint(opts.BusyTimeout.Milliseconds())+")")
		q.Add("_pragma", "foreign_keys(1)")
		q.Add("_pragma", "journal_mode(WAL)")
		q.Add("_pragma", "synchronous("+sqliteSync+")")
		// Savepoints (the ledger's own, and every operation's when a group is run
		// again) keep their sub-journals in memory, not in temporary files written and
		// read back for each operation.
		q.Add("_pragma", "temp_store(MEMORY)")
		q.Add("_pragma", "cache_size(-65536)") // 64 MiB of page cache per connection
		// Checkpoints run on their own connection (checkpointer); the writer's own
		// automatic checkpoint is only the backstop that restarts a WAL grown large.
		q.Add("_pragma", fmt.Sprintf("wal_autocheckpoint(%d)", writerAutoCheckpoint))
		if readOnly {
			q.Add("_pragma", "query_only(1)")
		} else {
			q.Add("_txlock", "immediate")
		}
		return "file:" + path + "?" + q.Encode()
	}
	writer := sql.OpenDB(newConnector(dsn(false), opts.OnStatement))
	writer.SetMaxOpenConns(1)
	writer.SetMaxIdleConns(1)
	writer.SetConnMaxLifetime(0)
	writer.SetConnMaxIdleTime(0)
	if err := writer.Ping(); err != nil {
		writer.Close()
		return nil, fmt.Errorf("store: open %q: %w", path, err)
	}
	if err := migrate(writer, schemas, opts.OnUpgrade); err != nil {
		writer.Close()
		return nil, fmt.Errorf("store: migrate %q: %w", path, err)
	}
	reader := sql.OpenDB(newConnector(dsn(true), nil))
	reader.SetMaxOpenConns(opts.Readers)
	reader.SetMaxIdleConns(opts.Readers)

	ckpt := sql.OpenDB(newConnector(dsn(false), nil))
	ckpt.SetMaxOpenConns(1)
	ckpt.SetMaxIdleConns(1)

	db := &DB{path: path, writer: writer, reader: reader, ckpt: ckpt, stop: make(chan struct{}),
		ops: make(chan *op, opts.MaxBatch)}
	if pipelined {
		// The migrations ran with NORMAL: make them and the WAL's directory entry
		// durable before anything is built on them.
		if err := db.syncWAL(); err != nil {
			ckpt.Close()
			reader.Close()
			writer.Close()
			return nil, fmt.Errorf("store: open %q: %w", path, err)
		}
		db.toSync = make(chan *openGroup, 64)
		db.synced = make(chan struct{}, 1)
		db.wg.Add(1)
		go db.syncer()
	}
	db.wg.Add(2)
	go db.loop(opts.MaxBatch)
	go db.checkpointer()
	return db, nil
}

// Path is the file the database lives in.
func (db *DB) Path() string { return db.path }

// Reader is a pool of read-only connections. Reads there see the last committed state;
// a read that decides a write must happen inside Write instead.
func (db *DB) Reader() *sql.DB { return db.reader }

// Write runs fn inside the next group transaction and returns once that transaction is
// durably committed (nil) or fn's own work was rolled back (fn's error, or the commit's).
//
// fn runs on the writer goroutine: it must not call Write, must not keep tx, and must not
// change memory that outlives it, because a failed commit undoes its work after it
// returned nil, and because it may run twice (when another operation of its group
// fails, the group runs again). Do such changes after Write returns nil. A panic in fn
// rolls back fn's work and is returned as an error. If ctx ends while fn is still queued (behind a
// transaction that waits for a lock, say), Write returns ctx's error and fn never runs;
// once fn has started, Write waits for the outcome whatever ctx says, so a caller never
// reports failure for work that committed.
func (db *DB) Write(ctx context.Context, fn func(tx Tx) error) error {
	if db.readOnly {
		return ErrReadOnly
	}
	if db.lowDisk.Load() {
		return ErrDiskFull
	}
	o := &op{ctx: ctx, fn: fn, done: make(chan error, 1)}
	db.mu.RLock()
	if db.closed {
		db.mu.RUnlock()
		return ErrClosed
	}
	select {
	case db.ops <- o:
		db.mu.RUnlock()
	case <-ctx.Done():
		db.mu.RUnlock()
		return ctx.Err()
	}
	select {
	case err := <-o.done:
		return err
	case <-ctx.Done():
		if o.state.CompareAndSwap(opQueued, opAbandoned) {
			return ctx.Err()
		}
		return <-o.done // fn is running: its outcome is the answer
	}
}

// Close stops taking writes, finishes those already queued and closes the file.
func (db *DB) Close() error {
	if db.readOnly {
		return db.reader.Close()
	}
	db.mu.Lock()
	if db.closed {
		db.mu.Unlock()
		return nil
	}
	db.closed = true
	close(db.ops)
	close(db.stop)
	db.mu.Unlock()
	db.wg.Wait()
	rerr := errors.Join(db.reader.Close(), db.ckpt.Close())
	if db.beforeFinalCheckpoint != nil {
		db.beforeFinalCheckpoint()
	}
	// A clean checkpoint leaves the main file complete; the -wal file is then empty.
	db.writer.Exec("PRAGMA wal_checkpoint(TRUNCATE)")
	werr := db.writer.Close()
	return errors.Join(werr, rerr)
}

// Ping reports whether the database can take a write right now: it looks at the free
// space (see ErrDiskFull) and then writes.
func (db *DB) Ping(ctx context.Context) error {
	db.checkFreeSpace()
	return db.Write(ctx, func(tx Tx) error {
		_, err := tx.ExecContext(ctx, "UPDATE store_health SET checked = checked + 1")
		return err
	})
}

// checkFreeSpace sets lowDisk from the free space on the database's filesystem.
func (db *DB) checkFreeSpace() {
	if free, ok := freeBytes(filepath.Dir(db.path)); ok {
		db.lowDisk.Store(free < minFreeBytes)
	}
}

// minFreeBytes is the free space below which the store calls the disk full and refuses
// writes (ErrDiskFull): a few seconds of payments at full speed.
const minFreeBytes = 1 << 20

func (db *DB) loop(maxBatch int) {
	defer db.wg.Done()
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
// operations again, each in its own savepoint, so that the failing one fails alone.
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
	if g.errs[i] = run(o.fn, g.tx); g.errs[i] != nil {
		g.redo()
	}
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
	if err := datasync(f); err != nil {
		return err
	}
	ino, err := inode(f)
	if err != nil {
		return err
	}
	if ino != db.walIno {
		d, err := os.Open(filepath.Dir(db.path))
		if err != nil {
			return err
		}
		defer d.Close()
		if err := d.Sync(); err != nil {
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

func migrate(db *sql.DB, schemas []Schema, onUpgrade func(component string, from, to int)) error {
	if _, err := db.Exec(`CREATE TABLE IF NOT EXISTS schema_versions (
		component TEXT PRIMARY KEY,
		version   INTEGER NOT NULL
	) STRICT;
	CREATE TABLE IF NOT EXISTS store_health (checked INTEGER NOT NULL) STRICT;
	INSERT INTO store_health SELECT 0 WHERE NOT EXISTS (SELECT 1 FROM store_health);`); err != nil {
		return err
	}
	for _, s := range schemas {
		var have int
		err := db.QueryRow("SELECT version FROM schema_versions WHERE component = ?", s.Component).Scan(&have)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("%s: read version: %w", s.Component, err)
		}
		if have > len(s.Migrations) {
			return fmt.Errorf("%w: %s is at version %d, this binary knows %d", ErrNewerSchema, s.Component, have, len(s.Migrations))
		}
		if have > 0 && have < len(s.Migrations) && onUpgrade != nil {
			onUpgrade(s.Component, have, len(s.Migrations))
		}
		for v := have + 1; v <= len(s.Migrations); v++ {
			tx, err := db.Begin()
			if err != nil {
				return err
			}
			if _, err := tx.Exec(s.Migrations[v-1]); err != nil {
				tx.Rollback()
				return fmt.Errorf("%s: migration %d: %w", s.Component, v, err)
			}
			if _, err := tx.Exec(`INSERT INTO schema_versions (component, version) VALUES (?, ?)
				ON CONFLICT (component) DO UPDATE SET version = excluded.version`, s.Component, v); err != nil {
				tx.Rollback()
				return fmt.Errorf("%s: record version %d: %w", s.Component, v, err)
			}
			if err := tx.Commit(); err != nil {
				return fmt.Errorf("%s: migration %d: %w", s.Component, v, err)
			}
		}
	}
	return nil
}

// OpenReadOnly opens an existing database for reading only, as the auditor export does
// while serve keeps writing: WAL lets it read one consistent snapshot per transaction
// without blocking the writer. It refuses a file whose schemas are newer than this
// binary's, and never creates or migrates anything.
func OpenReadOnly(path string, schemas ...Schema) (*sql.DB, error) {
	if _, err := os.Stat(path); err != nil {
		return nil, fmt.Errorf("store: open %q: %w", path, err)
	}
	q := url.Values{}
	q.Add("mode", "ro")
	q.Add("_pragma", "busy_timeout(5000)")
	q.Add("_pragma", "query_only(1)")
	db, err := sql.Open("sqlite", "file:"+path+"?"+q.Encode())
	if err != nil {
		return nil, fmt.Errorf("store: open %q: %w", path, err)
	}
	for _, s := range schemas {
		var have int
		err := db.QueryRow("SELECT version FROM schema_versions WHERE component = ?", s.Component).Scan(&have)
		if err != nil {
			db.Close()
			return nil, fmt.Errorf("store: open %q: %s schema: %w", path, s.Component, err)
		}
		if have > len(s.Migrations) {
			db.Close()
			return nil, fmt.Errorf("%w: %s is at version %d, this binary knows %d", ErrNewerSchema, s.Component, have, len(s.Migrations))
		}
	}
	return db, nil
}
