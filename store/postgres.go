package store

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib"
)

// On PostgreSQL several processes write at once, and the database serialises what
// conflicts (row locks, unique constraints). In a process, Writes are committed in groups
// (pggroup.go); a Write whose group failed runs alone, in a transaction of its own on a
// pooled connection. A transaction that PostgreSQL aborts to break a deadlock (40P01) or,
// at a stricter isolation, a serialization failure (40001), is rolled back and run again,
// up to maxWriteAttempts times, so a Write function may run more than once here too. A
// transaction that met one of those errors is run again even when its function handled
// the error and returned nil: an answer decided by a statement the database refused for
// reasons of timing is not an answer.
//
// Transactions run at READ COMMITTED, PostgreSQL's default: every statement sees what was
// committed when it started, and a package that checks before it writes must lock what
// it checks (SELECT ... FOR UPDATE) or write conditionally (UPDATE ... WHERE balance >=
// ?), because another process may change it between the check and the write.

// maxWriteAttempts bounds how often a Write function runs when its transactions keep
// being chosen as a deadlock's victim or failing to serialise.
const maxWriteAttempts = 10

// pgBackend is what a DB on PostgreSQL has instead of SQLite's writer.
type pgBackend struct {
	writer *sql.DB // connections that run Write functions
	stats  *stats

	ops      chan *op // Writes waiting for a group (pggroup.go); nil: each runs alone
	maxBatch int
	loops    sync.WaitGroup

	mu       sync.RWMutex // guards closed; held for reading while a Write registers
	closed   bool
	inflight sync.WaitGroup
}

// OpenPostgres opens the PostgreSQL database at url (postgres://user@host:port/db?...,
// or a multi-host URL with target_session_attrs=read-write), applies the schemas' pending
// PostgreSQL migrations (Schema.Postgres) under an advisory lock, so that of several
// processes starting at once one migrates and the others wait, and returns the DB.
// Options used here: BusyTimeout (PostgreSQL's lock_timeout for writes), Readers, Writers
// and OnUpgrade. ctx bounds the connection and the wait for another process's migration.
func OpenPostgres(ctx context.Context, url string, opts Options, schemas ...Schema) (*DB, error) {
	if opts.BusyTimeout <= 0 {
		opts.BusyTimeout = 5 * time.Second
	}
	if opts.Readers <= 0 {
		opts.Readers = 4
	}
	if opts.Writers <= 0 {
		opts.Writers = 16
	}
	if opts.Groups == 0 {
		opts.Groups = 2
	}
	cfg, err := pgx.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("store: postgres url: %w", err)
	}
	configureConnect(&cfg.Config)
	where := hostsOf(&cfg.Config) + "/" + cfg.Database // never the password
	if cfg.RuntimeParams == nil {
		cfg.RuntimeParams = map[string]string{}
	}
	if _, ok := cfg.RuntimeParams["application_name"]; !ok {
		cfg.RuntimeParams["application_name"] = "payswitch"
	}
	binds := &rebinder{}
	writerCfg := cfg.Copy()
	// A Write waits for a row lock at most BusyTimeout, as it waits for SQLite's lock.
	writerCfg.RuntimeParams["lock_timeout"] = strconv.FormatInt(opts.BusyTimeout.Milliseconds(), 10)
	readerCfg := cfg.Copy()

	db := &DB{}
	writer := sql.OpenDB(&pgConnector{inner: stdlib.GetConnector(*writerCfg), binds: binds, onStmt: db.stats.counting(opts.OnStatement),
		pipelined: &db.stats.pipelined})
	writer.SetMaxOpenConns(opts.Writers)
	writer.SetMaxIdleConns(opts.Writers)
	if err := writer.PingContext(ctx); err != nil {
		writer.Close()
		return nil, fmt.Errorf("store: open postgres %s: no server there takes writes: %w", where, err)
	}
	if err := migratePostgres(ctx, writer, schemas, opts.OnUpgrade); err != nil {
		writer.Close()
		return nil, fmt.Errorf("store: migrate postgres %s: %w", where, err)
	}
	// Reads cannot write by mistake, as SQLite's reader connections cannot (query_only).
	// Set once connected, not as a start-up parameter: a multi-host URL's
	// target_session_attrs=read-write check (SHOW transaction_read_only) would then
	// refuse every host, the primary too.
	readOnly := stdlib.OptionAfterConnect(func(ctx context.Context, c *pgx.Conn) error {
		_, err := c.Exec(ctx, "SET default_transaction_read_only = on")
		return err
	})
	reader := sql.OpenDB(&pgConnector{inner: stdlib.GetConnector(*readerCfg, readOnly), binds: binds})
	reader.SetMaxOpenConns(opts.Readers)
	reader.SetMaxIdleConns(opts.Readers)
	db.reader = reader
	db.pg = &pgBackend{writer: writer, stats: &db.stats, maxBatch: opts.MaxBatch}
	if db.pg.maxBatch <= 0 {
		db.pg.maxBatch = pgGroupBatch
	}
	if opts.Groups > 0 {
		db.pg.ops = make(chan *op, db.pg.maxBatch)
		for range min(opts.Groups, opts.Writers) {
			db.pg.loops.Add(1)
			go db.pg.groupLoop()
		}
	}
	return db, nil
}

