package audit

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/csv"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/payswitch/payswitch/internal/csvcell"
	"github.com/payswitch/payswitch/otp"
)

// Verify checks the export in dir from its files alone and returns its manifest. The
// first thing found wrong is returned as a *Problem naming the file and row; other errors
// are failures to read.
//
// The checks, in the order they run (docs/AUDIT.md explains each):
//   - manifest.json is well formed, of FormatVersion (or version 1), and lists the three
//     data files;
//   - in a version 2 export, no text cell of any file starts with a character that makes
//     a spreadsheet run it as a formula (csvcell.Risky), which is checked as each row
//     is read;
//   - accounts.csv has its header, one row per account id, integer balances, and opening
//     balances of 0 when the export starts at the ledger's first entry;
//   - journal.csv, row by row: seqs run on by one from chain.first_seq; times are RFC 3339
//     UTC, never go back and lie in the period; each prev_hash is the hash of the row
//     before (chain.first_prev_hash for the first); each hash is the SHA-256 of prev_hash and
//     the row's first nine fields joined by ","; each debit row is followed by the credit row of the
//     same transfer, amount, currency, payment and time; each row's account is in
//     accounts.csv with the row's currency, and its balance_after is the account's
//     previous balance (opening_balance for its first row) plus the amount for a credit
//     or minus it for a debit, and not below zero for a wallet, merchant or agent;
//   - journal.csv ends at chain.last_seq with chain.last_hash, has the manifest's row
//     count and SHA-256, its sums per currency are the manifest's totals, and debits
//     equal credits in each currency;
//   - each account's closing_balance is where the replay ended, and accounts.csv has the
//     manifest's row count and SHA-256;
//   - auth_events.csv has its header, RFC 3339 UTC times within the period, known event
//     names, masked numbers, and the manifest's row count and SHA-256.
//
// Memory grows with the number of accounts (one running balance each), not with the
// journal.
func Verify(dir string) (Manifest, error) {
	v := &verifier{dir: dir, accounts: map[string]*account{}}
	if err := v.manifest(); err != nil {
		return Manifest{}, err
	}
	accountsFile, err := v.loadAccounts()
	if err != nil {
		return Manifest{}, err
	}
	if err := v.journal(); err != nil {
		return Manifest{}, err
	}
	for _, a := range v.order {
		if a.running != a.closing {
			return Manifest{}, &Problem{File: AccountsFile, Row: a.row, Key: "account " + a.id, Msg: fmt.Sprintf(
				"closing_balance %d, but replaying journal.csv from opening_balance %d gives %d", a.closing, a.opening, a.running)}
		}
	}
	if err := v.matchFile(AccountsFile, accountsFile); err != nil {
		return Manifest{}, err
	}
	if err := v.authEvents(); err != nil {
		return Manifest{}, err
	}
	return v.m, nil
}

type verifier struct {
	dir      string
	m        Manifest
	accounts map[string]*account
	order    []*account // as listed in accounts.csv
	// quoted: the export is of a format that quotes risky text cells (csvcell.Text),
	// so one that starts with a formula character was put there after the export.
	quoted bool
}

// account is an accounts.csv row and, during the replay, its running balance.
type account struct {
	row              int64
	id, typ          string
	currency         string
	opening, closing int64
	running          int64
}

func (v *verifier) manifest() error {
	bad := func(format string, args ...any) error {
		return &Problem{File: ManifestFile, Msg: fmt.Sprintf(format, args...)}
	}
	b, err := os.ReadFile(filepath.Join(v.dir, ManifestFile))
	if err != nil {
		return bad("cannot read: %v", err)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&v.m); err != nil {
		return bad("not a manifest: %v", err)
	}
	m := &v.m
	if m.Format != FormatVersion && m.Format != formatV1 {
		return bad("format %q, this verifier reads %q and %q", m.Format, FormatVersion, formatV1)
	}
	v.quoted = m.Format != formatV1
	for _, name := range csvFiles {
		f, ok := m.Files[name]
		if !ok {
			return bad("files has no entry for %s", name)
		}
		if !isHash(f.SHA256) || f.Rows < 0 {
			return bad("files.%s is not a row count and a SHA-256", name)
		}
	}
	for _, t := range []string{m.Period.From, m.Period.To} {
		if t != "" && !isTime(t) {
			return bad("period time %q is not RFC 3339 UTC with six decimals", t)
		}
	}
	if m.Period.From != "" && m.Period.To != "" && m.Period.From >= m.Period.To {
		return bad("period from %s is not before to %s", m.Period.From, m.Period.To)
	}
	c := m.Chain
	switch {
	case c.FirstSeq < 1:
		return bad("chain.first_seq %d: seqs start at 1", c.FirstSeq)
	case c.LastSeq < c.FirstSeq-1:
		return bad("chain.last_seq %d is before chain.first_seq %d", c.LastSeq, c.FirstSeq)
	case !isHash(c.FirstPrevHash) || !isHash(c.LastHash):
		return bad("chain hashes must be 64 lowercase hex digits")
	case c.FirstSeq == 1 && c.FirstPrevHash != GenesisHash:
		return bad("chain.first_prev_hash of an export from seq 1 must be the genesis hash (64 zeros)")
	}
	if m.Totals == nil {
		return bad("totals missing")
	}
	return nil
}

