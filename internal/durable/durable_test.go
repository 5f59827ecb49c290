package durable

import (
	"os"
	"path/filepath"
	"testing"
)

// Both calls succeed on a real file and folder, and report a file that cannot be
// synced instead of passing it off as durable.
func TestSyncsAndReportsFailure(t *testing.T) {
	dir := t.TempDir()
	f, err := os.Create(filepath.Join(dir, "f"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString("data"); err != nil {
		t.Fatal(err)
	}
	if err := Datasync(f); err != nil {
		t.Fatalf("Datasync: %v", err)
	}
	if err := SyncDir(dir); err != nil {
		t.Fatalf("SyncDir: %v", err)
	}
	f.Close()
	if err := Datasync(f); err == nil {
		t.Fatal("Datasync of a closed file succeeded")
	}
	if err := SyncDir(filepath.Join(dir, "missing")); err == nil {
		t.Fatal("SyncDir of a missing folder succeeded")
	}
}