// pgConnector opens pgx connections whose statements are rebound (see rebind).
type pgConnector struct {
	inner  driver.Connector
	binds  *rebinder
	onStmt func(query string) // Options.OnStatement, on writer connections only
	// pipelined counts the statements sent in another's round trip, on writer connections.
	pipelined *atomic.Int64
}

func (c *pgConnector) Connect(ctx context.Context) (driver.Conn, error) {
	conn, err := c.inner.Connect(ctx)
	if err != nil {
		return nil, err
	}
	return &pgDriverConn{Conn: conn.(*stdlib.Conn), binds: c.binds, onStmt: c.onStmt, pipelined: c.pipelined}, nil
}

func (c *pgConnector) Driver() driver.Driver { return c.inner.Driver() }

// pgDriverConn is pgx's database/sql connection with every statement rebound, and with
// the first deadlock or serialization failure of the transaction under way noted.
type pgDriverConn struct {
	*stdlib.Conn
	binds     *rebinder
	onStmt    func(query string)
	pipelined *atomic.Int64
	// retryable is the first error of the transaction under way that makes running it
	// again worthwhile; the Write that holds the connection clears and reads it.
	retryable error
	// pending are the statements held back by Later, sent with the next (pglater.go).
	pending []laterStmt
}

var (
	_ driver.ExecerContext      = (*pgDriverConn)(nil)
	_ driver.QueryerContext     = (*pgDriverConn)(nil)
	_ driver.ConnPrepareContext = (*pgDriverConn)(nil)
	_ driver.ConnBeginTx        = (*pgDriverConn)(nil)
	_ driver.NamedValueChecker  = (*pgDriverConn)(nil)
	_ driver.SessionResetter    = (*pgDriverConn)(nil)
)

// note notes err if it is retryable, and returns it.
func (c *pgDriverConn) note(err error) error {
	if err != nil && c.retryable == nil && isRetryable(err) {
		c.retryable = err
	}
	return err
}

func (c *pgDriverConn) ExecContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Result, error) {
	if c.onStmt != nil {
		c.onStmt(query)
	}
	if len(c.pending) > 0 {
		return c.execPiped(ctx, query, args)
	}
	r, err := c.Conn.ExecContext(ctx, c.binds.rebind(query), args)
	c.note(err)
	return r, err
}

func (c *pgDriverConn) QueryContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Rows, error) {
	if c.onStmt != nil {
		c.onStmt(query)
	}
	if len(c.pending) > 0 {
		return c.queryPiped(ctx, query, args)
	}
	r, err := c.Conn.QueryContext(ctx, c.binds.rebind(query), args)
	c.note(err)
	return r, err
}

func (c *pgDriverConn) PrepareContext(ctx context.Context, query string) (driver.Stmt, error) {
	// A prepared statement runs past this connection's methods: what Later held back
	// goes first.
	if err := c.flushLater(ctx); err != nil {
		return nil, err
	}
	return c.Conn.PrepareContext(ctx, c.binds.rebind(query))
}

// ResetSession forgets what Later held back for a transaction that ended without it.
func (c *pgDriverConn) ResetSession(ctx context.Context) error {
	c.pending = c.pending[:0]
	return c.Conn.ResetSession(ctx)
}

func (c *pgDriverConn) Prepare(query string) (driver.Stmt, error) {
	return c.PrepareContext(context.Background(), query)
}

// isRetryable reports whether err is PostgreSQL aborting a transaction that may well
// succeed if run again: a serialization failure or a deadlock.
func isRetryable(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && (pe.Code == "40001" || pe.Code == "40P01")
}

// write is DB.Write on PostgreSQL.
func (p *pgBackend) write(ctx context.Context, fn func(Tx) error) error {
	p.mu.RLock()
	if p.closed {
		p.mu.RUnlock()
		return ErrClosed
	}
	p.inflight.Add(1)
	p.mu.RUnlock()
	defer p.inflight.Done()
	if p.ops != nil {
		if err, alone := p.inGroup(ctx, fn); !alone {
			return err
		}
	}
	for attempt := 1; ; attempt++ {
		// Before each run: a caller that gave up is told so, and nothing it asked for ran
		// (or what ran was rolled back).
		if err := ctx.Err(); err != nil {
			return err
		}
		again, err := p.attempt(ctx, fn)
		if !again || attempt == maxWriteAttempts {
			return err
		}
		p.stats.redos.Add(1)
		// Deadlock victims that start again at once tend to meet again.
		time.Sleep(time.Duration(rand.Int64N(int64(time.Millisecond) << min(attempt, 5))))
	}
}