func (v *verifier) loadAccounts() (File, error) {
	c, err := v.openCSV(AccountsFile, accountsHeader[:])
	if err != nil {
		return File{}, err
	}
	defer c.close()
	fromStart := v.m.Chain.FirstSeq == 1
	for {
		rec, err := c.next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return File{}, err
		}
		a := &account{row: c.row, id: rec[0], typ: rec[1], currency: rec[5]}
		bad := func(format string, args ...any) error {
			return &Problem{File: AccountsFile, Row: a.row, Key: "account " + a.id, Msg: fmt.Sprintf(format, args...)}
		}
		if err := v.checkText(rec, accountsHeader[:], accountsText, bad); err != nil {
			return File{}, err
		}
		if a.id == "" {
			return File{}, bad("empty id")
		}
		if prev, dup := v.accounts[a.id]; dup {
			return File{}, bad("listed twice, first at row %d", prev.row)
		}
		if a.opening, err = strconv.ParseInt(rec[7], 10, 64); err != nil {
			return File{}, bad("opening_balance %q is not an integer", rec[7])
		}
		if a.closing, err = strconv.ParseInt(rec[8], 10, 64); err != nil {
			return File{}, bad("closing_balance %q is not an integer", rec[8])
		}
		if fromStart && a.opening != 0 {
			return File{}, bad("opening_balance %d, but the export starts at the ledger's first entry, where every balance is 0", a.opening)
		}
		a.running = a.opening
		v.accounts[a.id] = a
		v.order = append(v.order, a)
	}
	return c.finish()
}

// debit is a debit row waiting for the credit row of its transfer.
type debit struct {
	row                               int64
	transfer, time, payment, currency string
	amount                            int64
}

