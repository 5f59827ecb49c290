package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
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
	return db.Write(context.Background(), func(tx Tx) error {
		_, err := tx.ExecContext(context.Background(), "INSERT INTO things (name) VALUES (?)", name)
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
	// Every write was answered, committed or refused, and its wait counted.
	if s := db.Stats(); s.Writes != 200 || s.Waited <= 0 {
		t.Fatalf("stats: %d writes answered in %v, want 200", s.Writes, s.Waited)
	}
}

func TestPanicInWriteIsAnErrorAndRollsBack(t *testing.T) {
	db := mustOpen(t, filepath.Join(t.TempDir(), "x.db"), testSchema)
	err := db.Write(context.Background(), func(tx Tx) error {
		tx.ExecContext(context.Background(), "INSERT INTO things (name) VALUES ('ghost')")
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
	err := db.Write(ctx, func(tx Tx) error { ran = true; return nil })
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
	err = db.Write(ctx, func(tx Tx) error { ran = true; return nil })
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
	want := []string{"INSERT INTO things (name) VALUES (?)"} // no savepoint while nothing fails
	if len(seen) != len(want) {
		t.Fatalf("statements %q, want %q", seen, want)
	}
	for i := range want {
		if seen[i] != want[i] {
			t.Fatalf("statements %q, want %q", seen, want)
		}
	}
}

// A COMMIT that fails can leave SQLite's transaction open on the connection unless it
// is rolled back (modernc's Tx.Commit does); the next group must work. A deferred foreign key makes COMMIT
// fail on demand (a full disk fails it the same way, see serve_faults_test.go).
func TestFailedCommitDoesNotBreakLaterWrites(t *testing.T) {
	schema := Schema{Component: "deferred", Migrations: []string{`
		CREATE TABLE parents (id INTEGER PRIMARY KEY) STRICT;
		CREATE TABLE children (id INTEGER PRIMARY KEY,
			parent INTEGER NOT NULL REFERENCES parents (id) DEFERRABLE INITIALLY DEFERRED) STRICT;`}}
	db := mustOpen(t, filepath.Join(t.TempDir(), "s.db"), schema, testSchema)
	err := db.Write(context.Background(), func(tx Tx) error {
		_, err := tx.ExecContext(context.Background(), "INSERT INTO children (parent) VALUES (42)") // no parent 42
		return err
	})
	if err == nil || !strings.Contains(err.Error(), "commit") {
		t.Fatalf("write with a dangling deferred reference: %v, want a commit error", err)
	}
	for i := range 3 {
		if err := insert(db, fmt.Sprint("after-", i)); err != nil {
			t.Fatalf("write %d after the failed commit: %v", i, err)
		}
	}
	if n := count(t, db); n != 3 {
		t.Fatalf("%d rows, want 3", n)
	}
	var children int
	db.Reader().QueryRow("SELECT count(*) FROM children").Scan(&children)
	if children != 0 {
		t.Fatalf("the failed group left %d rows", children)
	}
}

// When the WAL cannot be synced, nothing written after can be called durable: the write
// that was waiting for the sync and every later one fail with ErrSyncFailed.
func TestFailedSyncFailsThatWriteAndEveryLaterOne(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s.db")
	db := mustOpen(t, path, testSchema)
	if err := insert(db, "before"); err != nil {
		t.Fatal(err)
	}
	// The WAL vanishing under a running switch (an operator's rm, say) is a sync that
	// cannot be done: SQLite writes on to its open, now nameless file.
	if err := os.Remove(path + "-wal"); err != nil {
		t.Fatal(err)
	}
	if err := insert(db, "lost"); !errors.Is(err, ErrSyncFailed) {
		t.Fatalf("write after the WAL vanished: %v, want ErrSyncFailed", err)
	}
	if err := insert(db, "later"); !errors.Is(err, ErrSyncFailed) {
		t.Fatalf("later write: %v, want ErrSyncFailed", err)
	}
	if err := db.Ping(context.Background()); !errors.Is(err, ErrSyncFailed) {
		t.Fatalf("Ping: %v, want ErrSyncFailed", err)
	}
}

// Synchronous other than FULL answers at commit, without the store's fsync; the
// pipelined FULL answers after it. Both keep every acknowledged write.
func TestEverySynchronousModeKeepsAcknowledgedWrites(t *testing.T) {
	for _, mode := range []string{"FULL", "EXTRA", "NORMAL", "OFF"} {
		t.Run(mode, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "s.db")
			db, err := Open(path, Options{Synchronous: mode}, testSchema)
			if err != nil {
				t.Fatal(err)
			}
			var wg sync.WaitGroup
			for i := range 50 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					if err := insert(db, fmt.Sprint(i)); err != nil {
						t.Error(err)
					}
				}()
			}
			wg.Wait()
			db.Close()
			db = mustOpen(t, path, testSchema)
			if n := count(t, db); n != 50 {
				t.Fatalf("%d rows after reopening, want 50", n)
			}
		})
	}
}

