package main

import (
	"context"
	"database/sql"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/payswitch/payswitch/config"
	"github.com/payswitch/payswitch/internal/outdir"
	"github.com/payswitch/payswitch/ledger"
	"github.com/payswitch/payswitch/otp"
	"github.com/payswitch/payswitch/store"
	payswitch "github.com/payswitch/payswitch/switch"
)

const backupUsage = `usage: payswitch backup -config config.yaml -out FILE

Writes a consistent copy of the database at database.path into FILE while serve keeps
running and taking payments.

The copy is made by SQLite (VACUUM INTO) inside one read transaction on a connection
of its own: with the database's write-ahead log a reader never blocks the writer, so
payments go on while it runs; they are simply not in the copy, which is the database
as it was when the backup started. The copy is one self-contained SQLite file (no
-wal or -shm beside it), compacted, created new with mode 0600.

Before it says OK, the copy is checked:
  - SQLite's integrity_check over every page and index,
  - the ledger's verification: the journal's hash chain from its first entry, every
    entry against its transfer, every account's balance recomputed from its entries
    and holds, and debits equal to credits in each currency (the trial balance).
Then it prints what the copy holds up to: the journal's last sequence number and
hash, and the time of its last entry.

FILE must not exist. It is written as FILE.partial (created new, never through a link)
and renamed when complete and checked; a FILE.partial already there stops the backup
with its name. A copy that fails a check is removed and the command exits 1.

The backup runs at a lower CPU priority (nice 10) and in the idle I/O class, so that
serve's payments come first; -no-yield runs it at normal priority.

To restore it: payswitch restore -config config.yaml -from FILE
` + backupPostgresUsage + `

Flags:`

func runBackup(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	flags := flag.NewFlagSet("backup", flag.ContinueOnError)
	flags.SetOutput(stderr)
	flags.Usage = func() { fmt.Fprintln(stderr, backupUsage); flags.PrintDefaults() }
	path := flags.String("config", "config.yaml", "path of the config file; its database.path or database.url is backed up")
	out := flags.String("out", "", "file to write the backup into (required; must not exist)")
	fair := flags.Bool("no-yield", false, "run at normal CPU and I/O priority (by default the backup yields to serve: nice 10, idle I/O class)")
	if err := flags.Parse(args); err != nil {
		return err
	}
	if flags.NArg() > 0 {
		return usageError{fmt.Sprintf("backup: unexpected argument %q", flags.Arg(0))}
	}
	if *out == "" {
		return usageError{"backup: -out FILE is required"}
	}
	cfg, err := config.Load(*path)
	if err != nil {
		return err
	}
	if !*fair {
		yieldToServe()
	}
	start := time.Now()
	dir, name := filepath.Split(*out)
	if dir == "" {
		dir = "."
	}
	d, err := outdir.Open(dir)
	if err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	defer d.Close()
	if _, err := d.Lstat(name); err == nil {
		return fmt.Errorf("backup: %s exists; a backup never replaces a file: choose another name", d.Path(name))
	} else if !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("backup: %s: %w", d.Path(name), err)
	}
	if cfg.Database.Postgres() {
		return backupPostgres(ctx, cfg.Database, d, name, stdout)
	}
	f, err := d.CreatePartial(name)
	if err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	f.Close()
	partial := d.Path(name + outdir.PartialSuffix)
	if err := store.Backup(ctx, cfg.Database.Path, partial); err != nil {
		d.Discard(name)
		return fmt.Errorf("backup: %w", err)
	}
	copied := time.Since(start)
	rep, err := checkCopy(ctx, partial)
	if err != nil {
		d.Discard(name)
		return fmt.Errorf("backup: the copy failed its check and was removed: %w", err)
	}
	if err := d.Publish(name); err != nil {
		d.Discard(name)
		return fmt.Errorf("backup: %w", err)
	}
	d.Sync()
	var size int64
	if fi, err := d.Lstat(name); err == nil {
		size = fi.Size()
	}
	fmt.Fprintf(stdout, "OK backup %s: %d bytes, copied in %s, checked in %s\n", *out, size,
		copied.Round(time.Millisecond), (time.Since(start) - copied).Round(time.Millisecond))
	rep.print(stdout)
	return nil
}

// copyReport is what a checked copy of the database holds.
type copyReport struct {
	ledger.Report
	LastTime string // time of the journal's last entry (ledger.TimeLayout); "" if none
}

// checkCopy checks a copy of the database (a backup, a restore): SQLite's integrity
// check, then the ledger's Verify (chain, entries, balances, trial balance). The file is
// made self-contained first (store.OpenCopy), and is otherwise only read.
func checkCopy(ctx context.Context, path string) (copyReport, error) {
	db, err := store.OpenCopy(ctx, path, ledger.Schema, otp.Schema)
	if err != nil {
		return copyReport{}, err
	}
	defer db.Close()
	if err := db.IntegrityCheck(ctx); err != nil {
		return copyReport{}, err
	}
	r, err := ledger.New(db, nil).Verify(ctx)
	if err != nil {
		return copyReport{}, err
	}
	if !r.OK {
		probs := r.Problems
		if len(probs) > 3 {
			probs = append(probs[:3:3], fmt.Sprintf("and %d more", len(r.Problems)-3))
		}
		return copyReport{}, fmt.Errorf("ledger verification of %s: %s", path, strings.Join(probs, "; "))
	}
	rep := copyReport{Report: r}
	err = db.Reader().QueryRowContext(ctx, `SELECT time FROM entries ORDER BY seq DESC LIMIT 1`).Scan(&rep.LastTime)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return copyReport{}, fmt.Errorf("read the journal's last entry in %s: %w", path, err)
	}
	return rep, nil
}

func (r copyReport) print(w io.Writer) {
	last := r.LastTime
	if last == "" {
		last = "(empty journal)"
	}
	fmt.Fprintf(w, "journal    last seq %d, hash %s\n", r.LastSeq, r.LastHash)
	fmt.Fprintf(w, "up to      %s (the journal's last entry)\n", last)
	fmt.Fprintf(w, "ledger     %d accounts, %d transfers, chain and balances verified\n", r.Accounts, r.Transfers)
	currencies := make([]string, 0, len(r.Totals))
	for cur := range r.Totals {
		currencies = append(currencies, cur)
	}
	sort.Strings(currencies)
	for _, cur := range currencies {
		t := r.Totals[cur]
		fmt.Fprintf(w, "%-10s debits %s = credits %s\n", cur, payswitch.FormatMoney(cur, t.Debits), payswitch.FormatMoney(cur, t.Credits))
	}
}

// fileExists reports whether anything (a file, a link, a folder) is at path.
func fileExists(path string) bool {
	_, err := os.Lstat(path)
	return err == nil
}
