package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"time"

	"github.com/payswitch/payswitch/config"
	"github.com/payswitch/payswitch/internal/outdir"
	"github.com/payswitch/payswitch/ledger"
	"github.com/payswitch/payswitch/settlement"
	"github.com/payswitch/payswitch/store"
	payswitch "github.com/payswitch/payswitch/switch"
)

const settleUsage = `usage: payswitch settle -config config.yaml -date YYYY-MM-DD -out DIR

Closes business day YYYY-MM-DD for merchants: each merchant's takings of that day move
from its account to the settlement account of its currency ("settlement:KES"), in one
ledger transfer per merchant, and DIR/settlement-YYYY-MM-DD.csv lists per merchant the
day's payments, reversals, refunds, takings and the amount settled, and beside each
merchant that was paid at its stores' tills one line per store (status "store"; "main"
is what was paid to the merchant's own code), which add up to the merchant's line.
Last, per currency, one line of status "fees": the day's fees charged into the fees
account and the agents' commissions paid out of it (nothing moves for it).

The business day is the calendar day in the config's timezone (default
Africa/Nairobi). A merchant's takings are the day's merchant payments and escrow
releases to it minus the day's reversals and refunds from it; the amount settled is the takings, never less than zero and
never more than the merchant's available balance. docs/AUDIT.md defines every column.

Running it again for the same day moves nothing more: each transfer's key is
settlement:YYYY-MM-DD:<merchant id>, and the file is written again from the ledger. A
day that has not ended yet is refused. It may run while serve is running.

The file is written new (mode 0600) as settlement-YYYY-MM-DD.csv.partial, never through a
link, and renamed over the earlier run's file when complete. A .partial already in DIR,
or anything but a regular file at the final name, stops the command with its name (the
day is settled all the same; run again once it is removed).

It exits 1 when the ledger refused some merchant's transfer (a frozen account, say); the
file names them and why, and a later run settles them once the cause is fixed.

Flags:`

func runSettle(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("settle", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprintln(stderr, settleUsage); fs.PrintDefaults() }
	path := fs.String("config", "config.yaml", "path of the config file")
	date := fs.String("date", "", "the business day to settle, YYYY-MM-DD (required)")
	out := fs.String("out", "", "directory for settlement-YYYY-MM-DD.csv (required)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	switch {
	case fs.NArg() > 0:
		return usageError{fmt.Sprintf("settle: unexpected argument %q", fs.Arg(0))}
	case *date == "":
		return usageError{"settle: -date YYYY-MM-DD is required"}
	case *out == "":
		return usageError{"settle: -out DIR is required"}
	}
	cfg, err := config.Load(*path)
	if err != nil {
		return err
	}
	day, err := settlement.ParseDay(*date, cfg.Location())
	if err != nil {
		return usageError{err.Error()}
	}
	db, err := openForSettle(ctx, cfg.Database)
	if err != nil {
		return err
	}
	defer db.Close()

	// The store lines need the payments' stores, which serve's tables hold; a database
	// of the ledger alone has no stores to list.
	var storesOf settlement.StoresOf
	payments, err := hasTable(ctx, db, "payments")
	if err != nil {
		return fmt.Errorf("settle: %w", err)
	}
	if payments {
		storesOf = payswitch.PaymentStores
	}
	r, err := settlement.SettleByStore(ctx, ledger.New(db, nil), day, time.Now(), storesOf)
	if err != nil && !errors.Is(err, settlement.ErrIncomplete) {
		return err
	}
	file, werr := writeSettlementFile(*out, r)
	if werr != nil {
		return errors.Join(err, werr)
	}

	currencies := make([]string, 0, len(r.Totals))
	for cur := range r.Totals {
		currencies = append(currencies, cur)
	}
	sort.Strings(currencies)
	fmt.Fprintf(stdout, "settled %s (%s): %d merchants, file %s\n", day.Date, cfg.Location(), len(r.Lines), file)
	for _, cur := range currencies {
		t := r.Totals[cur]
		fmt.Fprintf(stdout, "%s  payments %d %s, reversals %d %s, takings %s, settled %s\n", cur,
			t.Payments, payswitch.FormatMoney(cur, t.PaymentsAmount), t.Reversals, payswitch.FormatMoney(cur, t.ReversalsAmount),
			payswitch.FormatMoney(cur, t.Takings), payswitch.FormatMoney(cur, t.Settled))
	}
	for _, f := range r.Fees { // the fees account's day (settlement/fees.go)
		fmt.Fprintf(stdout, "%s  fees %d %s, agents' commissions %d %s, net %s\n", f.Currency,
			f.Fees, payswitch.FormatMoney(f.Currency, f.FeesAmount), f.Commissions,
			payswitch.FormatMoney(f.Currency, f.CommissionsAmount), payswitch.FormatMoney(f.Currency, f.Net))
	}
	for _, ln := range r.Lines {
		if ln.Status == settlement.StatusFailed || ln.Status == settlement.StatusShort {
			fmt.Fprintf(stderr, "settle: merchant %s (%s): %s: %s\n", ln.Code, ln.MerchantID, ln.Status, ln.Note)
		}
	}
	return err
}

// openForSettle opens the database to settle: the SQLite file, which must exist, or the
// PostgreSQL database serve set up (openExisting). A long busy timeout on either: serve
// may hold the write lock (SQLite) or a row lock (PostgreSQL) for a moment at a time,
// and settling a minute late beats failing.
func openForSettle(ctx context.Context, d config.Database) (*store.DB, error) {
	opts := store.Options{Synchronous: d.Synchronous, BusyTimeout: 30 * time.Second}
	if d.Postgres() {
		opts.Readers, opts.Writers = 1, 1
		return openExisting(ctx, "settle", d, opts, ledger.Schema)
	}
	// Settling a database that does not exist would create an empty one beside serve's.
	if _, err := os.Stat(d.Path); err != nil {
		return nil, fmt.Errorf("settle: database: %w", err)
	}
	db, err := store.Open(d.Path, opts, ledger.Schema)
	if err != nil {
		return nil, fmt.Errorf("settle: %w", err)
	}
	return db, nil
}

// writeSettlementFile writes the report as DIR/settlement-<date>.csv, replacing the file
// of an earlier run only once the new one is complete. Others may write in DIR, so the
// file is written new as settlement-<date>.csv.partial (package outdir: never through a
// link, never over a leftover, which is refused by name), and a final name that holds
// anything but a regular file is refused rather than replaced: an earlier run leaves a
// regular file, and anything else there was put by someone else. The rename would replace
// a link itself, never its target, even if one were planted after the check.
func writeSettlementFile(dir string, r settlement.Report) (string, error) {
	var buf bytes.Buffer
	if err := r.WriteCSV(&buf); err != nil {
		return "", err
	}
	out, err := outdir.Open(dir)
	if err != nil {
		return "", fmt.Errorf("settle: %w", err)
	}
	defer out.Close()
	name := "settlement-" + r.Day.Date + ".csv"
	if fi, err := out.Lstat(name); err == nil && !fi.Mode().IsRegular() {
		kind := "a " + fi.Mode().Type().String()
		if fi.Mode()&os.ModeSymlink != 0 {
			kind = "a symbolic link"
		}
		return "", fmt.Errorf("settle: %s is %s, not the regular file an earlier run leaves; check what it is, remove it and run again",
			out.Path(name), kind)
	}
	if err := out.WriteFile(name, buf.Bytes()); err != nil {
		return "", fmt.Errorf("settle: %w", err)
	}
	return out.Path(name), nil
}
