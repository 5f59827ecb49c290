package store

import (
	"context"
	"database/sql/driver"
	"errors"

	"modernc.org/sqlite"
)

// The switch runs the same few dozen statements millions of times. Parsing each one
// anew cost a third of the CPU of a payment, so every connection keeps its prepared
// statements, keyed by their text, for as long as it lives. modernc's prepared
// statements keep SQLite's compiled program, and SQLite recompiles one itself if the
// schema changes under it.

// Statements also run without their context's cancellation. For a context that can be
// cancelled, modernc starts a watcher goroutine and installs a progress handler for every
// statement, which cost more than the statement itself. The switch's statements are short
// and each operation's context is checked before it starts (store.Write), so nothing is
// lost by letting a statement that has started finish.

// maxCachedStmts bounds the cache. When it is full, a new statement takes the place of
// the one least recently used: statements whose text varies with their rows (a batch's
// VALUES list, an IN list) would otherwise fill it for good, and a statement first run
// after that would be prepared anew at every use.
const maxCachedStmts = 256

// connector opens SQLite connections that cache their statements.
type connector struct {
	dsn    string
	drv    *sqlite.Driver
	onStmt func(query string) // Options.OnStatement; nil mostly
}

func newConnector(dsn string, onStmt func(string)) *connector {
	return &connector{dsn: dsn, drv: &sqlite.Driver{}, onStmt: onStmt}
}

func (c *connector) Connect(context.Context) (driver.Conn, error) {
	conn, err := c.drv.Open(c.dsn)
	if err != nil {
		return nil, err
	}
	return &cachingConn{inner: conn, stmts: make(map[string]*cachedStmt), onStmt: c.onStmt}, nil
}

func (c *connector) Driver() driver.Driver { return c.drv }

// cachingConn is used by one goroutine at a time (database/sql guarantees it), so its
// cache needs no lock.
type cachingConn struct {
	inner  driver.Conn
	stmts  map[string]*cachedStmt
	onStmt func(query string)
	uses   uint64 // statements run so far: each cached statement's last is its age
}

type cachedStmt struct {
	stmt     driver.Stmt
	busy     bool   // rows from it are still open: a nested use must not reset it
	lastUsed uint64 // cachingConn.uses when it last ran
}

var (
	_ driver.ExecerContext      = (*cachingConn)(nil)
	_ driver.QueryerContext     = (*cachingConn)(nil)
	_ driver.ConnBeginTx        = (*cachingConn)(nil)
	_ driver.ConnPrepareContext = (*cachingConn)(nil)
	_ driver.SessionResetter    = (*cachingConn)(nil)
	_ driver.Validator          = (*cachingConn)(nil)
	_ driver.Pinger             = (*cachingConn)(nil)
)

// stmt returns the cached statement for query, preparing it on first use; nil when the
// cache is full or the statement is busy, and the caller then goes the uncached way.
func (c *cachingConn) stmt(ctx context.Context, query string) (*cachedStmt, error) {
	if c.onStmt != nil {
		c.onStmt(query)
	}
	c.uses++
	if s, ok := c.stmts[query]; ok {
		if s.busy {
			return nil, nil
		}
		s.lastUsed = c.uses
		return s, nil
	}
	if len(c.stmts) >= maxCachedStmts && !c.evictOldest() {
		return nil, nil // every cached statement has rows open
	}
	ds, err := c.inner.(driver.ConnPrepareContext).PrepareContext(ctx, query)
	if err != nil {
		return nil, err
	}
	s := &cachedStmt{stmt: ds, lastUsed: c.uses}
	c.stmts[query] = s
	return s, nil
}

// evictOldest closes and forgets the least recently used statement that has no rows
// open; false when there is none.
func (c *cachingConn) evictOldest() bool {
	var (
		oldest string
		found  *cachedStmt
	)
	for q, s := range c.stmts {
		if !s.busy && (found == nil || s.lastUsed < found.lastUsed) {
			oldest, found = q, s
		}
	}
	if found == nil {
		return false
	}
	delete(c.stmts, oldest)
	found.stmt.Close() // finalizes SQLite's program; nothing of it is in use
	return true
}

func (c *cachingConn) ExecContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Result, error) {
	ctx = context.WithoutCancel(ctx)
	s, err := c.stmt(ctx, query)
	if err != nil {
		return nil, err
	}
	if s == nil {
		return c.inner.(driver.ExecerContext).ExecContext(ctx, query, args)
	}
	return s.stmt.(driver.StmtExecContext).ExecContext(ctx, args)
}

func (c *cachingConn) QueryContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Rows, error) {
	ctx = context.WithoutCancel(ctx)
	s, err := c.stmt(ctx, query)
	if err != nil {
		return nil, err
	}
	if s == nil {
		return c.inner.(driver.QueryerContext).QueryContext(ctx, query, args)
	}
	rows, err := s.stmt.(driver.StmtQueryContext).QueryContext(ctx, args)
	if err != nil {
		return nil, err
	}
	s.busy = true
	return &cachedRows{Rows: rows, s: s}, nil
}

// cachedRows frees its statement for reuse when closed (modernc resets it then).
type cachedRows struct {
	driver.Rows
	s *cachedStmt
}

func (r *cachedRows) Close() error {
	err := r.Rows.Close()
	r.s.busy = false
	return err
}

func (c *cachingConn) Prepare(query string) (driver.Stmt, error) { return c.inner.Prepare(query) }

func (c *cachingConn) PrepareContext(ctx context.Context, query string) (driver.Stmt, error) {
	return c.inner.(driver.ConnPrepareContext).PrepareContext(ctx, query)
}

func (c *cachingConn) Begin() (driver.Tx, error) {
	return c.BeginTx(context.Background(), driver.TxOptions{})
}

func (c *cachingConn) BeginTx(ctx context.Context, opts driver.TxOptions) (driver.Tx, error) {
	return c.inner.(driver.ConnBeginTx).BeginTx(context.WithoutCancel(ctx), opts)
}

func (c *cachingConn) Close() error {
	var errs []error
	for q, s := range c.stmts {
		errs = append(errs, s.stmt.Close())
		delete(c.stmts, q)
	}
	errs = append(errs, c.inner.Close())
	return errors.Join(errs...)
}

func (c *cachingConn) ResetSession(ctx context.Context) error {
	if r, ok := c.inner.(driver.SessionResetter); ok {
		return r.ResetSession(ctx)
	}
	return nil
}

func (c *cachingConn) IsValid() bool {
	if v, ok := c.inner.(driver.Validator); ok {
		return v.IsValid()
	}
	return true
}

func (c *cachingConn) Ping(ctx context.Context) error {
	if p, ok := c.inner.(driver.Pinger); ok {
		return p.Ping(ctx)
	}
	return nil
}
