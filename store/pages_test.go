package store

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
)

// Pages counts what the writer's commits wrote to the WAL: a row is a page or two (the
// table's and its UNIQUE index's), a megabyte of rows at least the 256 pages of 4 KiB it
// fills.
func TestPagesCountWhatCommitsWrite(t *testing.T) {
	db := mustOpen(t, filepath.Join(t.TempDir(), "x.db"), testSchema)
	// The first commit's count holds the migrations' pages too.
	if err := insert(db, "first"); err != nil {
		t.Fatal(err)
	}
	before := db.Stats().Pages
	if err := insert(db, "one"); err != nil {
		t.Fatal(err)
	}
	if d := db.Stats().Pages - before; d < 1 || d > 3 {
		t.Fatalf("one row wrote %d pages, want 1 to 3", d)
	}
	before = db.Stats().Pages
	err := db.Write(context.Background(), func(tx Tx) error {
		for i := range 1000 {
			name := fmt.Sprintf("%04d%s", i, strings.Repeat("x", 1000))
			if _, err := tx.ExecContext(context.Background(), "INSERT INTO things (name) VALUES (?)", name); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if d := db.Stats().Pages - before; d < 256 {
		t.Fatalf("a megabyte of rows wrote %d pages, want at least 256", d)
	}
}
