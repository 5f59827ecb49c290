package audit

import (
	"bufio"
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/csv"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"hash"
	"io"
	"os"
	"strconv"
	"time"

	"github.com/payswitch/payswitch/internal/csvcell"
	"github.com/payswitch/payswitch/internal/outdir"
	"github.com/payswitch/payswitch/ledger"
	"github.com/payswitch/payswitch/otp"
	"github.com/payswitch/payswitch/store"
)

// Options choose what Export writes.
type Options struct {
	// From and To select the period [From, To) by journal time; the zero time leaves that
	// end open. Times are truncated to microseconds, as the ledger keeps them.
	From, To time.Time
	// Now stamps generated_at (nil means time.Now).
	Now func() time.Time
	// Progress, when set, is called as journal rows are written (every few thousand
	// rows, and once at the end) with the rows done and the rows the period holds.
	Progress func(done, total int64)
}

// progressEvery is how many rows pass between two Progress calls.
const progressEvery = 4096

// Export writes journal.csv, accounts.csv, auth_events.csv and manifest.json into dir
// from one read-only snapshot of db, which may be written to meanwhile. dir is created
// if needed; one that already holds an export's files is refused (ErrExists). The files
// appear under their names only once complete, the manifest last, so an interrupted
// export never looks whole. Each is written new as NAME.partial and never through a link
// (package outdir); a NAME.partial already there, left by a crash or planted, is refused
// (outdir.ErrTaken) and left alone. Memory use does not grow with the ledger.
//
// db needs the ledger's tables; auth_events.csv has only its header when the database
// has no auth_events table. db is a SQLite database (store.OpenReadOnly) or the Reader
// of a store.DB on PostgreSQL; the files are the same for the same books on either.
func Export(ctx context.Context, db *sql.DB, dir string, opts Options) (Manifest, error) {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	m := Manifest{Format: FormatVersion, Files: map[string]File{}, Totals: map[string]Totals{}}
	if !opts.From.IsZero() {
		m.Period.From = opts.From.UTC().Format(TimeLayout)
	}
	if !opts.To.IsZero() {
		m.Period.To = opts.To.UTC().Format(TimeLayout)
	}
	if m.Period.From != "" && m.Period.To != "" && m.Period.From >= m.Period.To {
		return Manifest{}, fmt.Errorf("%w: from %s is not before to %s", ErrPeriod, m.Period.From, m.Period.To)
	}
	// Others may write in dir: outdir never writes through a name it did not create.
	out, err := outdir.Open(dir)
	if err != nil {
		return Manifest{}, fmt.Errorf("audit: %w", err)
	}
	defer out.Close()
	for _, name := range append(csvFiles[:], ManifestFile) {
		if _, err := out.Lstat(name); err == nil {
			return Manifest{}, fmt.Errorf("%w: %s has %s", ErrExists, dir, name)
		}
	}

	// One read transaction is one snapshot: the journal, the balances computed from it and
	// the auth events all describe the same moment, whatever serve commits meanwhile. On
	// PostgreSQL that takes REPEATABLE READ (READ COMMITTED reads anew per statement).
	d := dialectOf(db)
	tx, err := db.BeginTx(ctx, snapshotOptions(d))
	if err != nil {
		return Manifest{}, fmt.Errorf("audit: begin snapshot: %w", err)
	}
	defer tx.Rollback()

	if m.Chain, err = journalRange(ctx, tx, opts.From, opts.To); err != nil {
		return Manifest{}, err
	}
	m.GeneratedAt = opts.Now().UTC().Format(TimeLayout)

	var written []*csvFile
	defer func() {
		for _, f := range written {
			f.abort()
		}
	}()
	steps := []struct {
		name   string
		header []string
		write  func(*csvFile) error
	}{
		{JournalFile, journalHeader[:], func(f *csvFile) error { return writeJournal(ctx, tx, f, &m, opts.Progress) }},
		{AccountsFile, accountsHeader[:], func(f *csvFile) error { return writeAccounts(ctx, tx, f, m.Chain) }},
		{AuthEventsFile, authEventsHeader[:], func(f *csvFile) error { return writeAuthEvents(ctx, tx, d, f, m.Period) }},
	}
	for _, s := range steps {
		f, err := createCSV(out, s.name, s.header)
		if err != nil {
			return Manifest{}, err
		}
		written = append(written, f)
		if err := s.write(f); err != nil {
			return Manifest{}, err
		}
		if m.Files[s.name], err = f.finish(); err != nil {
			return Manifest{}, err
		}
	}
	for _, f := range written {
		if err := f.publish(); err != nil {
			return Manifest{}, err
		}
	}
	written = nil
	if err := writeManifest(out, m); err != nil {
		return Manifest{}, err
	}
	return m, nil
}