func (v *verifier) journal() error {
	c, err := v.openCSV(JournalFile, journalHeader[:])
	if err != nil {
		return err
	}
	defer c.close()
	m := &v.m
	wantSeq, prevHash, prevTime := m.Chain.FirstSeq, m.Chain.FirstPrevHash, ""
	totals := map[string]Totals{}
	var pending *debit
	var line []byte // the hashed text of a row, reused
	for {
		rec, err := c.next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return err
		}
		row := c.row
		bad := func(format string, args ...any) error {
			return &Problem{File: JournalFile, Row: row, Key: "seq " + rec[0], Msg: fmt.Sprintf(format, args...)}
		}
		if err := v.checkText(rec, journalHeader[:], journalText, bad); err != nil {
			return err
		}
		seq, err := strconv.ParseInt(rec[0], 10, 64)
		if err != nil {
			return bad("seq %q is not an integer", rec[0])
		}
		if seq != wantSeq {
			return bad("seq %d where %d was expected: a row is missing, added or out of order", seq, wantSeq)
		}
		wantSeq++

		ts := rec[1]
		switch {
		case !isTime(ts):
			return bad("time %q is not RFC 3339 UTC with six decimals", ts)
		case ts < prevTime:
			return bad("time %s is before the row above's %s", ts, prevTime)
		case m.Period.From != "" && ts < m.Period.From:
			return bad("time %s is before the period's start %s", ts, m.Period.From)
		case m.Period.To != "" && ts >= m.Period.To:
			return bad("time %s is not before the period's end %s", ts, m.Period.To)
		}
		prevTime = ts

		dir, cur := rec[5], rec[7]
		if dir != "D" && dir != "C" {
			return bad("direction %q is neither D nor C", dir)
		}
		amount, err := strconv.ParseInt(rec[6], 10, 64)
		if err != nil || amount <= 0 {
			return bad("amount %q is not a positive integer", rec[6])
		}
		balance, err := strconv.ParseInt(rec[8], 10, 64)
		if err != nil {
			return bad("balance_after %q is not an integer", rec[8])
		}

		if rec[9] != prevHash {
			if row == 1 {
				return bad("prev_hash %s is not the manifest's chain.first_prev_hash %s", rec[9], prevHash)
			}
			return bad("prev_hash %s is not the hash of row %d: the chain is broken", rec[9], row-1)
		}
		// The hash covers prev_hash, then seq..balance_after as written, joined by ",".
		line = append(line[:0], rec[9]...)
		for _, field := range rec[:9] {
			line = append(line, ',')
			line = append(line, field...)
		}
		sum := sha256.Sum256(line)
		if got := hex.EncodeToString(sum[:]); got != rec[10] {
			return bad("hash mismatch: the row's fields hash to %s, the row says %s", got, rec[10])
		}
		prevHash = rec[10]

		// Double entry: every transfer is its debit row, then its credit row.
		transfer, payment := rec[2], rec[3]
		switch {
		case pending != nil && (dir != "C" || transfer != pending.transfer):
			return bad("row %d is the debit of transfer %s, but this row is not its credit", pending.row, pending.transfer)
		case pending != nil && (amount != pending.amount || cur != pending.currency || payment != pending.payment || ts != pending.time):
			return bad("the credit of transfer %s differs from its debit in amount, currency, payment or time", transfer)
		case pending != nil:
			pending = nil
		case dir == "C":
			return bad("the credit of transfer %s has no debit row before it", transfer)
		default:
			pending = &debit{row: row, transfer: transfer, time: ts, payment: payment, currency: cur, amount: amount}
		}

		a, ok := v.accounts[rec[4]]
		if !ok {
			return bad("account %s is not in accounts.csv", rec[4])
		}
		if a.currency != cur {
			return bad("currency %s, but account %s is in %s", cur, a.id, a.currency)
		}
		want := a.running + amount
		if dir == "D" {
			want = a.running - amount
		}
		if balance != want {
			return bad("balance_after %d, but account %s was at %d before this row, so %d was expected", balance, a.id, a.running, want)
		}
		if balance < 0 && (a.typ == "wallet" || a.typ == "merchant" || a.typ == "agent") {
			return bad("balance_after %d takes %s %s below zero", balance, a.typ, a.id)
		}
		a.running = balance

		t := totals[cur]
		if dir == "D" {
			t.Debits += amount
		} else {
			t.Credits += amount
		}
		totals[cur] = t
	}
	if pending != nil {
		return &Problem{File: JournalFile, Row: pending.row, Key: fmt.Sprintf("seq %d", wantSeq-1),
			Msg: fmt.Sprintf("the debit of transfer %s has no credit row after it", pending.transfer)}
	}
	f, err := c.finish()
	if err != nil {
		return err
	}

	badManifest := func(format string, args ...any) error {
		return &Problem{File: ManifestFile, Msg: fmt.Sprintf(format, args...)}
	}
	if last := wantSeq - 1; last != m.Chain.LastSeq {
		return badManifest("chain.last_seq is %d, journal.csv ends at seq %d", m.Chain.LastSeq, last)
	}
	if prevHash != m.Chain.LastHash {
		return badManifest("chain.last_hash is %s, journal.csv ends with %s", m.Chain.LastHash, prevHash)
	}
	if err := v.matchFile(JournalFile, f); err != nil {
		return err
	}
	currencies := make([]string, 0, len(totals)+len(m.Totals))
	for cur := range totals {
		currencies = append(currencies, cur)
	}
	for cur := range m.Totals {
		currencies = append(currencies, cur)
	}
	sort.Strings(currencies)
	for _, cur := range slices.Compact(currencies) {
		got, want := totals[cur], m.Totals[cur]
		if got != want {
			return badManifest("totals.%s is debits %d, credits %d; journal.csv gives debits %d, credits %d",
				cur, want.Debits, want.Credits, got.Debits, got.Credits)
		}
		if got.Debits != got.Credits {
			return &Problem{File: JournalFile, Msg: fmt.Sprintf("%s debits %d != credits %d", cur, got.Debits, got.Credits)}
		}
	}
	return nil
}

// authEventNames are the events otp records: a code's, then contract section 14's
// locks, unlocks and requests blocked by their risk grade.
var authEventNames = [...]string{"issued", "resent", "delivered", "delivery_failed", "wrong",
	"confirmed", "expired", "exhausted", "cancelled",
	otp.EventLocked, otp.EventLockRefused, otp.EventUnlocked, otp.EventBlocked}

