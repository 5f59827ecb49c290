package main

import (
	"context"
	"database/sql"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/mattn/go-isatty"

	"github.com/payswitch/payswitch/audit"
	"github.com/payswitch/payswitch/config"
	"github.com/payswitch/payswitch/ledger"
	"github.com/payswitch/payswitch/otp"
	"github.com/payswitch/payswitch/store"
)

const exportUsage = `usage: payswitch export -config config.yaml -out DIR [-from RFC3339] [-to RFC3339]

Writes the auditor export of the ledger into DIR:

  journal.csv      every ledger entry of the period, oldest first, each row chained to
                   the one before by its SHA-256 hash
  accounts.csv     every account with its balance at the start and at the end of the
                   period
  auth_events.csv  what happened to each one-time code of the period (issued, wrong,
                   confirmed...), with masked phone numbers and never a code
  manifest.json    the period, each file's row count and SHA-256, the debit and credit
                   totals per currency, and where the chain starts and ends

docs/AUDIT.md describes every column and how to check the files with your own tools;
"payswitch verify DIR" checks them all.

The export reads one consistent snapshot of the database while serve keeps running
(SQLite's WAL lets both go on; on PostgreSQL, database.url, a REPEATABLE READ
transaction), and its memory does not grow with the ledger. An export of the same books
is the same files on either database. Progress
goes to stderr: a bar on a terminal, a line every few seconds otherwise.

-from and -to select the period [from, to) by the time of the ledger's entries, for
example -from 2025-03-01T00:00:00+03:00 -to 2025-04-01T00:00:00+03:00. Either may be
left out. The first row of a period links to the last entry before it, whose hash the
manifest records as chain.first_prev_hash, so consecutive periods form one chain.

DIR is created if needed (mode 0700); one that already holds an export is refused. Each
file is written new (mode 0600) as NAME.partial and renamed when complete, never through
a link; a NAME.partial already in DIR (left by an interrupted export, or put there by
someone else) stops the export with its name: check it, remove it and run again.

Flags:`

func runExport(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("export", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprintln(stderr, exportUsage); fs.PrintDefaults() }
	path := fs.String("config", "config.yaml", "path of the config file; its database.path or database.url is exported")
	out := fs.String("out", "", "directory to write the export into (required)")
	from := fs.String("from", "", "start of the period, RFC 3339, inclusive (default: the ledger's first entry)")
	to := fs.String("to", "", "end of the period, RFC 3339, exclusive (default: the last entry)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Sprintf("export: unexpected argument %q", fs.Arg(0))}
	}
	if *out == "" {
		return usageError{"export: -out DIR is required"}
	}
	opts := audit.Options{}
	var err error
	if opts.From, err = parseFlagTime("from", *from); err != nil {
		return err
	}
	if opts.To, err = parseFlagTime("to", *to); err != nil {
		return err
	}
	cfg, err := config.Load(*path)
	if err != nil {
		return err
	}
	db, closeDB, err := openForExport(ctx, cfg.Database)
	if err != nil {
		return err
	}
	defer closeDB()

	meter := newProgressMeter(stderr, time.Now)
	opts.Progress = meter.update
	m, err := audit.Export(ctx, db, *out, opts)
	if err != nil {
		meter.abandon()
		return fmt.Errorf("export: %w", err)
	}
	meter.finish(m.Files[audit.JournalFile].Rows)
	fmt.Fprintf(stdout, "exported %s: journal.csv %d rows (seq %d..%d), accounts.csv %d rows, auth_events.csv %d rows\n",
		*out, m.Files[audit.JournalFile].Rows, m.Chain.FirstSeq, m.Chain.LastSeq,
		m.Files[audit.AccountsFile].Rows, m.Files[audit.AuthEventsFile].Rows)
	fmt.Fprintf(stdout, "chain: first_prev_hash %s\n       last_hash       %s\n", m.Chain.FirstPrevHash, m.Chain.LastHash)
	return nil
}

