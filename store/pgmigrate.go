package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
)

// ErrNoPostgresSchema is OpenPostgres's answer for a Schema without PostgreSQL
// migrations: its package does not run on PostgreSQL yet.
var ErrNoPostgresSchema = errors.New("store: component has no PostgreSQL schema")

// migrateLockKey is the advisory lock that migrations run under ("payswitc" in ASCII).
// PostgreSQL's advisory locks are per database, so two databases on one server do not
// wait for each other.
const migrateLockKey int64 = 0x7061797377697463

// migratePostgres brings every schema to its last PostgreSQL migration, each migration in
// a transaction of its own with its version, as migrate does on SQLite. It holds the
// advisory lock throughout on one connection: a second process starting at the same
// moment waits on the lock, then finds every version current and applies nothing.
// The lock is a session lock, so a process that dies while migrating lets go of it.
func migratePostgres(ctx context.Context, db *sql.DB, schemas []Schema, onUpgrade func(component string, from, to int)) error {
	for _, s := range schemas {
		if s.Postgres == nil {
			return fmt.Errorf("%w: %s", ErrNoPostgresSchema, s.Component)
		}
	}
	conn, err := db.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, "SELECT pg_advisory_lock(?)", migrateLockKey); err != nil {
		return fmt.Errorf("lock: %w", err)
	}
	defer conn.ExecContext(context.Background(), "SELECT pg_advisory_unlock(?)", migrateLockKey)
	if _, err := conn.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_versions (
		component TEXT PRIMARY KEY,
		version   INTEGER NOT NULL
	);
	CREATE TABLE IF NOT EXISTS store_health (checked BIGINT NOT NULL);
	INSERT INTO store_health SELECT 0 WHERE NOT EXISTS (SELECT 1 FROM store_health);`); err != nil {
		return err
	}
	for _, s := range schemas {
		var have int
		err := conn.QueryRowContext(ctx, "SELECT version FROM schema_versions WHERE component = ?", s.Component).Scan(&have)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("%s: read version: %w", s.Component, err)
		}
		if have > len(s.Postgres) {
			return fmt.Errorf("%w: %s is at version %d, this binary knows %d", ErrNewerSchema, s.Component, have, len(s.Postgres))
		}
		if have > 0 && have < len(s.Postgres) && onUpgrade != nil {
			onUpgrade(s.Component, have, len(s.Postgres))
		}
		for v := have + 1; v <= len(s.Postgres); v++ {
			if err := applyPostgres(ctx, conn, s.Component, v, s.Postgres[v-1]); err != nil {
				return err
			}
		}
	}
	return nil
}

// applyPostgres runs migration v of component and records it, in one transaction.
func applyPostgres(ctx context.Context, conn *sql.Conn, component string, v int, migration string) error {
	tx, err := conn.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	// Without arguments pgx sends the text as one simple query, so a migration may hold
	// several statements (and $$-quoted function bodies, which rebind leaves alone).
	if _, err := tx.ExecContext(ctx, migration); err != nil {
		return fmt.Errorf("%s: migration %d: %w", component, v, err)
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO schema_versions (component, version) VALUES (?, ?)
		ON CONFLICT (component) DO UPDATE SET version = excluded.version`, component, v); err != nil {
		return fmt.Errorf("%s: record version %d: %w", component, v, err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("%s: migration %d: %w", component, v, err)
	}
	return nil
}
