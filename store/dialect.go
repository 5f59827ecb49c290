package store

import (
	"context"
	"database/sql"
	"errors"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// Dialect names the database a DB runs on, for the statements where SQLite and
// PostgreSQL disagree (DDL, FOR UPDATE, some functions): a package writes one text where
// they agree and branches on DB.Dialect where they do not.
type Dialect string

// The dialects.
const (
	SQLite   Dialect = "sqlite"
	Postgres Dialect = "postgres"
)

// Dialect is the database db runs on.
func (db *DB) Dialect() Dialect {
	if db.pg != nil {
		return Postgres
	}
	return SQLite
}

// snapshotOptions make a read-only transaction in which every statement sees the same
// committed state: SQLite's read transactions do so anyway (modernc ignores the level);
// PostgreSQL's default level, READ COMMITTED, takes a new snapshot per statement.
var snapshotOptions = &sql.TxOptions{ReadOnly: true, Isolation: sql.LevelRepeatableRead}

// ReadSnapshot begins a read-only transaction on Reader in which every statement sees
// the same committed state, for reads that must agree with each other (a verification,
// an export). The caller rolls it back when done.
func (db *DB) ReadSnapshot(ctx context.Context) (*sql.Tx, error) {
	return db.reader.BeginTx(ctx, snapshotOptions)
}

// UniqueViolation reports whether err is a violation of a UNIQUE or PRIMARY KEY
// constraint (or unique index) and, if so, names it by its columns the way SQLite does:
// "table.column", or "table.a, table.b" for several. The name is the same on both
// drivers, because SQLite never reports a constraint's or an index's own name, only its
// columns; on PostgreSQL the columns are read from the error's detail ("Key (a, b)=...",
// always sent to the table's owner), and the constraint's own name is returned should
// the detail be missing.
func UniqueViolation(err error) (name string, ok bool) {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		if pe.Code != "23505" {
			return "", false
		}
		cols, found := strings.CutPrefix(pe.Detail, "Key (")
		if i := strings.Index(cols, ")=("); found && i >= 0 {
			var names []string
			for _, c := range strings.Split(cols[:i], ", ") {
				names = append(names, pe.TableName+"."+strings.Trim(c, `"`))
			}
			return strings.Join(names, ", "), true
		}
		return pe.ConstraintName, true
	}
	var se *sqlite.Error
	if errors.As(err, &se) {
		if c := se.Code(); c != sqlite3.SQLITE_CONSTRAINT_UNIQUE && c != sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY {
			return "", false
		}
		msg := se.Error()
		if i := strings.LastIndex(msg, "failed: "); i >= 0 {
			msg = msg[i+len("failed: "):]
		}
		if i := strings.LastIndex(msg, " ("); i >= 0 { // modernc appends " (code)"
			msg = msg[:i]
		}
		return msg, true
	}
	return "", false
}

// IsUniqueViolation reports whether err violates the unique constraint named name, in
// UniqueViolation's form ("accounts.msisdn").
func IsUniqueViolation(err error, name string) bool {
	got, ok := UniqueViolation(err)
	return ok && got == name
}
