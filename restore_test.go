package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/payswitch/payswitch/replica"
)

// restoreConfig is a config whose database.path is a new path (and replicas as given),
// for restoring into.
func restoreConfig(t *testing.T, replicas string) (cfg, dbPath string) {
	t.Helper()
	dir := t.TempDir()
	dbPath = filepath.Join(dir, "data", "payswitch.db")
	cfg = filepath.Join(dir, "config.yaml")
	yaml := fmt.Sprintf("database: {path: %q%s}\nhttp: {listen: \"127.0.0.1:8080\"}\ncurrency: KES\nshortcode: \"22333\"\n", dbPath, replicas)
	if err := os.WriteFile(cfg, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	return cfg, dbPath
}

// The story of a backup: taken under load, restored elsewhere, and the restored books
// pass export and verify; restore never overwrites.
func TestRestoreFromBackup(t *testing.T) {
	f := newBooksFixture(t)
	f.seed(t)
	backup := filepath.Join(f.dir, "b.db")
	if _, stderr, err := runCmd("backup", "-config", f.config, "-out", backup); err != nil {
		t.Fatalf("backup: %v\n%s", err, stderr)
	}
	want, err := checkCopy(context.Background(), backup)
	if err != nil {
		t.Fatal(err)
	}
	cfg, dbPath := restoreConfig(t, "")
	stdout, stderr, err := runCmd("restore", "-config", cfg, "-from", backup)
	if err != nil {
		t.Fatalf("restore: %v\n%s", err, stderr)
	}
	if !strings.Contains(stdout, "OK restored "+dbPath) || !strings.Contains(stdout, "last seq "+strconv.FormatInt(want.LastSeq, 10)+", hash "+want.LastHash) {
		t.Errorf("stdout:\n%s", stdout)
	}
	if fi, err := os.Stat(dbPath); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("restored database: %v %v", fi, err)
	}
	if leftovers, _ := filepath.Glob(filepath.Join(filepath.Dir(dbPath), ".restore-*")); len(leftovers) != 0 {
		t.Errorf("left behind: %v", leftovers)
	}
	out := filepath.Join(t.TempDir(), "audit")
	if _, stderr, err := runCmd("export", "-config", cfg, "-out", out); err != nil {
		t.Fatalf("export of the restored books: %v\n%s", err, stderr)
	}
	if stdout, _, err := runCmd("verify", out); err != nil || !strings.HasPrefix(stdout, "OK") {
		t.Fatalf("verify of the restored books: %v\n%s", err, stdout)
	}
	before, _ := os.ReadFile(dbPath)
	_, _, err = runCmd("restore", "-config", cfg, "-from", backup)
	if err == nil || !strings.Contains(err.Error(), "exists") {
		t.Fatalf("restore over a database: %v", err)
	}
	if after, _ := os.ReadFile(dbPath); string(after) != string(before) {
		t.Error("the existing database was changed")
	}
}

func TestRestoreRefuses(t *testing.T) {
	cfg, dbPath := restoreConfig(t, "")
	notDB := filepath.Join(t.TempDir(), "junk.db")
	if err := os.WriteFile(notDB, []byte(strings.Repeat("not sqlite ", 1000)), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"no from", nil, "-from FILE or -from URL is required"},
		{"at with a file", []string{"-from", notDB, "-at", "2026-01-01T00:00:00Z"}, "-at needs a replica URL"},
		{"bad at", []string{"-from", "file:///x", "-at", "yesterday"}, "want an RFC 3339 time"},
		{"not a database", []string{"-from", notDB}, "failed its check; nothing was restored"},
		{"missing file", []string{"-from", notDB + ".missing"}, "no such file"},
		{"empty replica", []string{"-from", "file://" + t.TempDir()}, "nothing to restore"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := runCmd(append([]string{"restore", "-config", cfg}, tc.args...)...)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want %q", err, tc.want)
			}
			if fileExists(dbPath) {
				t.Fatal("a database was left at database.path")
			}
		})
	}
}

// A file replica restores the latest state, or the state at a time.
func TestRestoreFromReplica(t *testing.T) {
	f := newBooksFixture(t)
	f.seed(t)
	dir := filepath.Join(t.TempDir(), "replica")
	rc := replica.Config{URL: "file://" + dir, SyncInterval: 20 * time.Millisecond}
	rep, err := replica.Start(f.db.Path(), []replica.Config{rc}, zerolog.Nop(), nil)
	if err != nil {
		t.Fatal(err)
	}
	f.db.BeforeFinalCheckpoint(func() { rep.Close(context.Background()) })
	waitCaughtUp := func(since time.Time) {
		t.Helper()
		deadline := time.Now().Add(20 * time.Second)
		for s := rep.Status()[0]; !s.OK || !s.CaughtUp.After(since); s = rep.Status()[0] {
			if time.Now().After(deadline) {
				t.Fatalf("replica not caught up: %+v", s)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	waitCaughtUp(time.Now())
	seqAt, _, err := f.l.Head(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(1100 * time.Millisecond) // LTX files carry times to the millisecond; leave a clear gap
	at := time.Now()
	time.Sleep(1100 * time.Millisecond)
	stop := f.keepWriting(t, time.Millisecond)
	time.Sleep(300 * time.Millisecond)
	stop()
	if err := f.db.Close(); err != nil {
		t.Fatal(err)
	}
	seqEnd := headOf(t, f.db.Path())

	cfg, dbPath := restoreConfig(t, fmt.Sprintf(", replicas: [{url: %q}]", rc.URL))
	stdout, stderr, err := runCmd("restore", "-config", cfg, "-from", rc.URL)
	if err != nil {
		t.Fatalf("restore: %v\n%s", err, stderr)
	}
	if !strings.Contains(stdout, "last seq "+strconv.FormatInt(seqEnd, 10)+",") || !strings.Contains(stdout, "replica    shipped at ") {
		t.Errorf("latest restore, want seq %d:\n%s", seqEnd, stdout)
	}
	os.Remove(dbPath)
	stdout, stderr, err = runCmd("restore", "-config", cfg, "-from", rc.URL, "-at", at.UTC().Format(time.RFC3339Nano))
	if err != nil {
		t.Fatalf("restore -at: %v\n%s", err, stderr)
	}
	if !strings.Contains(stdout, "last seq "+strconv.FormatInt(seqAt, 10)+",") {
		t.Errorf("restore at %s, want seq %d (the end is %d):\n%s", at, seqAt, seqEnd, stdout)
	}
}

// headOf reads the journal's last seq of a closed database through a checked copy.
func headOf(t *testing.T, path string) int64 {
	t.Helper()
	cp := filepath.Join(t.TempDir(), "copy.db")
	if err := copyFile(path, cp); err != nil {
		t.Fatal(err)
	}
	r, err := checkCopy(context.Background(), cp)
	if err != nil {
		t.Fatal(err)
	}
	return r.LastSeq
}
