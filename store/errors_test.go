package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// sqliteErr runs query on a fresh connection to path and returns its error.
func sqliteErr(t *testing.T, dsn, query string) error {
	t.Helper()
	c, err := sql.Open("sqlite", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_, err = c.Exec(query)
	if err == nil {
		t.Fatalf("%s on %s: no error", query, dsn)
	}
	return err
}

func TestFaultOfNamesTheDatabaseFaults(t *testing.T) {
	dir := t.TempDir()
	db := mustOpen(t, filepath.Join(dir, "x.db"), testSchema)

	// Busy: another connection holds the write lock past the busy timeout.
	holder, err := sql.Open("sqlite", "file:"+db.Path())
	if err != nil {
		t.Fatal(err)
	}
	defer holder.Close()
	holder.SetMaxOpenConns(1)
	if _, err := holder.Exec("BEGIN IMMEDIATE"); err != nil {
		t.Fatal(err)
	}
	busy := sqliteErr(t, "file:"+db.Path()+"?_pragma=busy_timeout(1)", "INSERT INTO things (name) VALUES ('b')")
	holder.Exec("ROLLBACK")

	// Full: the file may not grow past max_page_count, as on a disk with no room.
	full := sqliteErr(t, "file:"+filepath.Join(dir, "small.db")+"?_pragma=max_page_count(2)",
		"CREATE TABLE a (x); CREATE TABLE b (x); CREATE TABLE c (x)")

	// Read-only: a connection that may not write.
	readOnly := sqliteErr(t, "file:"+db.Path()+"?mode=ro", "INSERT INTO things (name) VALUES ('r')")

	// Corrupt: a file that is not a database.
	junk := filepath.Join(dir, "junk.db")
	if err := os.WriteFile(junk, []byte(strings.Repeat("not a database ", 512)), 0o600); err != nil {
		t.Fatal(err)
	}
	corrupt := sqliteErr(t, "file:"+junk, "SELECT * FROM sqlite_master")

	constraint := insert(db, "dup")
	if constraint == nil {
		constraint = insert(db, "dup")
	}

	for _, c := range []struct {
		name string
		err  error
		want Fault
	}{
		{"nil", nil, ""},
		{"busy", busy, FaultBusy},
		{"full", full, FaultFull},
		{"read-only", readOnly, FaultReadOnly},
		{"corrupt", corrupt, FaultCorrupt},
		{"wrapped as Write wraps it", fmt.Errorf("store: commit: %w", full), FaultFull},
		{"constraint", constraint, ""},
		{"application", errors.New("ledger: insufficient funds"), ""},
		{"closed", ErrClosed, ""},
		{"ENOSPC from an fsync", fmt.Errorf("sync: %w", &fs.PathError{Op: "sync", Path: "x-wal", Err: syscall.ENOSPC}), FaultFull},
		{"EDQUOT", syscall.EDQUOT, FaultFull},
		{"EROFS", fmt.Errorf("lock: %w", &fs.PathError{Op: "open", Path: "x.lock", Err: syscall.EROFS}), FaultReadOnly},
		{"EIO", fmt.Errorf("sync: %w", syscall.EIO), FaultIO},
		{"another errno", syscall.ECONNRESET, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := FaultOf(c.err); got != c.want {
				t.Fatalf("FaultOf(%v) = %q, want %q", c.err, got, c.want)
			}
		})
	}
}

// A write that fails because the file cannot grow rolls back alone; once there is room
// again the same DB takes writes, with no restart.
func TestWritesResumeAfterTheDatabaseWasFull(t *testing.T) {
	db := mustOpen(t, filepath.Join(t.TempDir(), "x.db"), testSchema)
	ctx := context.Background()
	var pages int64
	if err := db.Reader().QueryRow("PRAGMA page_count").Scan(&pages); err != nil {
		t.Fatal(err)
	}
	limit := func(n int64) {
		t.Helper()
		if err := db.Write(ctx, func(tx Tx) error {
			_, err := tx.ExecContext(context.Background(), fmt.Sprintf("PRAGMA max_page_count = %d", n))
			return err
		}); err != nil {
			t.Fatal(err)
		}
	}
	limit(pages)
	big := strings.Repeat("x", 64<<10)
	// SQLite rolls the whole transaction back on SQLITE_FULL in a statement, so the error
	// that reaches the caller may be the store's "transaction aborted": it must still say
	// the database is full, fail alone, and not hold up the next write.
	if err := insert(db, big); err == nil {
		t.Fatal("insert past max_page_count succeeded")
	} else if FaultOf(err) != FaultFull {
		t.Fatalf("insert past max_page_count: %v, fault %q, want %q", err, FaultOf(err), FaultFull)
	}
	if err := db.Ping(ctx); err != nil {
		t.Fatalf("a write that needs no new page, while full: %v", err)
	}
	limit(1 << 30)
	if err := insert(db, big); err != nil {
		t.Fatalf("insert once there is room: %v", err)
	}
	if n := count(t, db); n != 1 {
		t.Fatalf("%d rows, want the one written after the fault", n)
	}
}

func TestDiagnoseLooksAtTheFilesystem(t *testing.T) {
	ioErr := fmt.Errorf("store: commit: %w", syscall.EIO)
	if got := (&DB{path: filepath.Join(t.TempDir(), "x.db")}).Diagnose(ioErr); got != FaultIO {
		t.Fatalf("an I/O error on a healthy filesystem = %q, want %q", got, FaultIO)
	}
	full := fmt.Errorf("store: commit: %w", syscall.ENOSPC)
	if got := (&DB{path: filepath.Join(t.TempDir(), "x.db")}).Diagnose(full); got != FaultFull {
		t.Fatalf("Diagnose(ENOSPC) = %q", got)
	}

	if os.Geteuid() != 0 {
		t.Skip("the read-only case mounts a tmpfs, which needs root (CI runs as root)")
	}
	dir := filepath.Join(t.TempDir(), "mnt")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mount("tmpfs", dir, "tmpfs", syscall.MS_RDONLY, "size=1m"); err != nil {
		t.Skipf("cannot mount a tmpfs here: %v", err)
	}
	t.Cleanup(func() { syscall.Unmount(dir, syscall.MNT_DETACH) })
	if got := (&DB{path: filepath.Join(dir, "x.db")}).Diagnose(ioErr); got != FaultReadOnly {
		t.Fatalf("an I/O error on a read-only filesystem = %q, want %q", got, FaultReadOnly)
	}
}
