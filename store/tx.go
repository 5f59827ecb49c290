package store

import (
	"context"
	"database/sql"
	"database/sql/driver"

	"modernc.org/sqlite"
)

// Tx is what a Write function runs its statements on: the writer's group transaction.
// A Tx satisfies it too, so helpers that take a Tx also read inside a read-only
// transaction of Reader.
type Tx interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
	PrepareContext(ctx context.Context, query string) (*sql.Stmt, error)
}

// groupTx is a group's transaction: the writer's connection, held for the group, with
// SQLite's transaction opened and ended on the driver connection.
//
// It is not a Tx because database/sql gives every Tx a context that it can
// cancel, and then starts a goroutine for every query run in the transaction, to close
// the rows should that context end. The writer runs about eight queries per payment,
// and those goroutines (each with its context and the wake-up of an idle core) cost a
// tenth of serve's CPU per payment (loadgen, three alternating pairs: 1.02-1.07 against
// 1.15-1.24 ms). On a *sql.Conn with a context that cannot end, database/sql starts
// none. Every statement gets context.Background(): statements already ran to completion
// whatever their context said (see stmtcache.go), and Write checks the caller's context
// before the operation starts.
type groupTx struct {
	conn *sql.Conn
	tx   driver.Tx
	// finishing is set on a PostgreSQL Write's transaction, which runs finishers before
	// its COMMIT (finish.go).
	finishing bool
	finishers []keyedFinisher
	// group is set on a transaction whose failure is undone by running its Writes again
	// (Optimistic): a PostgreSQL group's (pggroup.go), and SQLite's while its operations
	// run bare (writer.go); alone, by RunAlone.
	group, alone bool
	// pgc is a PostgreSQL transaction's connection, which holds what Later held back.
	pgc *pgDriverConn
	// pages is what the commit wrote (SQLite): takePagesWritten.
	pages int64
	// appends are the rows Appenders keep for the group's COMMIT (SQLite, bare).
	appends []keptRows
}

// Optimistic reports whether tx is a group's transaction whose failure is undone by
// running its Writes again, each with its savepoints: on PostgreSQL, any failure (a
// Write's error, a failed statement) rolls the group back and runs each of its Writes
// alone; on SQLite, a failed operation makes the writer redo the group, each operation
// in a savepoint of its own. A package may then skip the savepoints that let a Write go
// on after one of its operations failed, and call RunAlone when an operation fails with
// its writes half done.
func Optimistic(tx Tx) bool {
	g, ok := tx.(*groupTx)
	return ok && g.group
}

// RunAlone marks tx, a group's transaction (Optimistic), as not to be committed: once the
// running Write returns, the group is rolled back and its Writes run again, each alone
// (PostgreSQL) or in a savepoint of its own (SQLite), whatever the Write returned. On any
// other transaction it does nothing.
func RunAlone(tx Tx) {
	if g, ok := tx.(*groupTx); ok && g.group {
		g.alone = true
	}
}

var _ Tx = (*groupTx)(nil)

// beginGroup takes the writer's connection and begins a transaction on it (IMMEDIATE,
// from the DSN's _txlock).
func beginGroup(writer *sql.DB) (*groupTx, error) {
	conn, err := writer.Conn(context.Background())
	if err != nil {
		return nil, err
	}
	t := &groupTx{conn: conn}
	err = conn.Raw(func(dc any) error {
		var err error
		t.tx, err = dc.(driver.ConnBeginTx).BeginTx(context.Background(), driver.TxOptions{})
		return err
	})
	if err != nil {
		conn.Close()
		return nil, err
	}
	return t, nil
}

// commit commits the transaction and gives the connection back. A COMMIT that fails
// (SQLITE_FULL, an I/O error) may leave SQLite's transaction open; modernc's Commit then
// rolls it back, so the next group starts clean once the disk recovers
// (TestFailedCommitDoesNotBreakLaterWrites).
func (t *groupTx) commit() error {
	err := t.conn.Raw(func(dc any) error {
		err := t.tx.Commit()
		t.pages = takePagesWritten(dc)
		return err
	})
	t.conn.Close()
	return err
}

// takePagesWritten returns the pages SQLite wrote for the connection dc since the last
// call (to the WAL, at its commits) and starts the count again; 0 on PostgreSQL. Unlike
// the writer's time, it does not move with the host's speed: a change to what a payment
// writes shows in it at once (Stats.Pages).
func takePagesWritten(dc any) int64 {
	c, ok := dc.(*cachingConn)
	if !ok {
		return 0
	}
	s, ok := c.inner.(sqlite.DBStatus)
	if !ok {
		return 0
	}
	n, _, err := s.Status(sqlite.DBStatusCacheWrite, true)
	if err != nil {
		return 0
	}
	return int64(n)
}

// rollback rolls the transaction back and gives the connection back.
func (t *groupTx) rollback() error {
	if t.pgc != nil {
		t.pgc.pending = t.pgc.pending[:0]
	}
	err := t.conn.Raw(func(any) error { return t.tx.Rollback() })
	t.conn.Close()
	return err
}

func (t *groupTx) ExecContext(_ context.Context, query string, args ...any) (sql.Result, error) {
	return t.conn.ExecContext(context.Background(), query, args...)
}

func (t *groupTx) QueryContext(_ context.Context, query string, args ...any) (*sql.Rows, error) {
	return t.conn.QueryContext(context.Background(), query, args...)
}

func (t *groupTx) QueryRowContext(_ context.Context, query string, args ...any) *sql.Row {
	return t.conn.QueryRowContext(context.Background(), query, args...)
}

func (t *groupTx) PrepareContext(_ context.Context, query string) (*sql.Stmt, error) {
	return t.conn.PrepareContext(context.Background(), query)
}
