package store

import (
	"context"
	"database/sql"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

var testSchema = Schema{Component: "test", Migrations: []string{
	`CREATE TABLE things (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE) STRICT`,
}}

func mustOpen(tb testing.TB, path string, schemas ...Schema) *DB {
	tb.Helper()
	db, err := Open(path, Options{}, schemas...)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { db.Close() })
	return db
}

func insert(db *DB, name string) error {
	return db.Write(context.Background(), func(tx *sql.Tx) error {
		_, err := tx.Exec("INSERT INTO things (name) VALUES (?)", name)
		return err
	})
}

func count(t *testing.T, db *DB) int {
	t.Helper()
	var n int
	if err := db.Reader().QueryRow("SELECT count(*) FROM things").Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func TestConcurrentWritesAllCommitAndFailuresStayAlone(t *testing.T) {
	db := mustOpen(t, filepath.Join(t.TempDir(), "x.db"), testSchema)
	var wg sync.WaitGroup
	errs := make([]error, 200)
	for i := range 200 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// Every tenth name repeats an earlier one and must fail on the UNIQUE constraint
			// without taking its batch-mates down with it.
			name := string(rune('a'+i%26)) + string(rune('A'+i/26))
			if i%10 == 9 {
				name = "dup"
			}
			errs[i] = insert(db, name)
		}()
	}
	wg.Wait()
	failed := 0
	for _, err := range errs {
		if err != nil {
			failed++
		}
	}
	if failed != 19 { // 20 "dup" inserts, one wins
		t.Fatalf("failed = %d, want 19", failed)
	}
	if got := count(t, db); got != 181 {
		t.Fatalf("rows = %d, want 181", got)
	}
}

func TestPanicInWriteIsAnErrorAndRollsBack(t *testing.T) {
	db := mustOpen(t, filepath.Join(t.TempDir(), "x.db"), testSchema)
	err := db.Write(context.Background(), func(tx *sql.Tx) error {
		tx.Exec("INSERT INTO things (name) VALUES ('ghost')")
		panic("boom")
	})
	if err == nil {
		t.Fatal("want error from panicking write")
	}
	if got := count(t, db); got != 0 {
		t.Fatalf("rows = %d after panic, want 0", got)
	}
	if err := insert(db, "after"); err != nil {
		t.Fatalf("store unusable after panic: %v", err)
	}
}

func TestCancelledContextDoesNotRun(t *testing.T) {
	db := mustOpen(t, filepath.Join(t.TempDir(), "x.db"), testSchema)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	ran := false
	err := db.Write(ctx, func(tx *sql.Tx) error { ran = true; return nil })
	if !errors.Is(err, context.Canceled) || ran {
		t.Fatalf("err = %v ran = %v; want Canceled and not run", err, ran)
	}
}

func TestReopenKeepsDataAndRefusesNewerSchema(t *testing.T) {
	path := filepath.Join(t.TempDir(), "x.db")
	db, err := Open(path, Options{}, testSchema)
	if err != nil {
		t.Fatal(err)
	}
	insert(db, "kept")
	db.Close()

	v2 := Schema{Component: "test", Migrations: append(append([]string{}, testSchema.Migrations...),
		`ALTER TABLE things ADD COLUMN note TEXT`)}
	db = mustOpen(t, path, v2)
	if got := count(t, db); got != 1 {
		t.Fatalf("rows after reopen = %d, want 1", got)
	}
	db.Close()

	if _, err := Open(path, Options{}, testSchema); !errors.Is(err, ErrNewerSchema) {
		t.Fatalf("opening a newer file with an older schema: err = %v, want ErrNewerSchema", err)
	}
}

func TestFileIsPrivateAndWriteAfterCloseFails(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sub", "x.db")
	db, err := Open(path, Options{}, testSchema)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("mode = %v, want 0600", fi.Mode().Perm())
	}
	if err := db.Ping(context.Background()); err != nil {
		t.Fatalf("ping: %v", err)
	}
	db.Close()
	if err := insert(db, "late"); !errors.Is(err, ErrClosed) {
		t.Fatalf("write after close: %v, want ErrClosed", err)
	}
}

func TestBadSynchronousIsRefused(t *testing.T) {
	if _, err := Open(filepath.Join(t.TempDir(), "x.db"), Options{Synchronous: "sometimes"}); err == nil {
		t.Fatal("want error for bad synchronous")
	}
}

func TestOpenReadOnlySeesCommittedDataAndCannotWrite(t *testing.T) {
	path := filepath.Join(t.TempDir(), "x.db")
	db := mustOpen(t, path, testSchema)
	insert(db, "one")
	ro, err := OpenReadOnly(path, testSchema)
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	var n int
	if err := ro.QueryRow("SELECT count(*) FROM things").Scan(&n); err != nil || n != 1 {
		t.Fatalf("count = %d, %v", n, err)
	}
	if _, err := ro.Exec("INSERT INTO things (name) VALUES ('x')"); err == nil {
		t.Fatal("read-only handle wrote")
	}
	if _, err := OpenReadOnly(filepath.Join(t.TempDir(), "missing.db")); err == nil {
		t.Fatal("opened a missing file")
	}
}

func TestQueuedWriteGivesUpWhenItsContextEnds(t *testing.T) {
	path := filepath.Join(t.TempDir(), "x.db")
	db, err := Open(path, Options{BusyTimeout: 2 * time.Second}, testSchema)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	other, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	other.SetMaxOpenConns(1)
	if _, err := other.Exec("BEGIN IMMEDIATE"); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	ran := false
	err = db.Write(ctx, func(tx *sql.Tx) error { ran = true; return nil })
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("write behind a held lock: %v", err)
	}
	other.Exec("ROLLBACK")
	if err := insert(db, "after"); err != nil {
		t.Fatalf("write after the lock was released: %v", err)
	}
	if ran {
		t.Fatal("an abandoned write ran")
	}
	if got := count(t, db); got != 1 {
		t.Fatalf("rows = %d", got)
	}
}

func TestOnStatementSeesEveryStatementOfAWrite(t *testing.T) {
	var mu sync.Mutex
	var seen []string
	db, err := Open(filepath.Join(t.TempDir(), "s.db"), Options{OnStatement: func(q string) {
		mu.Lock()
		seen = append(seen, q)
		mu.Unlock()
	}}, testSchema)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	mu.Lock()
	seen = nil // migrations are not what this test is about
	mu.Unlock()
	if err := insert(db, "a"); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	want := []string{"SAVEPOINT op", "INSERT INTO things (name) VALUES (?)", "RELEASE op"}
	if len(seen) != len(want) {
		t.Fatalf("statements %q, want %q", seen, want)
	}
	for i := range want {
		if seen[i] != want[i] {
			t.Fatalf("statements %q, want %q", seen, want)
		}
	}
}
