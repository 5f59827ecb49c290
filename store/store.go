// Package store opens payswitch's database, SQLite (Open, the default: one file, one
// writer, writes committed in groups) or PostgreSQL (OpenPostgres: several processes
// writing one database at once), and gives every package the same few things on both:
// Write(ctx, fn) to change state in one transaction, Reader for reads, Schema for its
// tables, and the errors (UniqueViolation, FaultOf).
//
// # Two drivers, one SQL
//
// Packages keep writing database/sql with SQLite's "?" and "?NNN" placeholders: on
// PostgreSQL (pgx, through its database/sql adapter) every statement is rebound to
// "$NNN" on its connection, so most DML (INSERT ... RETURNING, ON CONFLICT, partial
// indexes, COALESCE, LIMIT) is one text on both. Where the dialects disagree (DDL, FOR
// UPDATE, date functions, a VALUES list without an alias) a package branches on
// DB.Dialect. Each package owns its schema as two migration lists, Schema.Migrations for
// SQLite and Schema.Postgres for PostgreSQL, each versioned in its database's
// schema_versions; a database newer than the binary is refused (ErrNewerSchema) on both.
// Reads that must agree with each other take ReadSnapshot. Unique violations are told
// apart by UniqueViolation's "table.column" names, which both drivers give alike.
//
// What differs, and what a package that runs on PostgreSQL must mind, is in postgres.go:
// there a Write function runs in its own READ COMMITTED transaction while other
// processes' run, so what it checks it must lock (FOR UPDATE) or write conditionally,
// and a failed statement aborts its whole transaction unless a savepoint was taken.
//
// # SQLite
//
// Every package that keeps state (ledger, otp, outbox, the engine) owns its tables as a
// Schema and writes through DB.Write, so that a payment's state change, its ledger effect
// and the messages it sends commit in one transaction. On SQLite writes go through a single
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

// Options tune durability and batching. The zero value is durable and sensible. On
// PostgreSQL only BusyTimeout, MaxBatch (default 64 there), Readers, Writers, Groups and
// OnUpgrade apply: durability is the server's (synchronous_commit).
type Options struct {
	// Synchronous is SQLite's synchronous pragma: FULL (default) makes every commit
	// survive power loss (through the pipelined fsync described in the package comment);
	// EXTRA is SQLite's own, fsync inside every commit, unpipelined; NORMAL survives a
	// process crash but not an OS crash; OFF is for throwaway files.
	Synchronous string
	// BusyTimeout is how long a connection waits for a lock (default 5s); on
	// PostgreSQL, a Write's lock_timeout.
	BusyTimeout time.Duration
	// MaxBatch caps how many operations share one transaction (default 512).
	MaxBatch int
	// Readers is the size of the read-only connection pool (default 4).
	Readers int
	// Writers is, on PostgreSQL, how many connections run Write functions at once
	// (default 16); more Writes wait for one. SQLite has one writer.
	Writers int
	// Groups is, on PostgreSQL, how many transactions a process fills with Writes at once
	// (group commit, pggroup.go; default 2); a negative value runs every Write in a
	// transaction of its own. SQLite has one.
	Groups int
	// OnStatement, when set, is called with the text of every statement run on the
	// writer connection (the SAVEPOINT and RELEASE of a group run again included; the
	// group's BEGIN and COMMIT not), on the writer goroutine; on PostgreSQL, of every
	// statement a Write runs, BEGIN and COMMIT not, on the Write's goroutine.
	// Benchmarks use it to report statements per operation; it must be quick.
	OnStatement func(query string)
	// OnWriterThread, when set, is called once on SQLite, on the OS thread that the
	// writer keeps to itself, before its first operation; that thread ends with the
	// store. serve gives the thread a CPU of its own there (database.writer_cpu).
	// Unused on PostgreSQL.
	OnWriterThread func()
	// OnUpgrade, when set, is called before the migrations of a component whose tables
	// exist at an older version run (not for a new database): a migration that
	// rebuilds a table takes a while on a large database, and serve says so.
	OnUpgrade func(component string, from, to int)
}

// Schema is one component's tables: Migrations[i] brings it to version i+1 on SQLite,
// Postgres[i] on PostgreSQL. The two lists are versioned apart (each database records
// its own component's version in schema_versions) and need not be as long as each
// other: PostgreSQL's starts from the tables as they are now, not from their history.
// Both are append-only; a released migration is never edited. A component with no
// Postgres migrations cannot open on PostgreSQL (ErrNoPostgresSchema).
type Schema struct {
	Component  string
	Migrations []string
	Postgres   []string
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
	// pg is set on PostgreSQL, where it replaces everything above but reader and stats.
	pg *pgBackend

	stats stats

	mu     sync.RWMutex // guards closed; held for reading while sending on ops
	closed bool
}

// stats are the writer's running totals, read by Stats.
type stats struct {
	groups, ops, redos, statements atomic.Int64
	pipelined                      atomic.Int64
	runNanos, commitNanos          atomic.Int64
	syncs, syncNanos, syncedGroups atomic.Int64
	writes, waitNanos              atomic.Int64
	pages                          atomic.Int64
}

// answered counts a Write that reached the writer and got its answer, called at start.
func (s *stats) answered(start time.Time) {
	s.writes.Add(1)
	s.waitNanos.Add(int64(time.Since(start)))
}

