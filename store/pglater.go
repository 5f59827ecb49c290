package store

import (
	"context"
	"database/sql/driver"
	"fmt"
	"io"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// Later runs in tx a statement whose outcome the caller does not read (no rows, no
// count, no error it would handle rather than fail with): a log row, an advisory lock.
// On SQLite it runs at once. On PostgreSQL, where each statement is a round trip to the
// server and the switch's Writes are made of a few dozen, it is held back and sent with
// tx's next statement, in one round trip (a pipeline, in order), or before the commit.
// Its error then fails that statement, or the Write: PostgreSQL aborts the whole
// transaction at a failed statement anyway, so the Write fails as it would have, only a
// statement later. A statement that reads (even a SELECT after it in the same Write)
// sees what it did.
func Later(ctx context.Context, tx Tx, query string, args ...any) error {
	if g, ok := tx.(*groupTx); ok && g.pgc != nil {
		g.pgc.later(query, args)
		return nil
	}
	_, err := tx.ExecContext(ctx, query, args...)
	return err
}

// laterStmt is a statement held back by Later, rebound.
type laterStmt struct {
	query string
	args  []any
}

func (c *pgDriverConn) later(query string, args []any) {
	if c.onStmt != nil {
		c.onStmt(query)
	}
	c.pending = append(c.pending, laterStmt{c.binds.rebind(query), args})
}

// flushLater sends the statements held back, if any, in one round trip.
func (c *pgDriverConn) flushLater(ctx context.Context) error {
	if len(c.pending) == 0 {
		return nil
	}
	br, err := c.sendPending(ctx, "", nil)
	if err != nil {
		return err
	}
	return c.note(br.Close())
}

// sendPending sends the held-back statements and then query (unless empty) as one batch,
// and reads the held-back ones' outcomes: the first that failed is the error, and the
// batch is closed. Else the caller reads query's outcome and closes the batch.
func (c *pgDriverConn) sendPending(ctx context.Context, query string, args []driver.NamedValue) (pgx.BatchResults, error) {
	b := &pgx.Batch{}
	for _, s := range c.pending {
		b.Queue(s.query, s.args...)
	}
	n := len(c.pending)
	c.pending = c.pending[:0]
	if query != "" {
		vals := make([]any, len(args))
		for i, a := range args {
			vals[i] = a.Value
		}
		b.Queue(c.binds.rebind(query), vals...)
	}
	if c.pipelined != nil { // all but the first of the batch ride in its round trip
		c.pipelined.Add(int64(b.Len() - 1))
	}
	br := c.Conn.Conn().SendBatch(ctx, b)
	for range n {
		if _, err := br.Exec(); err != nil {
			br.Close()
			if pgconn.SafeToRetry(err) {
				return nil, driver.ErrBadConn
			}
			return nil, c.note(fmt.Errorf("store: statement sent later: %w", err))
		}
	}
	return br, nil
}

// execPiped is ExecContext with statements held back: they and query in one round trip.
func (c *pgDriverConn) execPiped(ctx context.Context, query string, args []driver.NamedValue) (driver.Result, error) {
	br, err := c.sendPending(ctx, query, args)
	if err != nil {
		return nil, err
	}
	tag, err := br.Exec()
	if cerr := br.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, c.note(err)
	}
	return driver.RowsAffected(tag.RowsAffected()), nil
}

// queryPiped is QueryContext with statements held back: they and query in one round
// trip. The rows keep the batch open until they are closed.
func (c *pgDriverConn) queryPiped(ctx context.Context, query string, args []driver.NamedValue) (driver.Rows, error) {
	br, err := c.sendPending(ctx, query, args)
	if err != nil {
		return nil, err
	}
	rows, err := br.Query()
	if err != nil {
		br.Close()
		return nil, c.note(err)
	}
	// The first row is read now, as pgx's database/sql driver does, so that the
	// statement's error is QueryContext's.
	r := &pipedRows{c: c, br: br, rows: rows, preloaded: true}
	r.more = rows.Next()
	if err := rows.Err(); err != nil {
		r.Close()
		return nil, c.note(err)
	}
	return r, nil
}

// pipedRows are a pipelined query's rows, as database/sql reads them.
type pipedRows struct {
	c               *pgDriverConn
	br              pgx.BatchResults
	rows            pgx.Rows
	preloaded, more bool
	closed          bool
}

func (r *pipedRows) Columns() []string {
	fds := r.rows.FieldDescriptions()
	names := make([]string, len(fds))
	for i, fd := range fds {
		names[i] = fd.Name
	}
	return names
}

func (r *pipedRows) Close() error {
	if r.closed {
		return nil
	}
	r.closed = true
	r.rows.Close()
	err := r.rows.Err()
	if cerr := r.br.Close(); err == nil {
		err = cerr
	}
	return r.c.note(err)
}

func (r *pipedRows) Next(dest []driver.Value) error {
	if r.preloaded {
		r.preloaded = false
	} else {
		r.more = r.rows.Next()
	}
	if !r.more {
		if err := r.rows.Err(); err != nil {
			return r.c.note(err)
		}
		return io.EOF
	}
	vals, err := r.rows.Values()
	if err != nil {
		return err
	}
	for i, v := range vals {
		if dest[i], err = driverValue(v); err != nil {
			return fmt.Errorf("store: column %s: %w", r.rows.FieldDescriptions()[i].Name, err)
		}
	}
	return nil
}

// driverValue is v, a value pgx decoded, as one of the types database/sql takes from a
// driver.
func driverValue(v any) (driver.Value, error) {
	switch x := v.(type) {
	case nil, int64, float64, bool, []byte, string, time.Time:
		return x, nil
	case int32:
		return int64(x), nil
	case int16:
		return int64(x), nil
	case int8:
		return int64(x), nil
	case uint32:
		return int64(x), nil
	case float32:
		return float64(x), nil
	case driver.Valuer:
		return x.Value()
	}
	return nil, fmt.Errorf("a %T, which the store does not read from a pipelined query", v)
}
