package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/payswitch/payswitch/config"
	"github.com/payswitch/payswitch/replica"
)

const restoreUsage = `usage: payswitch restore -config config.yaml -from FILE|URL [-at RFC3339]

Rebuilds the database at database.path from a backup file (written by "payswitch
backup") or from a replica (database.replicas: file:///folder or s3://bucket/path).

It refuses to overwrite anything: database.path, its -wal and its -shm must not exist
(stop serve, move the damaged files aside, then restore). The database is rebuilt in a
private folder beside database.path, checked exactly as a backup is (SQLite's
integrity_check, then the ledger's chain, entries, balances and trial balance), and
only then linked into place, mode 0600. Then it prints what it restored up to: the
journal's last sequence number and hash, and the time of its last entry.

-from URL restores the replica's latest state; with -at, its state at that time (the
last commit shipped at or before it; Litestream keeps 24 hours of history by default).
A URL that is one of database.replicas uses that replica's credentials; any other
S3 URL uses AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY.

Litestream's local state for the lost database (the .NAME-litestream folder beside
it) describes a database that is gone; restore removes it, and serve rebuilds it.
The replicas' stage (the .NAME-replicas folder) describes what the replicas hold, not
the database; restore leaves it, and serve goes on from it (without it, serve
rebuilds it from the most current replica it can reach).

Start serve afterwards: it carries on from what was restored. Payments acknowledged
after the restored point (at most the replica's lag before the disk was lost) are not
in it; the SMSC redelivers what was never acknowledged.
` + restorePostgresUsage + `

Flags:`

func runRestore(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	flags := flag.NewFlagSet("restore", flag.ContinueOnError)
	flags.SetOutput(stderr)
	flags.Usage = func() { fmt.Fprintln(stderr, restoreUsage); flags.PrintDefaults() }
	path := flags.String("config", "config.yaml", "path of the config file; the database is rebuilt at its database.path (or restored into the empty database.url)")
	from := flags.String("from", "", "backup file or replica URL to restore from (required)")
	atFlag := flags.String("at", "", "with a replica URL: the point in time to restore, RFC 3339 (default: the latest)")
	if err := flags.Parse(args); err != nil {
		return err
	}
	if flags.NArg() > 0 {
		return usageError{fmt.Sprintf("restore: unexpected argument %q", flags.Arg(0))}
	}
	if *from == "" {
		return usageError{"restore: -from FILE or -from URL is required"}
	}
	isURL := strings.Contains(*from, "://")
	var at time.Time
	if *atFlag != "" {
		if !isURL {
			return usageError{"restore: -at needs a replica URL; a backup file holds one moment"}
		}
		t, err := time.Parse(time.RFC3339Nano, *atFlag)
		if err != nil {
			return usageError{fmt.Sprintf("restore: -at %q: want an RFC 3339 time such as 2026-12-06T04:00:00Z", *atFlag)}
		}
		at = t
	}
	cfg, err := config.Load(*path)
	if err != nil {
		return err
	}
	if cfg.Database.Postgres() {
		if !at.IsZero() {
			return usageError{"restore: -at needs a replica URL, and replicas are SQLite's"}
		}
		return restorePostgres(ctx, cfg.Database, *from, stdout)
	}
	target := cfg.Database.Path
	for _, p := range []string{target, target + "-wal", target + "-shm"} {
		if fileExists(p) {
			return fmt.Errorf("restore: %s exists; restore never overwrites a database: stop serve and move it aside first", p)
		}
	}
	dir := filepath.Dir(target)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("restore: create %s: %w", dir, err)
	}
	work, err := os.MkdirTemp(dir, ".restore-")
	if err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	defer os.RemoveAll(work)
	tmp := filepath.Join(work, filepath.Base(target))

	start := time.Now()
	var shipped time.Time
	if isURL {
		rc := replica.Config{URL: *from}
		for _, r := range cfg.Database.Replicas {
			if r.URL == *from {
				rc = replica.Config{URL: r.URL, AccessKeyID: r.AccessKeyID, SecretAccessKey: r.SecretAccessKey}
			}
		}
		got, err := replica.Restore(ctx, rc, tmp, at)
		if err != nil {
			return fmt.Errorf("restore: %w", err)
		}
		shipped = got.UpdatedAt
	} else if err := copyFile(*from, tmp); err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	if err := os.Chmod(tmp, 0o600); err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	copied := time.Since(start)
	rep, err := checkCopy(ctx, tmp)
	if err != nil {
		return fmt.Errorf("restore: what %s holds failed its check; nothing was restored: %w", *from, err)
	}
	// A stale Litestream state would describe the lost database's WAL, not this one.
	meta := filepath.Join(dir, "."+filepath.Base(target)+"-litestream")
	if err := os.RemoveAll(meta); err != nil {
		return fmt.Errorf("restore: remove Litestream's state of the lost database %s: %w", meta, err)
	}
	// A link, unlike a rename, fails if the name was taken meanwhile.
	if err := os.Link(tmp, target); err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
	fmt.Fprintf(stdout, "OK restored %s from %s: rebuilt in %s, checked in %s\n", target, redactURL(*from),
		copied.Round(time.Millisecond), (time.Since(start) - copied).Round(time.Millisecond))
	rep.print(stdout)
	if !shipped.IsZero() {
		fmt.Fprintf(stdout, "replica    shipped at %s (its last file used)\n", shipped.UTC().Format(time.RFC3339))
	}
	return nil
}

// copyFile copies the backup at src into dst, created new (0600) and synced.
func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	if fi, err := in.Stat(); err != nil {
		return err
	} else if !fi.Mode().IsRegular() {
		return fmt.Errorf("%s is not a file", src)
	}
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	_, err = io.Copy(out, in)
	if err == nil {
		err = out.Sync()
	}
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("copy %s: %w", src, err)
	}
	return nil
}

// redactURL shows a replica URL without its query, which can carry keys.
func redactURL(s string) string {
	if !strings.Contains(s, "://") {
		return s
	}
	return replica.Config{URL: s}.Name()
}
