package store

import (
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
)

func migrate(db *sql.DB, schemas []Schema, onUpgrade func(component string, from, to int)) error {
	if _, err := db.Exec(`CREATE TABLE IF NOT EXISTS schema_versions (
		component TEXT PRIMARY KEY,
		version   INTEGER NOT NULL
	) STRICT;
	CREATE TABLE IF NOT EXISTS store_health (checked INTEGER NOT NULL) STRICT;
	INSERT INTO store_health SELECT 0 WHERE NOT EXISTS (SELECT 1 FROM store_health);`); err != nil {
		return err
	}
	for _, s := range schemas {
		var have int
		err := db.QueryRow("SELECT version FROM schema_versions WHERE component = ?", s.Component).Scan(&have)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("%s: read version: %w", s.Component, err)
		}
		if have > len(s.Migrations) {
			return fmt.Errorf("%w: %s is at version %d, this binary knows %d", ErrNewerSchema, s.Component, have, len(s.Migrations))
		}
		if have > 0 && have < len(s.Migrations) && onUpgrade != nil {
			onUpgrade(s.Component, have, len(s.Migrations))
		}
		for v := have + 1; v <= len(s.Migrations); v++ {
			tx, err := db.Begin()
			if err != nil {
				return err
			}
			if _, err := tx.Exec(s.Migrations[v-1]); err != nil {
				tx.Rollback()
				return fmt.Errorf("%s: migration %d: %w", s.Component, v, err)
			}
			if _, err := tx.Exec(`INSERT INTO schema_versions (component, version) VALUES (?, ?)
				ON CONFLICT (component) DO UPDATE SET version = excluded.version`, s.Component, v); err != nil {
				tx.Rollback()
				return fmt.Errorf("%s: record version %d: %w", s.Component, v, err)
			}
			if err := tx.Commit(); err != nil {
				return fmt.Errorf("%s: migration %d: %w", s.Component, v, err)
			}
		}
	}
	return nil
}

// OpenReadOnly opens an existing database for reading only, as the auditor export does
// while serve keeps writing: WAL lets it read one consistent snapshot per transaction
// without blocking the writer. It refuses a file whose schemas are newer than this
// binary's, and never creates or migrates anything.
func OpenReadOnly(path string, schemas ...Schema) (*sql.DB, error) {
	if _, err := os.Stat(path); err != nil {
		return nil, fmt.Errorf("store: open %q: %w", path, err)
	}
	q := url.Values{}
	q.Add("mode", "ro")
	q.Add("_pragma", "busy_timeout(5000)")
	q.Add("_pragma", "query_only(1)")
	db, err := sql.Open("sqlite", "file:"+path+"?"+q.Encode())
	if err != nil {
		return nil, fmt.Errorf("store: open %q: %w", path, err)
	}
	for _, s := range schemas {
		var have int
		err := db.QueryRow("SELECT version FROM schema_versions WHERE component = ?", s.Component).Scan(&have)
		if err != nil {
			db.Close()
			return nil, fmt.Errorf("store: open %q: %s schema: %w", path, s.Component, err)
		}
		if have > len(s.Migrations) {
			db.Close()
			return nil, fmt.Errorf("%w: %s is at version %d, this binary knows %d", ErrNewerSchema, s.Component, have, len(s.Migrations))
		}
	}
	return db, nil
}