// attempt runs fn once in a transaction of its own; again says the transaction was
// rolled back for a reason that running it again may cure: a deadlock or serialization
// failure, or a connection that broke before COMMIT was sent (a pooled connection to a
// server that has since gone: the next attempt connects afresh, to whichever host takes
// writes now, and fails at once if none does).
func (p *pgBackend) attempt(ctx context.Context, fn func(Tx) error) (again bool, err error) {
	conn, dc, dtx, err := p.begin(ctx)
	if err != nil {
		return dc != nil && dc.broken(), err
	}
	tx := &groupTx{conn: conn, tx: dtx, finishing: true, pgc: dc}
	start := time.Now()
	err = run(fn, tx)
	if err == nil && dc.retryable == nil {
		err = tx.finish(context.Background())
	}
	if err == nil && dc.retryable == nil {
		err = dc.flushLater(context.Background())
	}
	p.stats.runNanos.Add(int64(time.Since(start)))
	// The connection is ours until commit or rollback hands it back.
	if dc.broken() {
		// Whatever fn made of its statements' errors, the transaction is gone, and
		// uncommitted: the server ends a transaction whose client went away.
		tx.rollback()
		if cause := errors.Join(err, dc.retryable); cause != nil {
			return true, fmt.Errorf("%w: %w", errConnLost, cause)
		}
		return true, errConnLost
	}
	retryable := dc.retryable
	if err == nil && retryable == nil {
		start = time.Now()
		err = tx.commit()
		p.stats.commitNanos.Add(int64(time.Since(start)))
		p.stats.groups.Add(1)
		p.stats.ops.Add(1)
		if err == nil {
			return false, nil
		}
		if commitUnknown(err) {
			return false, fmt.Errorf("%w: %w", ErrCommitUnknown, err)
		}
		if pgconn.SafeToRetry(err) { // COMMIT was never sent: nothing committed
			return true, fmt.Errorf("%w: commit: %w", errConnLost, err)
		}
		return isRetryable(err), fmt.Errorf("store: commit: %w", err)
	}
	tx.rollback()
	if retryable != nil {
		if err == nil {
			err = retryable
		}
		return true, err
	}
	return isRetryable(err), err
}

// begin takes a writer connection and begins a transaction on it; dc is set when the
// connection was taken, whether or not BEGIN then worked.
func (p *pgBackend) begin(ctx context.Context) (*sql.Conn, *pgDriverConn, driver.Tx, error) {
	conn, err := p.writer.Conn(ctx) // waiting for a free connection is still queueing
	if err != nil {
		return nil, nil, nil, fmt.Errorf("store: connection: %w", err)
	}
	var dc *pgDriverConn
	var dtx driver.Tx
	err = conn.Raw(func(c any) error {
		dc = c.(*pgDriverConn)
		dc.retryable, dc.pending = nil, dc.pending[:0]
		var err error
		dtx, err = dc.BeginTx(context.Background(), driver.TxOptions{})
		return err
	})
	if err != nil {
		conn.Close()
		return nil, dc, nil, fmt.Errorf("store: begin: %w", err)
	}
	return conn, dc, dtx, nil
}

// ErrCommitUnknown is Write's error when the connection broke, or the server ended the
// session, after COMMIT was sent and before its answer came: the transaction may have
// committed or not, and nobody can tell from here (with a synchronous standby, a COMMIT
// that the standby had written before the primary died is on the standby, and is there
// once it is promoted). Write never reports it as a success, and does not run the
// function again, since it cannot know whether running it twice is harmless. The
// caller must not acknowledge the request; it tells its client to retry (FaultOf is
// FaultUnreachable), and the retry, with the same idempotency key, finds the first
// attempt's result if it committed and makes it otherwise: exactly one either way.
var ErrCommitUnknown = errors.New("store: the database's answer to COMMIT was lost; the transaction may or may not have committed")

// errConnLost is Write's error when the connection broke before COMMIT was sent (so
// nothing committed) and running the function again failed too or was not tried.
var errConnLost = errors.New("store: the connection to the database broke")

// broken reports whether the connection is closed: broken by the network or by the
// server (a FATAL error, a shutdown), or closed by pgx after such an error.
func (c *pgDriverConn) broken() bool { return c.Conn.Conn().IsClosed() }

// IsValid tells database/sql to discard a broken connection when it is handed back,
// rather than when it is next taken.
func (c *pgDriverConn) IsValid() bool { return !c.broken() }

// commitUnknown reports whether err, COMMIT's error, leaves it unknown whether the
// transaction committed: the COMMIT was sent (or may have been) and no answer says it
// failed. An error PostgreSQL answered with (a deferred constraint, a serialization
// failure) means it did not commit, except those that end the session while a commit
// waits for the standby (57P01 and its kin) or cancel that wait (57014): the
// transaction is then committed on the primary, whatever the standby has.
func commitUnknown(err error) bool {
	if pgconn.SafeToRetry(err) || errors.Is(err, pgx.ErrTxCommitRollback) {
		return false
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return strings.HasPrefix(pe.Code, "08") || strings.HasPrefix(pe.Code, "57")
	}
	return true
}

// close is DB.Close on PostgreSQL: it waits for the Writes under way.
func (p *pgBackend) close(reader *sql.DB) error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil
	}
	p.closed = true
	p.mu.Unlock()
	p.inflight.Wait()
	if p.ops != nil {
		close(p.ops)
		p.loops.Wait()
	}
	return errors.Join(p.writer.Close(), reader.Close())
}
