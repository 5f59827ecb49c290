package main

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/payswitch/payswitch/store"
)

// A backup taken while payments keep being booked is written 0600, checked, says what it
// holds up to, and the writer is never refused meanwhile.
func TestBackupWhileBooking(t *testing.T) {
	f := newBooksFixture(t)
	f.seed(t)
	stop := f.keepWriting(t, 0)
	out := filepath.Join(f.dir, "backups", "b1.db")
	stdout, stderr, err := runCmd("backup", "-config", f.config, "-out", out)
	booked := stop()
	if err != nil {
		t.Fatalf("backup: %v\n%s", err, stderr)
	}
	if booked == 0 {
		t.Error("nothing was booked while the backup ran")
	}
	for _, want := range []string{"OK backup " + out, "journal    last seq ", "up to      2025-03-10T", "debits KES "} {
		if !strings.Contains(stdout, want) {
			t.Errorf("stdout lacks %q:\n%s", want, stdout)
		}
	}
	fi, err := os.Stat(out)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("backup mode %v, want 0600", fi.Mode().Perm())
	}
	for _, side := range []string{"-wal", "-shm", ".partial"} {
		if fileExists(out + side) {
			t.Errorf("%s left beside the backup", out+side)
		}
	}
	// The copy checks out on its own, like any restore of it would.
	rep, err := checkCopy(context.Background(), out)
	if err != nil {
		t.Fatal(err)
	}
	if rep.LastSeq < 10 || !strings.Contains(stdout, "last seq "+strconv.FormatInt(rep.LastSeq, 10)+", hash "+rep.LastHash) {
		t.Errorf("backup holds seq %d %s; stdout:\n%s", rep.LastSeq, rep.LastHash, stdout)
	}
}

func TestBackupRefusesAnExistingFile(t *testing.T) {
	f := newBooksFixture(t)
	f.seed(t)
	out := filepath.Join(f.dir, "b.db")
	if err := os.WriteFile(out, []byte("an earlier backup"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, _, err := runCmd("backup", "-config", f.config, "-out", out)
	if err == nil || !strings.Contains(err.Error(), "exists") {
		t.Fatalf("backup over a file: %v", err)
	}
	if b, _ := os.ReadFile(out); string(b) != "an earlier backup" {
		t.Error("the existing file was changed")
	}
	target, check := victim(t)
	link := filepath.Join(f.dir, "c.db")
	if err := os.Symlink(target, link+".partial"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := runCmd("backup", "-config", f.config, "-out", link); err == nil {
		t.Error("backup through a planted .partial link succeeded")
	}
	check()
}

// A copy whose books do not add up is refused and removed.
func TestBackupRefusesBadBooks(t *testing.T) {
	f := newBooksFixture(t)
	f.seed(t)
	// Change a balance behind the ledger's back, as a bug or an intruder would.
	if err := f.db.Write(context.Background(), func(tx store.Tx) error {
		_, err := tx.ExecContext(context.Background(), "UPDATE accounts SET credits_posted = credits_posted + 1 WHERE id = 'W-BOB'")
		return err
	}); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(f.dir, "bad.db")
	_, _, err := runCmd("backup", "-config", f.config, "-out", out)
	if err == nil || !strings.Contains(err.Error(), "failed its check") {
		t.Fatalf("backup of bad books: %v", err)
	}
	if fileExists(out) || fileExists(out+".partial") {
		t.Error("a copy that failed its check was left")
	}
}