// openForExport opens the database to export, for reading: the SQLite file read-only,
// or the PostgreSQL database serve set up (openExisting: never created or migrated).
func openForExport(ctx context.Context, d config.Database) (*sql.DB, func(), error) {
	if d.Postgres() {
		db, err := openExisting(ctx, "export", d, store.Options{Readers: 1, Writers: 1}, ledger.Schema, otp.Schema)
		if err != nil {
			return nil, nil, err
		}
		return db.Reader(), func() { db.Close() }, nil
	}
	db, err := store.OpenReadOnly(d.Path, ledger.Schema, otp.Schema)
	if err != nil {
		return nil, nil, fmt.Errorf("export: %w", err)
	}
	return db, func() { db.Close() }, nil
}

// parseFlagTime reads an RFC 3339 time; empty means unset.
func parseFlagTime(name, s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, usageError{fmt.Sprintf("export: -%s %q: want an RFC 3339 time such as 2025-03-01T00:00:00+03:00", name, s)}
	}
	return t, nil
}

// progressMeter shows how far an export is on stderr: a bar redrawn in place when stderr
// is a terminal, otherwise a plain line every progressLineEvery, which reads well in
// logs and CI.
type progressMeter struct {
	w     io.Writer
	tty   bool
	now   func() time.Time
	start time.Time
	last  time.Time // when something was last written
	total int64
	drawn bool // a bar is on screen without its newline
}

const (
	progressBarEvery  = 100 * time.Millisecond
	progressLineEvery = 5 * time.Second
	progressBarWidth  = 30
)

func newProgressMeter(w io.Writer, now func() time.Time) *progressMeter {
	p := &progressMeter{w: w, now: now, start: now()}
	p.last = p.start
	if f, ok := w.(interface{ Fd() uintptr }); ok {
		p.tty = isatty.IsTerminal(f.Fd()) || isatty.IsCygwinTerminal(f.Fd())
	}
	return p
}

// update is audit.Options.Progress.
func (p *progressMeter) update(done, total int64) {
	p.total = total
	now := p.now()
	every := progressLineEvery
	if p.tty {
		every = progressBarEvery
	}
	if now.Sub(p.last) < every {
		return
	}
	p.last = now
	p.show(done, now)
}

func (p *progressMeter) show(done int64, now time.Time) {
	elapsed := now.Sub(p.start).Seconds()
	rate := 0.0
	if elapsed > 0 {
		rate = float64(done) / elapsed
	}
	left := "?"
	if rate > 0 {
		left = time.Duration(float64(p.total-done) / rate * float64(time.Second)).Round(time.Second).String()
	}
	pct := 100.0
	if p.total > 0 {
		pct = 100 * float64(done) / float64(p.total)
	}
	if p.tty {
		n := int(pct / 100 * progressBarWidth)
		bar := strings.Repeat("=", n) + strings.Repeat(" ", progressBarWidth-n)
		fmt.Fprintf(p.w, "\r[%s] %5.1f%%  %d/%d rows  %.0f rows/s  %s left\x1b[K", bar, pct, done, p.total, rate, left)
		p.drawn = true
		return
	}
	fmt.Fprintf(p.w, "export: %d/%d rows (%.1f%%), %.0f rows/s, %s left\n", done, p.total, pct, rate, left)
}

// finish reports the whole journal written.
func (p *progressMeter) finish(rows int64) {
	now := p.now()
	if p.tty {
		p.total = rows
		p.show(rows, now)
		fmt.Fprintln(p.w)
		return
	}
	elapsed := now.Sub(p.start)
	rate := 0.0
	if elapsed > 0 {
		rate = float64(rows) / elapsed.Seconds()
	}
	fmt.Fprintf(p.w, "export: %d rows in %s (%.0f rows/s)\n", rows, elapsed.Round(time.Millisecond), rate)
}

// abandon ends a bar left on screen so that the error starts on its own line.
func (p *progressMeter) abandon() {
	if p.drawn {
		fmt.Fprintln(p.w)
	}
}