// journalRange finds the period's run of the journal and the hash its first entry links
// to (ledger.JournalSpan: a binary search on the seqs, not a scan).
func journalRange(ctx context.Context, tx *sql.Tx, from, to time.Time) (Chain, error) {
	s, err := ledger.JournalSpan(ctx, tx, from, to)
	if err != nil {
		return Chain{}, fmt.Errorf("audit: %w", err)
	}
	return Chain{FirstSeq: s.First, LastSeq: s.Last, FirstPrevHash: s.PrevHash, LastHash: s.PrevHash}, nil
}

// span is c as the ledger's reads take it.
func span(c Chain) ledger.Span {
	return ledger.Span{First: c.FirstSeq, Last: c.LastSeq, PrevHash: c.FirstPrevHash}
}

func writeJournal(ctx context.Context, tx *sql.Tx, f *csvFile, m *Manifest, progress func(done, total int64)) error {
	total := m.Chain.LastSeq - m.Chain.FirstSeq + 1
	rec := make([]string, len(journalHeader))
	// Totals are kept per currency; the last one is cached because consecutive rows
	// nearly always share it.
	var cur string
	var curTotals Totals
	flush := func() {
		if cur != "" {
			m.Totals[cur] = curTotals
		}
	}
	for e, err := range ledger.JournalEntries(ctx, tx, span(m.Chain)) {
		if err != nil {
			return fmt.Errorf("audit: %w", err)
		}
		rec[0] = strconv.FormatInt(e.Seq, 10)
		rec[1], rec[2], rec[3], rec[4], rec[5] = e.TimeText, e.TransferID, e.PaymentID, e.AccountID, e.Direction
		rec[6] = strconv.FormatInt(e.Amount, 10)
		rec[7] = e.Currency
		rec[8] = strconv.FormatInt(e.BalanceAfter, 10)
		rec[9], rec[10] = e.PrevHash, e.Hash
		// The hash covers the cells as written, and the ledger computed it over the
		// stored values: the two agree only while no stored value needs the quote. The
		// ledger's ids, times, currencies and hashes never start with one of those
		// characters; should one ever, a file that cannot verify is worse than none.
		for _, i := range journalText {
			if cell := csvcell.Text(rec[i]); cell != rec[i] {
				return fmt.Errorf("audit: journal entry seq %d: %s %q would be written as %q to keep spreadsheets from running it, but its hash covers the stored value: the export would not verify",
					e.Seq, journalHeader[i], rec[i], cell)
			}
		}
		if err := f.write(rec); err != nil {
			return err
		}
		if rec[7] != cur {
			flush()
			cur = rec[7]
			curTotals = m.Totals[cur]
		}
		if rec[5] == "D" {
			curTotals.Debits += e.Amount
		} else {
			curTotals.Credits += e.Amount
		}
		m.Chain.LastHash = rec[10]
		if progress != nil && f.rows%progressEvery == 0 {
			progress(f.rows, total)
		}
	}
	flush()
	if progress != nil {
		progress(f.rows, total)
	}
	return nil
}

