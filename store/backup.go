package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strings"
)

// ErrReadOnly is Write's answer on a database opened with OpenCopy.
var ErrReadOnly = errors.New("store: database opened read-only (a copy being checked)")

// ErrSQLiteOnly is the answer of what only a SQLite file can do (IntegrityCheck) on
// PostgreSQL, whose server checks its own pages.
var ErrSQLiteOnly = errors.New("store: only for a SQLite database")

// Backup writes a consistent copy of the database file at src into dst, which must
// exist and be empty (the caller creates it, new and private, so that the copy is never
// written through a file someone else prepared) or not exist.
//
// It runs SQLite's VACUUM INTO on a read-only connection of its own, in one read
// transaction: with WAL, a reader never blocks the writer, so serve goes on committing
// while the copy is made, and the copy is the database as of the moment the
// transaction began. What it costs the writer is CPU and disk bandwidth, and that
// checkpoints cannot restart the WAL until the copy is done (the WAL grows meanwhile).
// VACUUM INTO also leaves out free pages, so the copy is as small as the data.
//
// The copy is synced and turned into a rollback-journal file, so that it is one
// self-contained file: no -wal or -shm beside it is needed to read it.
func Backup(ctx context.Context, src, dst string) error {
	if _, err := os.Stat(src); err != nil {
		return fmt.Errorf("store: backup %q: %w", src, err)
	}
	q := url.Values{}
	q.Add("mode", "ro")
	q.Add("_pragma", "busy_timeout(5000)")
	db, err := sql.Open("sqlite", "file:"+src+"?"+q.Encode())
	if err != nil {
		return fmt.Errorf("store: backup %q: %w", src, err)
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	if _, err := db.ExecContext(ctx, "VACUUM INTO ?", dst); err != nil {
		return fmt.Errorf("store: backup %q into %q: %w", src, dst, err)
	}
	if err := db.Close(); err != nil {
		return fmt.Errorf("store: backup %q: %w", src, err)
	}
	return settleCopy(ctx, dst)
}

// settleCopy makes the database file at path self-contained (rollback journal, no WAL)
// and durable.
func settleCopy(ctx context.Context, path string) error {
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(5000)")
	if err != nil {
		return fmt.Errorf("store: open copy %q: %w", path, err)
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	var mode string
	if err := db.QueryRowContext(ctx, "PRAGMA journal_mode=DELETE").Scan(&mode); err != nil {
		return fmt.Errorf("store: copy %q: journal mode: %w", path, err)
	}
	if err := db.Close(); err != nil {
		return fmt.Errorf("store: close copy %q: %w", path, err)
	}
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return fmt.Errorf("store: sync copy %q: %w", path, err)
	}
	defer f.Close()
	if err := f.Sync(); err != nil {
		return fmt.Errorf("store: sync copy %q: %w", path, err)
	}
	return nil
}

// OpenCopy opens a copy of a database (a backup being written, or a database being
// restored) to check it: it is made self-contained first (see Backup), and then only
// read, through Reader, so that the ledger's own verification runs on it as on the live
// database. Write refuses with ErrReadOnly. A copy from a newer schema is refused.
func OpenCopy(ctx context.Context, path string, schemas ...Schema) (*DB, error) {
	if _, err := os.Stat(path); err != nil {
		return nil, fmt.Errorf("store: open copy %q: %w", path, err)
	}
	if err := settleCopy(ctx, path); err != nil {
		return nil, err
	}
	q := url.Values{}
	q.Add("mode", "ro")
	q.Add("_pragma", "busy_timeout(5000)")
	q.Add("_pragma", "query_only(1)")
	reader, err := sql.Open("sqlite", "file:"+path+"?"+q.Encode())
	if err != nil {
		return nil, fmt.Errorf("store: open copy %q: %w", path, err)
	}
	for _, s := range schemas {
		var have int
		err := reader.QueryRowContext(ctx, "SELECT version FROM schema_versions WHERE component = ?", s.Component).Scan(&have)
		if err != nil {
			reader.Close()
			return nil, fmt.Errorf("store: open copy %q: %s schema: %w", path, s.Component, err)
		}
		if have > len(s.Migrations) {
			reader.Close()
			return nil, fmt.Errorf("%w: %s is at version %d, this binary knows %d", ErrNewerSchema, s.Component, have, len(s.Migrations))
		}
	}
	return &DB{path: path, reader: reader, readOnly: true, closed: true}, nil
}

// IntegrityCheck runs SQLite's integrity_check over the whole file: every page, index
// entry and constraint. It reads everything, so it takes a while on a large database.
func (db *DB) IntegrityCheck(ctx context.Context) error {
	if db.pg != nil {
		return ErrSQLiteOnly
	}
	rows, err := db.reader.QueryContext(ctx, "PRAGMA integrity_check")
	if err != nil {
		return fmt.Errorf("store: integrity check %q: %w", db.path, err)
	}
	defer rows.Close()
	var problems []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			return fmt.Errorf("store: integrity check %q: %w", db.path, err)
		}
		if s != "ok" && len(problems) < 10 {
			problems = append(problems, s)
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("store: integrity check %q: %w", db.path, err)
	}
	if len(problems) > 0 {
		return fmt.Errorf("store: integrity check %q: %s", db.path, strings.Join(problems, "; "))
	}
	return nil
}
