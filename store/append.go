package store

import (
	"context"
	"database/sql/driver"
	"encoding/json"
	"fmt"
	"strings"
	"unicode/utf8"
)

// An Appender adds rows to a log table that no Write reads (a Write of the same group
// would not see them): a code's authentication history, a payment's. On SQLite, in a
// group whose operations run bare (writer.go), it keeps the rows and the writer inserts
// each table's rows of the group in one statement just before the COMMIT. Such rows were a fifth of
// a payment's statements, each with its own trip through database/sql, the driver and
// SQLite's statement machinery. Elsewhere a row is inserted at once: with Later on
// PostgreSQL, by itself in any other transaction.
//
// The rows commit with the group or not at all, as before. If the group's insert fails,
// the writer runs the group again with each operation in its own savepoint (redo), and
// then every row goes in at once, so that only the operation whose row fails fails. The
// rows of one table keep their order, and so their seq; rows of different tables were
// never ordered against each other.
type Appender struct {
	table   string
	columns int
	one     string // INSERT of one row, for everything but a bare SQLite group
	many    string // INSERT of a group's rows, given as one JSON array of arrays
}

// NewAppender returns the Appender of rows of table with columns, in that order.
func NewAppender(table string, columns ...string) *Appender {
	values := make([]string, len(columns))
	for i := range columns {
		values[i] = fmt.Sprintf("value ->> %d", i)
	}
	cols := strings.Join(columns, ", ")
	return &Appender{
		table:   table,
		columns: len(columns),
		one:     "INSERT INTO " + table + " (" + cols + ") VALUES (" + strings.TrimSuffix(strings.Repeat("?, ", len(columns)), ", ") + ")",
		many:    "INSERT INTO " + table + " (" + cols + ") SELECT " + strings.Join(values, ", ") + " FROM json_each(?)",
	}
}

// Append adds the row args (one per column) to tx: kept for the group's insert in a bare
// SQLite group, else inserted now (see Appender).
func (a *Appender) Append(ctx context.Context, tx Tx, args ...any) error {
	if len(args) != a.columns {
		return fmt.Errorf("store: append to %s: %d values for %d columns", a.table, len(args), a.columns)
	}
	// Kept only in SQLite's bare groups: PostgreSQL's transactions are finishing ones,
	// whose rows Later sends with the next statement.
	g, ok := tx.(*groupTx)
	if !ok || !g.group || g.finishing || g.pgc != nil {
		return Later(ctx, tx, a.one, args...)
	}
	row, ok := jsonRow(args)
	if !ok {
		// A value JSON would not carry as it is: the table's kept rows go first, so
		// that its rows stay in order.
		if err := g.flushAppender(ctx, a); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, a.one, args...)
		return err
	}
	for i := range g.appends {
		if g.appends[i].a == a {
			g.appends[i].rows = append(g.appends[i].rows, row)
			return nil
		}
	}
	g.appends = append(g.appends, keptRows{a: a, rows: []string{row}})
	return nil
}

// keptRows are an Appender's rows kept in a group.
type keptRows struct {
	a    *Appender
	rows []string // each a JSON array
}

// jsonRow is args as a JSON array that json_each and ->> give back exactly: text that is
// UTF-8, integers, NULL. Anything else (a blob, a float, text that is not UTF-8) is not.
func jsonRow(args []any) (string, bool) {
	vals := make([]any, len(args))
	for i, arg := range args {
		v, err := driver.DefaultParameterConverter.ConvertValue(arg)
		if err != nil {
			return "", false
		}
		switch v := v.(type) {
		case nil, int64:
			vals[i] = v
		case string:
			if !utf8.ValidString(v) {
				return "", false
			}
			vals[i] = v
		default:
			return "", false
		}
	}
	b, err := json.Marshal(vals)
	if err != nil {
		return "", false
	}
	return string(b), true
}

// flushAppends inserts every row the group's Appenders kept, one statement per table.
func (g *groupTx) flushAppends(ctx context.Context) error {
	for len(g.appends) > 0 {
		if err := g.flushAppender(ctx, g.appends[0].a); err != nil {
			return err
		}
	}
	return nil
}

// flushAppender inserts the rows a kept in the group, if any, and forgets them.
func (g *groupTx) flushAppender(ctx context.Context, a *Appender) error {
	for i, k := range g.appends {
		if k.a != a {
			continue
		}
		g.appends = append(g.appends[:i], g.appends[i+1:]...)
		if _, err := g.ExecContext(ctx, a.many, "["+strings.Join(k.rows, ",")+"]"); err != nil {
			return fmt.Errorf("store: append %d rows to %s: %w", len(k.rows), a.table, err)
		}
		return nil
	}
	return nil
}