// writeAccounts writes every account with its balance before the period's first entry and
// after its last one (ledger.AccountsAcross: a few index probes per account whatever the
// journal's size).
func writeAccounts(ctx context.Context, tx *sql.Tx, f *csvFile, c Chain) error {
	rec := make([]string, len(accountsHeader))
	for a, err := range ledger.AccountsAcross(ctx, tx, span(c)) {
		if err != nil {
			return fmt.Errorf("audit: %w", err)
		}
		rec[0], rec[1], rec[2], rec[3] = a.ID, string(a.Type), a.Name, a.MSISDN
		rec[4], rec[5], rec[6] = a.Code, a.Currency, string(a.Status)
		for _, i := range accountsText {
			rec[i] = csvcell.Text(rec[i])
		}
		rec[7] = strconv.FormatInt(a.Opening, 10)
		rec[8] = strconv.FormatInt(a.Closing, 10)
		if err := f.write(rec); err != nil {
			return err
		}
	}
	return nil
}

// writeAuthEvents writes the code history of the period, oldest first. The table holds
// masked numbers and never a code, so rows are copied as they are, through csvcell.Text.
func writeAuthEvents(ctx context.Context, tx *sql.Tx, d store.Dialect, f *csvFile, p Period) error {
	rec := make([]string, len(authEventsHeader))
	for e, err := range otp.EventsBetweenOn(ctx, tx, d, p.From, p.To) {
		if err != nil {
			return fmt.Errorf("audit: %w", err)
		}
		rec[0], rec[1], rec[2], rec[3], rec[4], rec[5] = e.Time, e.PaymentID, e.MSISDNMasked, e.Channel, e.Event, e.Detail
		for _, i := range authEventsText {
			rec[i] = csvcell.Text(rec[i])
		}
		if err := f.write(rec); err != nil {
			return err
		}
	}
	return nil
}

// csvFile is a data file being written under a temporary name: rows go through a CSV
// writer into a buffer and, in the same pass, into the SHA-256 that the manifest
// records, so no file is read twice.
type csvFile struct {
	dir  *outdir.Dir
	name string // final name; the file is written at name + ".partial"
	f    *os.File
	buf  *bufio.Writer
	sum  hash.Hash
	csv  *csv.Writer
	rows int64 // rows written after the header
	done bool  // published: nothing left to remove
}

func createCSV(dir *outdir.Dir, name string, header []string) (*csvFile, error) {
	f, err := dir.CreatePartial(name)
	if err != nil {
		return nil, fmt.Errorf("audit: %w", err)
	}
	c := &csvFile{dir: dir, name: name, f: f, buf: bufio.NewWriterSize(f, 256<<10), sum: sha256.New()}
	c.csv = csv.NewWriter(io.MultiWriter(c.buf, c.sum))
	if err := c.csv.Write(header); err != nil {
		c.abort()
		return nil, fmt.Errorf("audit: write %s: %w", name, err)
	}
	return c, nil
}

func (c *csvFile) write(rec []string) error {
	c.rows++
	if err := c.csv.Write(rec); err != nil {
		return fmt.Errorf("audit: write %s: %w", c.name, err)
	}
	return nil
}

// finish flushes and syncs the file and returns its manifest entry.
func (c *csvFile) finish() (File, error) {
	c.csv.Flush()
	err := c.csv.Error()
	if err == nil {
		err = c.buf.Flush()
	}
	if err == nil {
		err = c.f.Sync()
	}
	if cerr := c.f.Close(); err == nil {
		err = cerr
	}
	c.f = nil
	if err != nil {
		return File{}, fmt.Errorf("audit: write %s: %w", c.name, err)
	}
	return File{Rows: c.rows, SHA256: hex.EncodeToString(c.sum.Sum(nil))}, nil
}

// publish gives the finished file its name.
func (c *csvFile) publish() error {
	if err := c.dir.Publish(c.name); err != nil {
		return fmt.Errorf("audit: %w", err)
	}
	c.done = true
	return nil
}

// abort removes a file that will not be published.
func (c *csvFile) abort() {
	if c.f != nil {
		c.f.Close()
	}
	if !c.done {
		c.dir.Discard(c.name)
	}
}

// writeManifest writes manifest.json last, then syncs the folder so that every rename
// is durable.
func writeManifest(dir *outdir.Dir, m Manifest) error {
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return fmt.Errorf("audit: encode manifest: %w", err)
	}
	b = append(b, '\n')
	if err := dir.WriteFile(ManifestFile, b); err != nil {
		return fmt.Errorf("audit: %w", err)
	}
	return nil
}
