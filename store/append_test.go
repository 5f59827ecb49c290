package store

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
)

var logSchema = Schema{Component: "log", Migrations: []string{
	`CREATE TABLE log (seq INTEGER PRIMARY KEY, who TEXT NOT NULL, n INTEGER NOT NULL CHECK (n >= 0)) STRICT`,
}}

var logRows = NewAppender("log", "who", "n")

// A group's rows go in with one statement per table before its COMMIT, in order; a row
// that fails there fails its own Write alone, and the others' rows are all kept.
func TestAppendedRowsCommitWithTheirGroup(t *testing.T) {
	db := mustOpen(t, filepath.Join(t.TempDir(), "x.db"), logSchema)
	ctx := context.Background()
	const writers = 50
	appendRows := func(round int, bad bool) []error {
		var wg sync.WaitGroup
		errs := make([]error, writers+1)
		for i := range writers + 1 {
			wg.Go(func() {
				errs[i] = db.Write(ctx, func(tx Tx) error {
					if i == writers { // a row the CHECK refuses, when bad
						if !bad {
							return nil
						}
						return logRows.Append(ctx, tx, "bad", -1)
					}
					for n := range 2 {
						if err := logRows.Append(ctx, tx, fmt.Sprint(round, "/", i), n); err != nil {
							return err
						}
					}
					return nil
				})
			})
		}
		wg.Wait()
		for i, err := range errs[:writers] {
			if err != nil {
				t.Fatalf("round %d, write %d: %v", round, i, err)
			}
		}
		return errs
	}

	// Without a failure: one statement per group, not one per row.
	before := db.Stats().Statements
	appendRows(1, false)
	if got := db.Stats().Statements - before; got >= 2*writers {
		t.Errorf("%d statements for %d rows", got, 2*writers)
	}
	// With one: the group runs again, each Write in its savepoint, and only that one fails.
	if errs := appendRows(2, true); errs[writers] == nil {
		t.Fatal("the write of a refused row succeeded")
	}

	rows, err := db.Reader().Query(`SELECT who, n FROM log ORDER BY seq`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	next := map[string]int{}
	total := 0
	for rows.Next() {
		var who string
		var n int
		if err := rows.Scan(&who, &n); err != nil {
			t.Fatal(err)
		}
		if who == "bad" || n != next[who] {
			t.Fatalf("row %s %d out of place (want %d next)", who, n, next[who])
		}
		next[who]++
		total++
	}
	if total != 4*writers {
		t.Fatalf("%d rows, want %d", total, 4*writers)
	}
}

// Text that JSON would not carry as it is goes in at once, after the rows kept before
// it, so that the table's rows stay in order; outside the writer's group, rows go in at
// once too.
func TestAppendKeepsOrderAroundRowsThatGoAtOnce(t *testing.T) {
	path := filepath.Join(t.TempDir(), "x.db")
	db := mustOpen(t, path, logSchema)
	ctx := context.Background()
	err := db.Write(ctx, func(tx Tx) error {
		for _, who := range []string{"a", "b\xff", "c"} {
			if err := logRows.Append(ctx, tx, who, 0); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	other, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(5000)")
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	tx, err := other.Begin()
	if err != nil {
		t.Fatal(err)
	}
	if err := logRows.Append(ctx, tx, "d", 0); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	var got []string
	rows, err := db.Reader().Query(`SELECT who FROM log ORDER BY seq`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var who string
		rows.Scan(&who)
		got = append(got, who)
	}
	if fmt.Sprint(got) != fmt.Sprint([]string{"a", "b\xff", "c", "d"}) {
		t.Fatalf("rows %q, want a, b\\xff, c, d", got)
	}
	if err := logRows.Append(ctx, nil, "x"); err == nil {
		t.Error("a row of one value for two columns was taken")
	}
}
