package store

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/payswitch/payswitch/internal/pgtest"
)

// openGrouped opens a PostgreSQL DB with one group loop, so that a test can hold the
// group open while it queues more Writes.
func openGrouped(t *testing.T) *DB {
	t.Helper()
	db, err := OpenPostgres(context.Background(), pgtest.URL(t), Options{Groups: 1}, pgSchema)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// holdGroup starts a Write whose function waits until n more Writes are queued behind
// it, so that they all join its group, and returns, once the function runs, a channel
// of the Write's outcome.
func holdGroup(t *testing.T, db *DB, n int, fn func(Tx) error) <-chan error {
	t.Helper()
	out := make(chan error, 1)
	started := make(chan struct{})
	runs := 0 // the function's runs, in the group loop and then alone
	go func() {
		out <- db.Write(context.Background(), func(tx Tx) error {
			if runs++; runs > 1 {
				return fn(tx) // run again alone after the group's rollback
			}
			close(started)
			deadline := time.Now().Add(30 * time.Second)
			for len(db.pg.ops) < n {
				if time.Now().After(deadline) {
					return errors.New("the other writes were never queued")
				}
				runtime.Gosched()
			}
			return fn(tx)
		})
	}()
	<-started // the group is open, and the Writes queued now join it
	return out
}

// writeAll runs the Writes fns at once and returns their outcomes in order.
func writeAll(db *DB, fns []func(Tx) error) []error {
	errs := make([]error, len(fns))
	var wg sync.WaitGroup
	for i, fn := range fns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = db.Write(context.Background(), fn)
		}()
	}
	wg.Wait()
	return errs
}

func insertFn(name string) func(Tx) error {
	return func(tx Tx) error {
		_, err := tx.ExecContext(context.Background(), "INSERT INTO things (name) VALUES (?)", name)
		return err
	}
}

// TestPostgresGroupCommitsQueuedWritesTogether: Writes queued while a group runs join
// it and commit with it, in one transaction, and a finisher registered by each runs once
// for the group, before the COMMIT, seeing all of their rows.
func TestPostgresGroupCommitsQueuedWritesTogether(t *testing.T) {
	db := openGrouped(t)
	before := db.Stats()
	seen := &countingFinisher{}
	withFinisher := func(name string) func(Tx) error {
		return func(tx Tx) error {
			if _, ok := Deferred(tx, "count", func() Finisher { return seen }); !ok {
				return errors.New("a group's transaction cannot defer")
			}
			return insertFn(name)(tx)
		}
	}
	first := holdGroup(t, db, 9, withFinisher("first"))
	fns := make([]func(Tx) error, 9)
	for i := range fns {
		fns[i] = withFinisher(fmt.Sprintf("n%d", i))
	}
	for i, err := range writeAll(db, fns) {
		if err != nil {
			t.Fatalf("write %d: %v", i, err)
		}
	}
	if err := <-first; err != nil {
		t.Fatal(err)
	}
	after := db.Stats()
	if g, o := after.Groups-before.Groups, after.Ops-before.Ops; g != 1 || o != 10 {
		t.Fatalf("%d groups of %d operations committed, want 1 of 10", g, o)
	}
	if seen.calls != 1 || seen.rows != 10 {
		t.Fatalf("finisher ran %d times and saw %d rows, want once, seeing 10", seen.calls, seen.rows)
	}
	if n := count(t, db); n != 10 {
		t.Fatalf("%d rows, want 10", n)
	}
}

type countingFinisher struct{ calls, rows int }

func (f *countingFinisher) Finish(ctx context.Context, tx Tx) error {
	f.calls++
	return tx.QueryRowContext(ctx, "SELECT count(*) FROM things").Scan(&f.rows)
}

