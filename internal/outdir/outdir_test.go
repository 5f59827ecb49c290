package outdir_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/payswitch/payswitch/internal/outdir"
)

func open(t *testing.T) (*outdir.Dir, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "out", "nested")
	d, err := outdir.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return d, path
}

func TestWriteFileIsPrivateAndComplete(t *testing.T) {
	d, path := open(t)
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o700 {
		t.Fatalf("folder: %v, %v; want mode 0700", fi, err)
	}
	if err := d.WriteFile("a.csv", []byte("x,y\n")); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Lstat(filepath.Join(path, "a.csv"))
	if err != nil || !fi.Mode().IsRegular() || fi.Mode().Perm() != 0o600 {
		t.Fatalf("a.csv: %v, %v; want a regular file, mode 0600", fi, err)
	}
	if _, err := os.Lstat(filepath.Join(path, "a.csv.partial")); !os.IsNotExist(err) {
		t.Errorf("partial left behind: %v", err)
	}
	// A rerun replaces the regular file it wrote before.
	if err := d.WriteFile("a.csv", []byte("x,z\n")); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(filepath.Join(path, "a.csv")); string(b) != "x,z\n" {
		t.Errorf("a.csv holds %q", b)
	}
}

func TestCreatePartialRefusesATakenName(t *testing.T) {
	target := filepath.Join(t.TempDir(), "target")
	if err := os.WriteFile(target, []byte("keep"), 0o600); err != nil {
		t.Fatal(err)
	}
	for name, plant := range map[string]func(path string) error{
		"link":          func(p string) error { return os.Symlink(target, p) },
		"dangling link": func(p string) error { return os.Symlink(target+"-missing", p) },
		"hard link":     func(p string) error { return os.Link(target, p) },
		"leftover":      func(p string) error { return os.WriteFile(p, []byte("half"), 0o600) },
		"folder":        func(p string) error { return os.Mkdir(p, 0o700) },
	} {
		t.Run(name, func(t *testing.T) {
			d, path := open(t)
			partial := filepath.Join(path, "a.csv.partial")
			if err := plant(partial); err != nil {
				t.Fatal(err)
			}
			err := d.WriteFile("a.csv", []byte("written"))
			if !errors.Is(err, outdir.ErrTaken) || !strings.Contains(err.Error(), partial) {
				t.Fatalf("WriteFile over a %s: %v; want ErrTaken naming %s", name, err, partial)
			}
			if b, _ := os.ReadFile(target); string(b) != "keep" {
				t.Errorf("target holds %q", b)
			}
			if _, err := os.Lstat(target + "-missing"); !os.IsNotExist(err) {
				t.Errorf("dangling link's target: %v; want never created", err)
			}
			if _, err := os.Lstat(partial); err != nil {
				t.Errorf("the %s was removed: %v; want it left for the operator", name, err)
			}
			if _, err := os.Lstat(filepath.Join(path, "a.csv")); !os.IsNotExist(err) {
				t.Errorf("a.csv published: %v", err)
			}
		})
	}
}

// Publish renames over a link planted at the final name: the link goes, its target stays.
func TestPublishReplacesALinkNotItsTarget(t *testing.T) {
	d, path := open(t)
	target := filepath.Join(t.TempDir(), "target")
	if err := os.WriteFile(target, []byte("keep"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(target, filepath.Join(path, "a.csv")); err != nil {
		t.Fatal(err)
	}
	if err := d.WriteFile("a.csv", []byte("written")); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(target); string(b) != "keep" {
		t.Errorf("target holds %q", b)
	}
	fi, err := os.Lstat(filepath.Join(path, "a.csv"))
	if err != nil || !fi.Mode().IsRegular() {
		t.Errorf("a.csv: %v, %v; want the new regular file", fi, err)
	}
}

// The folder is held open: moving its path away and planting a link to elsewhere in its
// place does not send the next file there.
func TestFolderSwappedAfterOpen(t *testing.T) {
	d, path := open(t)
	elsewhere := t.TempDir()
	if err := os.Rename(path, path+".moved"); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(elsewhere, path); err != nil {
		t.Fatal(err)
	}
	if err := d.WriteFile("a.csv", []byte("written")); err != nil {
		t.Fatal(err)
	}
	if entries, _ := os.ReadDir(elsewhere); len(entries) != 0 {
		t.Errorf("%d files went through the swapped path", len(entries))
	}
	if _, err := os.Stat(filepath.Join(path+".moved", "a.csv")); err != nil {
		t.Errorf("a.csv is not in the folder that was opened: %v", err)
	}
}
