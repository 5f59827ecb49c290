package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"sort"

	"github.com/payswitch/payswitch/audit"
	payswitch "github.com/payswitch/payswitch/switch"
)

const verifyUsage = `usage: payswitch verify DIR

Checks an auditor export written by "payswitch export" using only its files; it needs
no database and no config, so it runs on any copy of DIR.

It exits 0 and prints OK and the totals when
  - every file has the row count and SHA-256 that manifest.json records,
  - the journal's chain is unbroken: seqs run on by one, each row's prev_hash is the
    hash of the row before, and each row's hash is recomputed from its fields,
  - every transfer is a debit row followed by its credit row, and debits equal credits
    in each currency, as the manifest's totals say,
  - replaying the journal from each account's opening balance gives every row's
    balance_after and ends at the closing balance in accounts.csv.
  - no text cell starts with =, +, -, @, a tab or a carriage return, which a
    spreadsheet would run as a formula (the export writes those with a ' in front;
    exports of format payswitch-audit/1, from before that rule, are read as they are).

Otherwise it exits 1 naming the first file and row that is wrong, for example
  journal.csv row 17 (seq 17): hash mismatch: ...

docs/AUDIT.md lists every check and how to make it with your own tools.`

// verifyFailed is an export that did not check out: exit status 1.
type verifyFailed struct{ err error }

func (e verifyFailed) Error() string { return "verify: " + e.err.Error() }
func (e verifyFailed) Unwrap() error { return e.err }
func (e verifyFailed) ExitCode() int { return 1 }

func runVerify(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("verify", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprintln(stderr, verifyUsage) }
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return usageError{"verify: want exactly one directory"}
	}
	dir := fs.Arg(0)
	m, err := audit.Verify(dir)
	if err != nil {
		return verifyFailed{err}
	}
	period := func(s, open string) string {
		if s == "" {
			return open
		}
		return s
	}
	j := m.Files[audit.JournalFile]
	fmt.Fprintln(stdout, "OK")
	fmt.Fprintf(stdout, "period       %s .. %s\n", period(m.Period.From, "first entry"), period(m.Period.To, "last entry"))
	fmt.Fprintf(stdout, "journal      %d rows, seq %d..%d\n", j.Rows, m.Chain.FirstSeq, m.Chain.LastSeq)
	fmt.Fprintf(stdout, "chain        %s .. %s\n", m.Chain.FirstPrevHash, m.Chain.LastHash)
	fmt.Fprintf(stdout, "accounts     %d rows\n", m.Files[audit.AccountsFile].Rows)
	fmt.Fprintf(stdout, "auth events  %d rows\n", m.Files[audit.AuthEventsFile].Rows)
	currencies := make([]string, 0, len(m.Totals))
	for cur := range m.Totals {
		currencies = append(currencies, cur)
	}
	sort.Strings(currencies)
	for _, cur := range currencies {
		t := m.Totals[cur]
		fmt.Fprintf(stdout, "%s          debits %s, credits %s (%d minor units each)\n", cur,
			payswitch.FormatMoney(cur, t.Debits), payswitch.FormatMoney(cur, t.Credits), t.Debits)
	}
	return nil
}
