// Package audit writes and checks the auditor export: the ledger's hash-chained journal,
// every account with its opening and closing balance, and the history of one-time codes,
// as CSV files described by a manifest. docs/AUDIT.md is the format's reference for
// auditors; this package is its implementation.
//
// Export reads the database from one read transaction, so the files are one consistent
// snapshot even while serve keeps writing, and streams rows straight to the files in
// constant memory. Verify needs only the files: it never opens a database, so an auditor
// can run it on a copy far from the switch.
package audit

import (
	"errors"
	"fmt"
)

// FormatVersion names the layout of the files; manifest.json carries it as "format". A
// change to a column, a file or the hash rule is a new version.
//
// Version 2 writes text cells through csvcell.Text, so that none starts with a
// character that makes a spreadsheet run it as a formula. Its hash rule is version 1's
// (the cells as written), and the ledger's values never needed that quote in the
// journal, so version 1 exports keep verifying unchanged.
const FormatVersion = "payswitch-audit/2"

// formatV1 is the earlier layout, which Verify still reads: the same files and hash
// rule, with text cells written as stored, whatever they start with.
const formatV1 = "payswitch-audit/1"

// The files of an export.
const (
	JournalFile    = "journal.csv"
	AccountsFile   = "accounts.csv"
	AuthEventsFile = "auth_events.csv"
	ManifestFile   = "manifest.json"
)

// csvFiles are the data files that the manifest lists, in the order they are written and
// checked.
var csvFiles = [...]string{JournalFile, AccountsFile, AuthEventsFile}

// journalHeader is journal.csv's header row. The hash of a row is the SHA-256 of
// prev_hash and the first nine fields (seq..balance_after) as written in the file,
// joined by ",".
var journalHeader = [...]string{"seq", "time", "transfer_id", "payment_id", "account_id",
	"direction", "amount", "currency", "balance_after", "prev_hash", "hash"}

// accountsHeader is accounts.csv's header row.
var accountsHeader = [...]string{"id", "type", "name", "msisdn", "code", "currency", "status",
	"opening_balance", "closing_balance"}

// authEventsHeader is auth_events.csv's header row.
var authEventsHeader = [...]string{"time", "payment_id", "msisdn_masked", "channel", "event", "detail"}

// The text columns of each file, by index in its header: the cells that go through
// csvcell.Text. Every other column is an integer and is written as one, so a negative
// balance stays -1500.
var (
	journalText    = []int{1, 2, 3, 4, 5, 7, 9, 10} // time, transfer_id, payment_id, account_id, direction, currency, prev_hash, hash
	accountsText   = []int{0, 1, 2, 3, 4, 5, 6}     // id, type, name, msisdn, code, currency, status
	authEventsText = []int{0, 1, 2, 3, 4, 5}        // every column
)

// GenesisHash is the prev_hash of the ledger's first entry: 64 zeros.
const GenesisHash = "0000000000000000000000000000000000000000000000000000000000000000"

// TimeLayout is how journal.csv and auth_events.csv write times: RFC 3339, UTC, six
// decimals. The ledger stores entry times in exactly this form and the hash covers it.
const TimeLayout = "2006-01-02T15:04:05.000000Z"

// Errors returned by Export.
var (
	// ErrExists: the output directory already holds files of an export, which Export
	// never overwrites.
	ErrExists = errors.New("audit: output directory already holds an export")
	// ErrPeriod: -from is not before -to.
	ErrPeriod = errors.New("audit: empty period")
)

// Manifest describes an export: what period it covers, what each file must hash to, the
// totals the journal must add up to, and where the chain starts and ends.
type Manifest struct {
	Format      string            `json:"format"`
	GeneratedAt string            `json:"generated_at"`
	Period      Period            `json:"period"`
	Files       map[string]File   `json:"files"`
	Totals      map[string]Totals `json:"totals"`
	Chain       Chain             `json:"chain"`
}

// Period is the time range of the journal rows and auth events exported: From inclusive,
// To exclusive, both in TimeLayout. An empty From means from the ledger's first entry, an
// empty To up to the snapshot's last one.
type Period struct {
	From string `json:"from"`
	To   string `json:"to"`
}

// File is what a data file must be: its number of rows after the header and the SHA-256
// (lowercase hex) of all its bytes.
type File struct {
	Rows   int64  `json:"rows"`
	SHA256 string `json:"sha256"`
}

// Totals are one currency's sums of debit and credit rows in journal.csv.
type Totals struct {
	Debits  int64 `json:"debits"`
	Credits int64 `json:"credits"`
}

// Chain places journal.csv in the ledger's chain. FirstPrevHash is the hash of the entry
// just before FirstSeq (GenesisHash when FirstSeq is 1), so the next period's export
// starts where this one's LastHash ends. With no rows, LastSeq is FirstSeq-1 and
// LastHash equals FirstPrevHash.
type Chain struct {
	FirstSeq      int64  `json:"first_seq"`
	LastSeq       int64  `json:"last_seq"`
	FirstPrevHash string `json:"first_prev_hash"`
	LastHash      string `json:"last_hash"`
}

// Problem is what Verify found wrong: the first file, and row within it, that does not
// check out. Row counts records after the header from 1; 0 means the file as a whole.
// Key names the row's seq or account.
type Problem struct {
	File string
	Row  int64
	Key  string
	Msg  string
}

func (p *Problem) Error() string {
	switch {
	case p.Row > 0 && p.Key != "":
		return fmt.Sprintf("%s row %d (%s): %s", p.File, p.Row, p.Key, p.Msg)
	case p.Row > 0:
		return fmt.Sprintf("%s row %d: %s", p.File, p.Row, p.Msg)
	}
	return fmt.Sprintf("%s: %s", p.File, p.Msg)
}
