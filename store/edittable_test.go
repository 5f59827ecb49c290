package store

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
)

var checkedV1 = Schema{Component: "checked", Migrations: []string{`
CREATE TABLE jobs (
	id    INTEGER PRIMARY KEY,
	state TEXT NOT NULL CHECK (state IN ('new', 'running', 'done', 'it''s broken'))
) STRICT;
CREATE INDEX jobs_by_state ON jobs (state);`}}

// checkedV2 is checkedV1 with its CHECK rewritten in place.
var checkedV2 = Schema{Component: "checked", Migrations: append(append([]string(nil), checkedV1.Migrations...),
	EditTableSQL("jobs", InAsOr(`state IN ('new', 'running', 'done', 'it''s broken')`)))}

func TestInAsOr(t *testing.T) {
	e := InAsOr(`state IN ('a', 'b',
		'c')`)
	if e.New != `(state = 'a' OR state = 'b' OR state = 'c')` {
		t.Fatalf("New = %q", e.New)
	}
	defer func() {
		if recover() == nil {
			t.Fatal("InAsOr accepted a text that is not an IN list")
		}
	}()
	InAsOr(`state = 'a'`)
}

// An edited CHECK keeps the table's rows and indexes, is what every connection (the
// migrating one, one opened later, one open across the migration) enforces, and the
// database stays sound.
func TestEditTableSQLRewritesACheckInPlace(t *testing.T) {
	path := filepath.Join(t.TempDir(), "x.db")
	db, err := Open(path, Options{}, checkedV1)
	if err != nil {
		t.Fatal(err)
	}
	put := func(db *DB, state string) error {
		return db.Write(context.Background(), func(tx Tx) error {
			_, err := tx.ExecContext(context.Background(), `INSERT INTO jobs (state) VALUES (?)`, state)
			return err
		})
	}
	for _, s := range []string{"new", "done", "it's broken"} {
		if err := put(db, s); err != nil {
			t.Fatal(err)
		}
	}
	// A reader that stays open across the migration by another process.
	other, err := OpenReadOnly(path)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	if err := other.QueryRow(`SELECT count(*) FROM jobs`).Scan(new(int)); err != nil {
		t.Fatal(err)
	}
	db.Close()

	db, err = Open(path, Options{}, checkedV2)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var ddl string
	if err := db.Reader().QueryRow(`SELECT sql FROM sqlite_schema WHERE name = 'jobs'`).Scan(&ddl); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(ddl, `CHECK ((state = 'new' OR state = 'running' OR state = 'done' OR state = 'it''s broken'))`) || strings.Contains(ddl, " IN (") {
		t.Fatalf("table SQL not rewritten:\n%s", ddl)
	}
	// The writer (which ran the migration) checks with comparisons now, not with a
	// temporary B-tree of the values.
	var ops []string
	err = db.Write(context.Background(), func(tx Tx) error {
		rows, err := tx.QueryContext(context.Background(), `EXPLAIN INSERT INTO jobs (state) VALUES ('new')`)
		if err != nil {
			return err
		}
		defer rows.Close()
		cols, _ := rows.Columns()
		vals := make([]any, len(cols))
		for i := range vals {
			vals[i] = new(any)
		}
		for rows.Next() {
			if err := rows.Scan(vals...); err != nil {
				return err
			}
			ops = append(ops, fmt.Sprint(*vals[1].(*any)))
		}
		return rows.Err()
	})
	if err != nil || len(ops) == 0 {
		t.Fatalf("explain: %v", err)
	}
	if strings.Contains(strings.Join(ops, " "), "OpenEphemeral") {
		t.Fatalf("the writer still builds a temporary B-tree for the CHECK: %v", ops)
	}
	if err := put(db, "running"); err != nil {
		t.Fatalf("a valid state is refused: %v", err)
	}
	if err := put(db, "lost"); err == nil || !strings.Contains(err.Error(), "CHECK") {
		t.Fatalf("an invalid state: err = %v, want a CHECK failure", err)
	}
	var n int
	if err := other.QueryRow(`SELECT count(*) FROM jobs WHERE state = 'it''s broken'`).Scan(&n); err != nil || n != 1 {
		t.Fatalf("reader open across the migration: n = %d, err = %v", n, err)
	}
	var ok string
	if err := db.Reader().QueryRow(`PRAGMA integrity_check`).Scan(&ok); err != nil || ok != "ok" {
		t.Fatalf("integrity_check = %q, %v", ok, err)
	}
	if err := db.Reader().QueryRow(`SELECT count(*) FROM jobs INDEXED BY jobs_by_state WHERE state >= ''`).Scan(&n); err != nil || n != 4 {
		t.Fatalf("rows through the index = %d, %v; want 4", n, err)
	}
	var tables int
	db.Reader().QueryRow(`SELECT count(*) FROM sqlite_schema WHERE name = 'store_schema_bump'`).Scan(&tables)
	if tables != 0 {
		t.Fatal("the bump table was left behind")
	}
}