// TestPostgresGroupFailuresStayAlone: in a group, a Write whose statement fails (a
// duplicate), one that swallows its failed statement (which leaves PostgreSQL's
// transaction aborted, so that it cannot commit) and one that panics each fail alone;
// the group's other Writes commit, each once.
func TestPostgresGroupFailuresStayAlone(t *testing.T) {
	db := openGrouped(t)
	if err := insert(db, "dup"); err != nil {
		t.Fatal(err)
	}
	before := db.Stats()
	first := holdGroup(t, db, 5, insertFn("first"))
	swallowed := false
	errs := writeAll(db, []func(Tx) error{
		insertFn("a"),
		insertFn("dup"),
		func(tx Tx) error {
			if _, err := tx.ExecContext(context.Background(), "INSERT INTO things (name) VALUES ('dup')"); err != nil {
				swallowed = true
				return nil // the caller thinks it handled it
			}
			return nil
		},
		func(Tx) error { panic("boom") },
		insertFn("b"),
	})
	if err := <-first; err != nil {
		t.Fatal(err)
	}
	if errs[0] != nil || errs[4] != nil {
		t.Fatalf("the group's good writes failed: %v, %v", errs[0], errs[4])
	}
	if !IsUniqueViolation(errs[1], "things.name") {
		t.Fatalf("duplicate: %v, want its unique violation", errs[1])
	}
	if errs[2] == nil || !swallowed {
		t.Fatalf("swallowing write: %v (swallowed %v), want its transaction's failure", errs[2], swallowed)
	}
	if errs[3] == nil {
		t.Fatal("a panicking write succeeded")
	}
	if d := db.Stats().Redos - before.Redos; d < 1 {
		t.Fatalf("%d groups rolled back, want at least 1", d)
	}
	names := sortedThingNames(t, db)
	if names != "a,b,dup,first" {
		t.Fatalf("rows %q, want a,b,dup,first (each good write once)", names)
	}
}

// TestPostgresGroupFinisherFailureStaysAlone: a finisher that fails for one Write's
// sake fails the group, whose Writes then run alone: only that Write fails.
func TestPostgresGroupFinisherFailureStaysAlone(t *testing.T) {
	db := openGrouped(t)
	refuse := func(name string) func(Tx) error {
		return func(tx Tx) error {
			f, _ := Deferred(tx, "refuse", func() Finisher { return &refusingFinisher{} })
			f.(*refusingFinisher).names = append(f.(*refusingFinisher).names, name)
			return insertFn(name)(tx)
		}
	}
	first := holdGroup(t, db, 2, insertFn("first"))
	errs := writeAll(db, []func(Tx) error{refuse("ok"), refuse("bad")})
	if err := <-first; err != nil {
		t.Fatal(err)
	}
	if errs[0] != nil || !errors.Is(errs[1], errRefused) {
		t.Fatalf("outcomes %v, %v; want nil and the refusal", errs[0], errs[1])
	}
	if n := count(t, db); n != 2 {
		t.Fatalf("%d rows, want 2 (first, ok)", n)
	}
}

var errRefused = errors.New("refused")

// refusingFinisher fails when a Write named "bad" registered with it.
type refusingFinisher struct{ names []string }

func (f *refusingFinisher) Finish(context.Context, Tx) error {
	for _, n := range f.names {
		if n == "bad" {
			return errRefused
		}
	}
	return nil
}

// TestPostgresGroupAbandonedWriteDoesNotRun: a Write whose caller gave up while it was
// queued is not run by the group.
func TestPostgresGroupAbandonedWriteDoesNotRun(t *testing.T) {
	db := openGrouped(t)
	ctx, cancel := context.WithCancel(context.Background())
	ran := make(chan struct{}, 1)
	gaveUp := make(chan error, 1)
	first := holdGroup(t, db, 1, func(tx Tx) error {
		cancel()
		if err := <-gaveUp; !errors.Is(err, context.Canceled) {
			return fmt.Errorf("the abandoned write answered %v", err)
		}
		return insertFn("first")(tx)
	})
	go func() {
		gaveUp <- db.Write(ctx, func(tx Tx) error { ran <- struct{}{}; return insertFn("late")(tx) })
	}()
	if err := <-first; err != nil {
		t.Fatal(err)
	}
	select {
	case <-ran:
		t.Fatal("the abandoned write ran")
	default:
	}
	if n := count(t, db); n != 1 {
		t.Fatalf("%d rows, want 1", n)
	}
}