// The writer leaves checkpoints to the checkpointer: pages written to the WAL reach the
// database file, which only a checkpoint writes, though the WAL stayed below the
// writer's own checkpoint threshold.
func TestCheckpointerCopiesTheWALIntoTheDatabase(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s.db")
	db := mustOpen(t, path, testSchema)
	row := strings.Repeat("x", 4000) // about a page per write
	const writes = 1500              // a few thousand frames, under writerAutoCheckpoint
	var next atomic.Int64
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := next.Add(1); i <= writes; i = next.Add(1) {
				if err := insert(db, fmt.Sprint(i, row)); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	deadline := time.Now().Add(10 * time.Second)
	for {
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Size() >= writes*4000 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("database file is %d bytes after %d writes of 4 kB: nothing checkpointed", fi.Size(), writes)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if n := count(t, db); n != writes {
		t.Fatalf("%d rows, want %d", n, writes)
	}
}

// While the disk syncs one group, the next commits as soon as the writer has nothing
// else to run (its COMMIT overlaps the sync); a third waits, committing only once the
// first sync is done, and every caller is answered only after a sync that began after
// its commit.
func TestNextGroupCommitsDuringASyncButNoFurther(t *testing.T) {
	db := mustOpen(t, filepath.Join(t.TempDir(), "p.db"), testSchema)
	if err := insert(db, "warm"); err != nil { // the WAL exists and its inode is known
		t.Fatal(err)
	}
	inSync := make(chan struct{}, 8)
	release := make(chan struct{})
	db.beforeSync = func() {
		inSync <- struct{}{}
		<-release
	}
	groups := func() int64 { return db.Stats().Groups }
	base := groups()
	results := make(chan error, 3)
	write := func(name string) { go func() { results <- insert(db, name) }() }

	write("a")
	<-inSync // a committed; its sync is held
	write("b")
	waitFor(t, func() bool { return groups() == base+2 }, "b to commit while a's sync is held")
	write("c")
	time.Sleep(50 * time.Millisecond)
	if g := groups(); g != base+2 {
		t.Fatalf("groups = %d: c committed while two groups waited for the disk", g-base)
	}
	select {
	case err := <-results:
		t.Fatalf("a write was answered before any sync ended: %v", err)
	default:
	}
	close(release)
	for range 3 {
		if err := <-results; err != nil {
			t.Fatal(err)
		}
	}
	if got := count(t, db); got != 4 {
		t.Fatalf("rows = %d, want 4", got)
	}
	if s := db.Stats(); s.SyncedGroups != s.Groups {
		t.Fatalf("synced groups %d of %d", s.SyncedGroups, s.Groups)
	}
}

func waitFor(t *testing.T, cond func() bool, what string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// An operation that fails after writing part of its work leaves none of it, and the
// operations of its group still commit: the group runs again, each operation in a
// savepoint (so a function may run twice).
func TestFailedOperationRollsBackAloneWhenItsGroupRunsAgain(t *testing.T) {
	db := mustOpen(t, filepath.Join(t.TempDir(), "r.db"), testSchema)
	started := make(chan struct{})
	var once sync.Once
	slow := make(chan error, 1)
	go func() {
		slow <- db.Write(context.Background(), func(tx Tx) error {
			once.Do(func() { close(started) }) // it runs again in the redo
			time.Sleep(100 * time.Millisecond) // A, B and C queue meanwhile: one group
			_, err := tx.ExecContext(context.Background(), "INSERT INTO things (name) VALUES ('first')")
			return err
		})
	}()
	<-started
	var aRuns atomic.Int32
	errs := make(chan error, 3)
	go func() {
		errs <- db.Write(context.Background(), func(tx Tx) error {
			aRuns.Add(1)
			_, err := tx.ExecContext(context.Background(), "INSERT INTO things (name) VALUES ('a')")
			return err
		})
	}()
	time.Sleep(10 * time.Millisecond)
	bErr := errors.New("b changed its mind")
	go func() {
		errs <- db.Write(context.Background(), func(tx Tx) error {
			if _, err := tx.ExecContext(context.Background(), "INSERT INTO things (name) VALUES ('b')"); err != nil {
				return err
			}
			return bErr
		})
	}()
	time.Sleep(10 * time.Millisecond)
	go func() { errs <- insert(db, "c") }()
	if err := <-slow; err != nil {
		t.Fatal(err)
	}
	var failed int
	for range 3 {
		if err := <-errs; errors.Is(err, bErr) {
			failed++
		} else if err != nil {
			t.Fatal(err)
		}
	}
	if failed != 1 {
		t.Fatalf("%d writes failed with b's error, want 1", failed)
	}
	names := thingNames(t, db)
	if strings.Join(names, ",") != "first,a,c" {
		t.Fatalf("rows %q, want first, a and c", names)
	}
	if s := db.Stats(); s.Redos != 1 || aRuns.Load() != 2 {
		t.Fatalf("redos = %d, a ran %d times; want one redo, a twice", s.Redos, aRuns.Load())
	}
}

// A query inside a Write starts no goroutine, even when the caller's context can be
// cancelled: database/sql starts one per query in a *sql.Tx (to close its rows when the
// transaction's context ends), and those cost a tenth of serve's CPU per payment.
func TestQueriesInAWriteStartNoGoroutine(t *testing.T) {
	db := mustOpen(t, filepath.Join(t.TempDir(), "x.db"), testSchema)
	if err := insert(db, "a"); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var before, during int
	err := db.Write(ctx, func(tx Tx) error {
		before = runtime.NumGoroutine()
		rows, err := tx.QueryContext(ctx, "SELECT name FROM things")
		if err != nil {
			return err
		}
		defer rows.Close()
		during = runtime.NumGoroutine()
		var name string
		if err := tx.QueryRowContext(ctx, "SELECT name FROM things WHERE name = ?", "a").Scan(&name); err != nil {
			return err
		}
		return rows.Err()
	})
	if err != nil {
		t.Fatal(err)
	}
	if during != before {
		t.Errorf("goroutines while a query's rows are open: %d, before: %d", during, before)
	}
}

// A Write function's statements run to their end even if its caller's context ends
// while it runs: Write then reports the outcome, not the cancellation.
func TestStatementsIgnoreACancelledContextOnceStarted(t *testing.T) {
	db := mustOpen(t, filepath.Join(t.TempDir(), "x.db"), testSchema)
	ctx, cancel := context.WithCancel(context.Background())
	err := db.Write(ctx, func(tx Tx) error {
		cancel()
		_, err := tx.ExecContext(ctx, "INSERT INTO things (name) VALUES ('late')")
		return err
	})
	if err != nil {
		t.Fatalf("Write = %v, want nil: the operation had started", err)
	}
	if n := count(t, db); n != 1 {
		t.Errorf("things: %d, want 1", n)
	}
}

// OnUpgrade hears of every component whose tables exist at an older version, before
// its migrations run, and of nothing when the database is new or up to date.
func TestOnUpgradeNamesTheComponentsUpgraded(t *testing.T) {
	path := filepath.Join(t.TempDir(), "x.db")
	v2 := Schema{Component: "test", Migrations: append(slices.Clone(testSchema.Migrations),
		`CREATE INDEX things_by_name ON things (name)`)}
	other := Schema{Component: "other", Migrations: []string{`CREATE TABLE others (id INTEGER PRIMARY KEY) STRICT`}}
	for _, tc := range []struct {
		name    string
		schemas []Schema
		want    []string
	}{
		{"new database", []Schema{testSchema}, nil},
		{"one component upgraded, one new", []Schema{v2, other}, []string{"test 1->2"}},
		{"up to date", []Schema{v2, other}, nil},
	} {
		var got []string
		db, err := Open(path, Options{OnUpgrade: func(c string, from, to int) {
			got = append(got, fmt.Sprintf("%s %d->%d", c, from, to))
		}}, tc.schemas...)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		db.Close()
		if !slices.Equal(got, tc.want) {
			t.Errorf("%s: OnUpgrade told %q, want %q", tc.name, got, tc.want)
		}
	}
}

// An operation that asks to run alone (RunAlone, in a bare group where Optimistic holds)
// runs again in a savepoint of its own, where Optimistic no longer holds, even though it
// returned no error: only the second run's writes are kept.
func TestRunAloneRunsTheOperationAgainWithSavepoints(t *testing.T) {
	db := mustOpen(t, filepath.Join(t.TempDir(), "r.db"), testSchema)
	var runs []bool // Optimistic, run by run
	err := db.Write(context.Background(), func(tx Tx) error {
		optimistic := Optimistic(tx)
		runs = append(runs, optimistic)
		name := "saved"
		if optimistic {
			name = "half done"
		}
		if _, err := tx.ExecContext(context.Background(), "INSERT INTO things (name) VALUES (?)", name); err != nil {
			return err
		}
		RunAlone(tx)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(runs) != 2 || !runs[0] || runs[1] {
		t.Fatalf("runs saw Optimistic %v, want true then false", runs)
	}
	names := thingNames(t, db)
	if strings.Join(names, ",") != "saved" {
		t.Fatalf("rows %q, want the second run's alone", names)
	}
	if s := db.Stats(); s.Redos != 1 {
		t.Fatalf("redos = %d, want 1", s.Redos)
	}
}

// thingNames returns the names in things, in the order they were inserted.
func thingNames(t *testing.T, db *DB) []string {
	t.Helper()
	rows, err := db.Reader().Query("SELECT name FROM things ORDER BY id")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var names []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			t.Fatal(err)
		}
		names = append(names, n)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return names
}

// sortedThingNames is thingNames sorted and joined by commas.
func sortedThingNames(t *testing.T, db *DB) string {
	t.Helper()
	names := thingNames(t, db)
	slices.Sort(names)
	return strings.Join(names, ",")
}
