package store

import (
	"context"
	"database/sql/driver"
	"fmt"
	"strconv"
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
	// (jsonb_each parses it once and hands each row to ->> as JSONB; json_each handed
	// it over as text, which each ->> parsed again)
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
		many:    "INSERT INTO " + table + " (" + cols + ") SELECT " + strings.Join(values, ", ") + " FROM jsonb_each(?)",
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

// jsonRow is args as a JSON array that jsonb_each and ->> give back exactly: text that is
// UTF-8, integers, NULL. Anything else (a blob, a float, text that is not UTF-8) is not.
// It runs on the store's writer, for every row kept: written by hand, it allocates the
// array once, where encoding/json reflected on every value.
func jsonRow(args []any) (string, bool) {
	b := make([]byte, 0, 128)
	b = append(b, '[')
	for i, arg := range args {
		if i > 0 {
			b = append(b, ',')
		}
		v, err := driver.DefaultParameterConverter.ConvertValue(arg)
		if err != nil {
			return "", false
		}
		switch v := v.(type) {
		case nil:
			b = append(b, "null"...)
		case int64:
			b = strconv.AppendInt(b, v, 10)
		case string:
			if !utf8.ValidString(v) {
				return "", false
			}
			b = appendJSONString(b, v)
		default:
			return "", false
		}
	}
	return string(append(b, ']')), true
}

// appendJSONString appends s, valid UTF-8, to b as a JSON string: quotes, backslashes
// and control characters escaped, everything else as it is.
func appendJSONString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' {
			continue
		}
		b = append(b, s[start:i]...)
		switch c {
		case '"', '\\':
			b = append(b, '\\', c)
		case '\n':
			b = append(b, '\\', 'n')
		case '\r':
			b = append(b, '\\', 'r')
		case '\t':
			b = append(b, '\\', 't')
		default:
			b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
		}
		start = i + 1
	}
	b = append(b, s[start:]...)
	return append(b, '"')
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
