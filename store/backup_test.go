package store

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
)

// A backup taken while writes keep committing is a consistent, self-contained, private
// copy, and the writer is not stopped by it.
func TestBackupWhileWriting(t *testing.T) {
	dir := t.TempDir()
	db := mustOpen(t, filepath.Join(dir, "live.db"), testSchema)
	for i := range 500 {
		if err := insert(db, "before-"+strconv.Itoa(i)); err != nil {
			t.Fatal(err)
		}
	}
	var stop atomic.Bool
	var wg sync.WaitGroup
	var during atomic.Int64
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; !stop.Load(); i++ {
			if err := insert(db, "during-"+strconv.Itoa(i)); err != nil {
				t.Error(err)
				return
			}
			during.Add(1)
		}
	}()
	dst := filepath.Join(dir, "copy.db")
	f, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	f.Close()
	if err := Backup(context.Background(), db.Path(), dst); err != nil {
		t.Fatal(err)
	}
	stop.Store(true)
	wg.Wait()
	if during.Load() == 0 {
		t.Error("no write committed while the backup ran")
	}
	fi, err := os.Stat(dst)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("backup mode %v, want 0600", fi.Mode().Perm())
	}
	cp, err := OpenCopy(context.Background(), dst, testSchema)
	if err != nil {
		t.Fatal(err)
	}
	defer cp.Close()
	if err := cp.IntegrityCheck(context.Background()); err != nil {
		t.Fatal(err)
	}
	var n int
	if err := cp.Reader().QueryRow("SELECT count(*) FROM things").Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n < 500 {
		t.Errorf("copy has %d rows, want at least the 500 written before it", n)
	}
	var mode string
	if err := cp.Reader().QueryRow("PRAGMA journal_mode").Scan(&mode); err != nil || mode != "delete" {
		t.Errorf("copy journal mode %q (%v), want delete: one self-contained file", mode, err)
	}
	for _, side := range []string{"-wal", "-shm"} {
		if _, err := os.Stat(dst + side); err == nil {
			t.Errorf("%s left beside the copy", side)
		}
	}
	if err := cp.Write(context.Background(), func(Tx) error { return nil }); !errors.Is(err, ErrReadOnly) {
		t.Errorf("Write on a copy: %v, want ErrReadOnly", err)
	}
}