// counting returns an OnStatement for the writer's connections that counts statements
// and passes them on to user, if set.
func (s *stats) counting(user func(query string)) func(query string) {
	return func(query string) {
		s.statements.Add(1)
		if user != nil {
			user(query)
		}
	}
}

// Stats are running totals of the writer since Open, for metrics: divide their
// differences over an interval to get group sizes, utilisation and latencies. On
// PostgreSQL a Write run alone is a group of one, Redos counts the groups rolled back to run
// their Writes alone and the runs again after a deadlock or serialization failure, Run
// sums the group loops' time (several run at once), and there are no syncs.
type Stats struct {
	Groups int64 // transactions committed (or failed)
	Ops    int64 // operations run in them (once each, however often a redo ran them)
	Redos  int64 // groups run again because an operation failed (see openGroup.add)
	// Statements counts the statements run on the writer's connections (BEGIN and
	// COMMIT left out, savepoints and the migrations' in).
	Statements int64
	// Pipelined counts those of them that PostgreSQL got in another's round trip
	// (Later): Statements - Pipelined is the round trips they took.
	Pipelined int64
	// Run is the writer's time inside operations (savepoints included) and Commit its
	// time in COMMIT (writing the WAL frames; with synchronous EXTRA, SQLite's fsync
	// too). While their sum grows as fast as the clock, the writer is the bottleneck.
	Run, Commit time.Duration
	// Syncs and Sync are the store's own fsyncs of the WAL (synchronous FULL) and the
	// time they took; SyncedGroups is how many groups they made durable.
	Syncs        int64
	Sync         time.Duration
	SyncedGroups int64
	// Writes counts the Writes that reached the writer and got their answer, and Waited
	// is the time from their calls to their answers: the queue, the group, COMMIT and
	// the fsync, which a caller waits out before it may acknowledge anything.
	Writes int64
	Waited time.Duration
	// Pages counts the database pages the writer's commits wrote to the WAL (SQLite;
	// 0 on PostgreSQL): each is a WAL frame written, checksummed, synced and later
	// copied into the database file, so pages per payment is what a payment costs the
	// disk and COMMIT.
	Pages int64
}

// Stats returns the writer's running totals.
func (db *DB) Stats() Stats {
	s := &db.stats
	return Stats{Groups: s.groups.Load(), Ops: s.ops.Load(), Redos: s.redos.Load(), Statements: s.statements.Load(), Pipelined: s.pipelined.Load(), Run: time.Duration(s.runNanos.Load()),
		Commit: time.Duration(s.commitNanos.Load()), Syncs: s.syncs.Load(), Sync: time.Duration(s.syncNanos.Load()),
		SyncedGroups: s.syncedGroups.Load(), Writes: s.writes.Load(), Waited: time.Duration(s.waitNanos.Load()),
		Pages: s.pages.Load()}
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
	db := &DB{path: path, stop: make(chan struct{}), ops: make(chan *op, opts.MaxBatch)}
	writer := sql.OpenDB(newConnector(dsn(false), db.stats.counting(opts.OnStatement)))
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

	db.writer, db.reader, db.ckpt = writer, reader, ckpt
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
	go db.loop(opts.MaxBatch, opts.OnWriterThread)
	go db.checkpointer()
	return db, nil
}

// Path is the file the database lives in; "" on PostgreSQL.
func (db *DB) Path() string { return db.path }

// Reader is a pool of read-only connections. Reads there see the last committed state;
// a read that decides a write must happen inside Write instead. On PostgreSQL every
// statement's "?" placeholders are rebound to "$n" (see rebind), and each statement
// outside a transaction sees its own snapshot: reads that must agree use ReadSnapshot.
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
//
// On PostgreSQL fn runs on the caller's goroutine in a transaction of its own, at READ
// COMMITTED, and runs again when the database aborts that transaction to break a
// deadlock (see postgres.go): what fn checks before it writes it must lock or write
// conditionally. There a failed statement aborts the whole transaction, where SQLite
// undoes only the statement: fn may go on after a statement's error only if it took a
// SAVEPOINT before the statement and rolls back to it. fn also runs again, on a new
// connection, when its connection broke before COMMIT was sent (the server restarted,
// or failed over to a standby: nothing was committed). When the connection breaks after
// COMMIT was sent, nobody knows whether it committed: Write then returns an error that
// is ErrCommitUnknown (FaultUnreachable), never nil; the caller acknowledges nothing,
// and its client's retry with the same idempotency key finds or makes the one result.
func (db *DB) Write(ctx context.Context, fn func(tx Tx) error) error {
	if db.readOnly {
		return ErrReadOnly
	}
	start := time.Now() // an observation for Stats; it decides nothing
	if db.pg != nil {
		defer db.stats.answered(start)
		return db.pg.write(ctx, fn)
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
	defer db.stats.answered(start)
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
	if db.pg != nil {
		return db.pg.close(db.reader)
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
	if db.pg == nil {
		db.checkFreeSpace()
	}
	return db.Write(ctx, func(tx Tx) error {
		_, err := tx.ExecContext(ctx, "UPDATE store_health SET checked = checked + 1")
		return err
	})
}
