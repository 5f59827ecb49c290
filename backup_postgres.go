package main

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/payswitch/payswitch/config"
	"github.com/payswitch/payswitch/internal/outdir"
	"github.com/payswitch/payswitch/ledger"
	"github.com/payswitch/payswitch/otp"
	"github.com/payswitch/payswitch/store"
)

// Backup and restore on PostgreSQL (database.url) use PostgreSQL's own logical dump:
// pg_dump's custom format, which pg_restore reads, is what a PostgreSQL operator expects
// of "a backup file", it is consistent while serve keeps writing (one snapshot), and it
// restores into any PostgreSQL of the same version or newer. It is not a replacement for
// continuous archiving: a dump holds one moment, and losing the primary loses what came
// after it. Operators who must lose nothing run a synchronous standby (README, "Running
// on PostgreSQL") and, for points in time, pg_basebackup with WAL archiving; this file
// does the one-file copy that the SQLite backup does.

const backupPostgresUsage = `
On PostgreSQL (database.url) the copy is pg_dump's custom format (pg_restore reads it),
of one snapshot of the database while serve keeps running. pg_dump is found beside the
server's binaries (/usr/lib/postgresql/<version>/bin, newest first) or on PATH, and must
be of the server's version or newer; the password goes to it in the environment
(PGPASSWORD), never on its command line. The snapshot the dump reads is the one the
command reads the journal's last entry in, so the lines it prints describe the copy.
The archive is then read back (pg_restore --list) and must hold the ledger's tables.
The ledger's full verification (chain, balances) is run by restore, on the database
it rebuilds. A dump holds one moment: to lose nothing when the primary is lost, run a
synchronous standby; for any point in time, pg_basebackup with WAL archiving.`

const restorePostgresUsage = `
On PostgreSQL (database.url) FILE is a backup written by "payswitch backup" from a
PostgreSQL database (pg_dump's custom format), restored with pg_restore in one
transaction into the database database.url names, which must exist and be empty
(createdb it first; restore never overwrites). Then the ledger is verified as above;
a restored database that fails it is reported and the command exits 1 (drop it). A
SQLite backup cannot be restored into PostgreSQL, and replicas (-from URL) are SQLite's.`

// pgdumpMagic starts every pg_dump custom-format archive.
const pgdumpMagic = "PGDMP"

// backupPostgres is backup on database.url: pg_dump of one snapshot into the new file
// name in d, read back before it is published.
func backupPostgres(ctx context.Context, db config.Database, d *outdir.Dir, name string, stdout io.Writer) error {
	start := time.Now()
	dump, err := postgresTool("pg_dump")
	if err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	list, err := postgresTool("pg_restore")
	if err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	src, err := openExisting(ctx, "backup", db, store.Options{Readers: 1, Writers: 1}, ledger.Schema, otp.Schema)
	if err != nil {
		return err
	}
	defer src.Close()
	// The snapshot is exported from a transaction that stays open while pg_dump runs, so
	// that the journal's head read here is the copy's.
	tx, err := src.ReadSnapshot(ctx)
	if err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	defer tx.Rollback()
	var snapshot string
	if err := tx.QueryRowContext(ctx, `SELECT pg_export_snapshot()`).Scan(&snapshot); err != nil {
		return fmt.Errorf("backup: export a snapshot: %w", err)
	}
	rep, err := journalHead(ctx, tx)
	if err != nil {
		return fmt.Errorf("backup: %w", err)
	}

	f, err := d.CreatePartial(name)
	if err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	cmd, err := postgresToolCommand(ctx, dump, db.URL, "--format=custom", "--snapshot="+snapshot)
	if err != nil {
		f.Close()
		d.Discard(name)
		return fmt.Errorf("backup: %w", err)
	}
	var errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = f, &errOut // into the file created new, never through a name
	err = cmd.Run()
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	tx.Rollback()
	if err != nil {
		d.Discard(name)
		return fmt.Errorf("backup: %w", toolError(dump, err, errOut.String()))
	}
	copied := time.Since(start)
	if err := checkDump(ctx, list, d.Path(name+outdir.PartialSuffix)); err != nil {
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
	fmt.Fprintf(stdout, "OK backup %s: %d bytes (pg_dump custom format) of %s, copied in %s, checked in %s\n",
		d.Path(name), size, db.Where(), copied.Round(time.Millisecond), (time.Since(start) - copied).Round(time.Millisecond))
	last := rep.LastTime
	if last == "" {
		last = "(empty journal)"
	}
	fmt.Fprintf(stdout, "journal    last seq %d, hash %s\n", rep.LastSeq, rep.LastHash)
	fmt.Fprintf(stdout, "up to      %s (the journal's last entry)\n", last)
	fmt.Fprintf(stdout, "ledger     %d accounts, %d transfers; verified when restored (payswitch restore)\n", rep.Accounts, rep.Transfers)
	return nil
}

// journalHead reads what a snapshot holds up to: the journal's last entry and the
// number of accounts and transfers.
func journalHead(ctx context.Context, tx *sql.Tx) (copyReport, error) {
	var rep copyReport
	err := tx.QueryRowContext(ctx, `SELECT seq, hash, time FROM entries ORDER BY seq DESC LIMIT 1`).
		Scan(&rep.LastSeq, &rep.LastHash, &rep.LastTime)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return copyReport{}, fmt.Errorf("read the journal's last entry: %w", err)
	}
	if err := tx.QueryRowContext(ctx, `SELECT (SELECT count(*) FROM accounts), (SELECT count(*) FROM transfers)`).
		Scan(&rep.Accounts, &rep.Transfers); err != nil {
		return copyReport{}, fmt.Errorf("count accounts and transfers: %w", err)
	}
	return rep, nil
}