func (v *verifier) authEvents() error {
	c, err := v.openCSV(AuthEventsFile, authEventsHeader[:])
	if err != nil {
		return err
	}
	defer c.close()
	p := v.m.Period
	for {
		rec, err := c.next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return err
		}
		row := c.row
		bad := func(format string, args ...any) error {
			return &Problem{File: AuthEventsFile, Row: row, Msg: fmt.Sprintf(format, args...)}
		}
		if err := v.checkText(rec, authEventsHeader[:], authEventsText, bad); err != nil {
			return err
		}
		switch ts := rec[0]; {
		case !isTime(ts):
			return bad("time %q is not RFC 3339 UTC with six decimals", ts)
		case p.From != "" && ts < p.From:
			return bad("time %s is before the period's start %s", ts, p.From)
		case p.To != "" && ts >= p.To:
			return bad("time %s is not before the period's end %s", ts, p.To)
		}
		if rec[2] != "" && !strings.Contains(rec[2], "****") {
			return bad("msisdn_masked %q is not masked", rec[2])
		}
		if !slices.Contains(authEventNames[:], rec[4]) {
			return bad("unknown event %q", rec[4])
		}
	}
	f, err := c.finish()
	if err != nil {
		return err
	}
	return v.matchFile(AuthEventsFile, f)
}

// checkText refuses, in an export that quotes risky text cells, a text cell of rec that
// a spreadsheet would run as a formula.
func (v *verifier) checkText(rec, header []string, text []int, bad func(string, ...any) error) error {
	if !v.quoted {
		return nil
	}
	for _, i := range text {
		if csvcell.Risky(rec[i]) {
			return bad("%s %q starts with %q, which a spreadsheet would run as a formula; the export writes it as %q",
				header[i], rec[i], rec[i][:1], csvcell.Text(rec[i]))
		}
	}
	return nil
}

// matchFile compares what a file was found to be with its manifest entry.
func (v *verifier) matchFile(name string, got File) error {
	want := v.m.Files[name]
	if got.Rows != want.Rows {
		return &Problem{File: name, Msg: fmt.Sprintf("%d rows, manifest.json says %d", got.Rows, want.Rows)}
	}
	if got.SHA256 != want.SHA256 {
		return &Problem{File: name, Msg: fmt.Sprintf("sha256 %s, manifest.json says %s", got.SHA256, want.SHA256)}
	}
	return nil
}

// csvReader reads a data file record by record, hashing its bytes as they are read.
type csvReader struct {
	name string
	f    *os.File
	sum  hash.Hash
	r    *csv.Reader
	row  int64 // records read after the header
}

func (v *verifier) openCSV(name string, header []string) (*csvReader, error) {
	f, err := os.Open(filepath.Join(v.dir, name))
	if err != nil {
		return nil, &Problem{File: name, Msg: fmt.Sprintf("cannot read: %v", err)}
	}
	c := &csvReader{name: name, f: f, sum: sha256.New()}
	c.r = csv.NewReader(bufio.NewReaderSize(io.TeeReader(f, c.sum), 256<<10))
	c.r.ReuseRecord = true
	c.r.FieldsPerRecord = len(header)
	got, err := c.r.Read()
	if err != nil || !slices.Equal(got, header) {
		f.Close()
		return nil, &Problem{File: name, Msg: fmt.Sprintf("header is not %s", strings.Join(header, ","))}
	}
	return c, nil
}

// next returns the next record, io.EOF after the last, or a *Problem for a record that
// is not CSV or has the wrong number of fields.
func (c *csvReader) next() ([]string, error) {
	rec, err := c.r.Read()
	if errors.Is(err, io.EOF) {
		return nil, io.EOF
	}
	c.row++
	if err != nil {
		var pe *csv.ParseError
		if errors.As(err, &pe) && errors.Is(pe.Err, csv.ErrFieldCount) {
			return nil, &Problem{File: c.name, Row: c.row, Msg: fmt.Sprintf("%d fields, want %d", len(rec), c.r.FieldsPerRecord)}
		}
		if errors.As(err, &pe) {
			return nil, &Problem{File: c.name, Row: c.row, Msg: fmt.Sprintf("not CSV: %v", pe.Err)}
		}
		return nil, fmt.Errorf("audit: read %s: %w", c.name, err)
	}
	return rec, nil
}

// finish reads what is left (nothing, after io.EOF) and returns the file's row count
// and hash.
func (c *csvReader) finish() (File, error) {
	if _, err := io.Copy(c.sum, c.f); err != nil {
		return File{}, fmt.Errorf("audit: read %s: %w", c.name, err)
	}
	return File{Rows: c.row, SHA256: hex.EncodeToString(c.sum.Sum(nil))}, nil
}

func (c *csvReader) close() { c.f.Close() }

func isHash(s string) bool {
	if len(s) != 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !(s[i] >= '0' && s[i] <= '9' || s[i] >= 'a' && s[i] <= 'f') {
			return false
		}
	}
	return true
}

// isTime reports whether s is a time exactly as the ledger writes it.
func isTime(s string) bool {
	t, err := time.Parse(TimeLayout, s)
	return err == nil && t.Format(TimeLayout) == s
}
