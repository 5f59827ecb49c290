package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// victim is a file outside the output folder that a planted link points at; the
// commands must leave it exactly as it was.
func victim(t *testing.T) (path string, check func()) {
	t.Helper()
	path = filepath.Join(t.TempDir(), "precious")
	const content = "not the switch's to overwrite\n"
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path, func() {
		t.Helper()
		if b, err := os.ReadFile(path); err != nil || string(b) != content {
			t.Errorf("the link's target now holds %q (%v); want it untouched", b, err)
		}
	}
}

// An attacker who can write in the export folder plants a link at a name export is about
// to write: export refuses, names it, and writes nothing through it.
func TestExportRefusesPlantedLinks(t *testing.T) {
	for _, name := range []string{"journal.csv.partial", "auth_events.csv.partial", "manifest.json.partial", "journal.csv", "manifest.json"} {
		t.Run(name, func(t *testing.T) {
			f := newBooksFixture(t)
			f.seed(t)
			out := filepath.Join(f.dir, "audit")
			if err := os.Mkdir(out, 0o700); err != nil {
				t.Fatal(err)
			}
			target, check := victim(t)
			if err := os.Symlink(target, filepath.Join(out, name)); err != nil {
				t.Fatal(err)
			}
			_, _, err := runCmd("export", "-config", f.config, "-out", out)
			check()
			if err == nil || !strings.Contains(err.Error(), name) {
				t.Fatalf("export with a link at %s: %v; want an error naming it", name, err)
			}
			if fi, err := os.Lstat(filepath.Join(out, name)); err != nil || fi.Mode()&os.ModeSymlink == 0 {
				t.Errorf("the planted link: %v, %v; want it left for the operator to see", fi, err)
			}
		})
	}
	t.Run("dangling link", func(t *testing.T) {
		f := newBooksFixture(t)
		f.seed(t)
		out := filepath.Join(f.dir, "audit")
		if err := os.Mkdir(out, 0o700); err != nil {
			t.Fatal(err)
		}
		target := filepath.Join(t.TempDir(), "created-by-the-switch")
		if err := os.Symlink(target, filepath.Join(out, "accounts.csv.partial")); err != nil {
			t.Fatal(err)
		}
		if _, _, err := runCmd("export", "-config", f.config, "-out", out); err == nil {
			t.Fatal("export through a dangling link succeeded")
		}
		if _, err := os.Lstat(target); !os.IsNotExist(err) {
			t.Errorf("the link's target: %v; want it never created", err)
		}
	})
}

// A .partial left by an interrupted export is refused by name, not overwritten or removed.
func TestExportRefusesLeftoverPartial(t *testing.T) {
	f := newBooksFixture(t)
	f.seed(t)
	out := filepath.Join(f.dir, "audit")
	if err := os.Mkdir(out, 0o700); err != nil {
		t.Fatal(err)
	}
	leftover := filepath.Join(out, "accounts.csv.partial")
	if err := os.WriteFile(leftover, []byte("half a file"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, _, err := runCmd("export", "-config", f.config, "-out", out)
	if err == nil || !strings.Contains(err.Error(), leftover) || !strings.Contains(err.Error(), "remove it") {
		t.Fatalf("export beside a leftover: %v; want an error naming %s", err, leftover)
	}
	if b, _ := os.ReadFile(leftover); string(b) != "half a file" {
		t.Errorf("leftover now holds %q", b)
	}
	// Nothing of this run is left behind: removing the leftover is all a rerun needs.
	entries, _ := os.ReadDir(out)
	if len(entries) != 1 {
		t.Errorf("folder holds %d entries, want only the leftover", len(entries))
	}
	os.Remove(leftover)
	if _, stderr, err := runCmd("export", "-config", f.config, "-out", out); err != nil {
		t.Fatalf("export after removing the leftover: %v\n%s", err, stderr)
	}
	if fi, err := os.Stat(filepath.Join(out, "journal.csv")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("journal.csv: %v, %v; want mode 0600", fi, err)
	}
}

// settle writes settlement-DATE.csv.partial and renames it: a link planted at either name
// is refused by name, its target untouched. A regular file at the final name is the
// earlier run's, which a rerun replaces (TestSettleCommand).
func TestSettleRefusesPlantedLinks(t *testing.T) {
	for _, name := range []string{"settlement-2025-03-10.csv.partial", "settlement-2025-03-10.csv"} {
		t.Run(name, func(t *testing.T) {
			f := newBooksFixture(t)
			seedMerchantDay(t, f)
			out := filepath.Join(f.dir, "settlements")
			if err := os.Mkdir(out, 0o700); err != nil {
				t.Fatal(err)
			}
			target, check := victim(t)
			if err := os.Symlink(target, filepath.Join(out, name)); err != nil {
				t.Fatal(err)
			}
			_, _, err := runCmd("settle", "-config", f.config, "-date", "2025-03-10", "-out", out)
			check()
			if err == nil || !strings.Contains(err.Error(), filepath.Join(out, name)) {
				t.Fatalf("settle with a link at %s: %v; want an error naming it", name, err)
			}
			// The day is settled all the same (the ledger moved first); a rerun once the
			// link is gone writes the file and moves nothing twice.
			os.Remove(filepath.Join(out, name))
			if _, stderr, err := runCmd("settle", "-config", f.config, "-date", "2025-03-10", "-out", out); err != nil {
				t.Fatalf("settle after removing the link: %v\n%s", err, stderr)
			}
			if recs := readSettlement(t, filepath.Join(out, "settlement-2025-03-10.csv")); len(recs) != 3 || recs[1][12] != "already_settled" {
				t.Errorf("rerun's file: %q", recs)
			}
		})
	}
}