// checkDump reads the archive's table of contents back with pg_restore and requires the
// ledger's tables and their data in it.
func checkDump(ctx context.Context, pgRestore, path string) error {
	var out, errOut bytes.Buffer
	cmd := exec.CommandContext(ctx, pgRestore, "--list", path)
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Run(); err != nil {
		return toolError(pgRestore, err, errOut.String())
	}
	for _, table := range []string{"entries", "transfers", "accounts", "schema_versions"} {
		if !strings.Contains(out.String(), " TABLE DATA public "+table+" ") {
			return fmt.Errorf("pg_restore --list of %s shows no data of table %s", path, table)
		}
	}
	return nil
}

// restorePostgres is restore on database.url: pg_restore of a backup into the empty
// database it names, in one transaction, then the ledger's verification.
func restorePostgres(ctx context.Context, db config.Database, from string, stdout io.Writer) error {
	start := time.Now()
	if strings.Contains(from, "://") {
		return errors.New("restore: replicas (-from URL) are SQLite's; on PostgreSQL restore a backup file, or promote a standby")
	}
	if err := checkArchive(from); err != nil {
		return err
	}
	tool, err := postgresTool("pg_restore")
	if err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	if err := requireEmpty(ctx, db); err != nil {
		return err
	}
	cmd, err := postgresToolCommand(ctx, tool, db.URL, "--single-transaction", "--exit-on-error", "--no-owner", "--no-privileges", from)
	if err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	var errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = io.Discard, &errOut
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("restore: nothing was restored: %w", toolError(tool, err, errOut.String()))
	}
	copied := time.Since(start)
	dst, err := openExisting(ctx, "restore", db, store.Options{Readers: 1, Writers: 1}, ledger.Schema, otp.Schema)
	if err != nil {
		return fmt.Errorf("%w (the database holds what %s held: drop it)", err, from)
	}
	defer dst.Close()
	r, err := ledger.New(dst, nil).Verify(ctx)
	if err == nil && !r.OK {
		err = fmt.Errorf("ledger verification: %s", strings.Join(r.Problems[:min(3, len(r.Problems))], "; "))
	}
	if err != nil {
		return fmt.Errorf("restore: %s was restored into %s but failed its check: drop that database: %w", from, db.Where(), err)
	}
	rep := copyReport{Report: r}
	err = dst.Reader().QueryRowContext(ctx, `SELECT time FROM entries ORDER BY seq DESC LIMIT 1`).Scan(&rep.LastTime)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("restore: read the journal's last entry: %w", err)
	}
	fmt.Fprintf(stdout, "OK restored %s from %s: rebuilt in %s, checked in %s\n", db.Where(), from,
		copied.Round(time.Millisecond), (time.Since(start) - copied).Round(time.Millisecond))
	rep.print(stdout)
	return nil
}

// checkArchive requires from to be a pg_dump custom-format archive, and says what it
// is when it is a SQLite backup instead.
func checkArchive(from string) error {
	f, err := os.Open(from)
	if err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	defer f.Close()
	head := make([]byte, 16)
	n, _ := io.ReadFull(f, head)
	head = head[:n]
	switch {
	case bytes.HasPrefix(head, []byte(pgdumpMagic)):
		return nil
	case bytes.HasPrefix(head, []byte("SQLite format 3\x00")):
		return fmt.Errorf("restore: %s is a SQLite backup; database.url is PostgreSQL: restore it with database.path set instead (a SQLite backup cannot be restored into PostgreSQL)", from)
	}
	return fmt.Errorf("restore: %s is not a backup written by payswitch backup on PostgreSQL (pg_dump custom format)", from)
}

// requireEmpty refuses a database that holds any table of its own: restore never
// overwrites.
func requireEmpty(ctx context.Context, db config.Database) error {
	conn, err := pgx.Connect(ctx, db.URL)
	if err != nil {
		return fmt.Errorf("restore: database %s (create it first, empty: createdb): %w", db.Where(), err)
	}
	defer conn.Close(ctx)
	var tables int
	if err := conn.QueryRow(ctx, `SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE c.relkind IN ('r', 'p', 'v', 'm', 'S') AND n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast')`).Scan(&tables); err != nil {
		return fmt.Errorf("restore: database %s: %w", db.Where(), err)
	}
	if tables > 0 {
		return fmt.Errorf("restore: database %s holds %d tables; restore never overwrites a database: restore into a new, empty one (createdb), then point database.url at it", db.Where(), tables)
	}
	return nil
}
