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
// has no auth_events table.
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
	// the auth events all describe the same moment, whatever serve commits meanwhile.
	tx, err := db.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return Manifest{}, fmt.Errorf("audit: begin snapshot: %w", err)
	}
	defer tx.Rollback()

	if m.Chain, err = journalRange(ctx, tx, m.Period); err != nil {
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
		{AuthEventsFile, authEventsHeader[:], func(f *csvFile) error { return writeAuthEvents(ctx, tx, f, m.Period) }},
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

// journalRange finds the seqs of the period's first and last entries and the hash the
// first one links to. The ledger's seqs are gapless from 1 and its times never run
// backwards, so a period is one run of seqs, found by binary search on the primary key
// rather than a scan.
func journalRange(ctx context.Context, tx *sql.Tx, p Period) (Chain, error) {
	var maxSeq int64
	if err := tx.QueryRowContext(ctx, `SELECT COALESCE(MAX(seq), 0) FROM entries`).Scan(&maxSeq); err != nil {
		return Chain{}, fmt.Errorf("audit: read journal head: %w", err)
	}
	first, last := int64(1), maxSeq
	var err error
	if p.From != "" {
		if first, err = firstAtOrAfter(ctx, tx, maxSeq, p.From); err != nil {
			return Chain{}, err
		}
	}
	if p.To != "" {
		end, err := firstAtOrAfter(ctx, tx, maxSeq, p.To)
		if err != nil {
			return Chain{}, err
		}
		last = end - 1
	}
	last = max(last, first-1)
	c := Chain{FirstSeq: first, LastSeq: last, FirstPrevHash: GenesisHash}
	if first > 1 {
		if err := tx.QueryRowContext(ctx, `SELECT hash FROM entries WHERE seq = ?`, first-1).Scan(&c.FirstPrevHash); err != nil {
			return Chain{}, fmt.Errorf("audit: read entry %d: %w", first-1, err)
		}
	}
	c.LastHash = c.FirstPrevHash
	return c, nil
}

// firstAtOrAfter returns the smallest seq in 1..maxSeq whose time is at or after t, or
// maxSeq+1 when none is.
func firstAtOrAfter(ctx context.Context, tx *sql.Tx, maxSeq int64, t string) (int64, error) {
	lo, hi := int64(1), maxSeq+1
	for lo < hi {
		mid := lo + (hi-lo)/2
		var ts string
		if err := tx.QueryRowContext(ctx, `SELECT time FROM entries WHERE seq = ?`, mid).Scan(&ts); err != nil {
			return 0, fmt.Errorf("audit: read entry %d (the journal's seqs should be gapless): %w", mid, err)
		}
		if ts >= t {
			hi = mid
		} else {
			lo = mid + 1
		}
	}
	return lo, nil
}

func writeJournal(ctx context.Context, tx *sql.Tx, f *csvFile, m *Manifest, progress func(done, total int64)) error {
	total := m.Chain.LastSeq - m.Chain.FirstSeq + 1
	rows, err := tx.QueryContext(ctx, `SELECT seq, time, transfer_id, payment_id, account_id, direction,
		amount, currency, balance_after, prev_hash, hash FROM entries WHERE seq BETWEEN ? AND ? ORDER BY seq`,
		m.Chain.FirstSeq, m.Chain.LastSeq)
	if err != nil {
		return fmt.Errorf("audit: read journal: %w", err)
	}
	defer rows.Close()
	rec := make([]string, len(journalHeader))
	var seq, amount, balance int64
	// Totals are kept per currency; the last one is cached because consecutive rows
	// nearly always share it.
	var cur string
	var curTotals Totals
	flush := func() {
		if cur != "" {
			m.Totals[cur] = curTotals
		}
	}
	for rows.Next() {
		if err := rows.Scan(&seq, &rec[1], &rec[2], &rec[3], &rec[4], &rec[5], &amount, &rec[7],
			&balance, &rec[9], &rec[10]); err != nil {
			return fmt.Errorf("audit: read journal: %w", err)
		}
		rec[0] = strconv.FormatInt(seq, 10)
		rec[6] = strconv.FormatInt(amount, 10)
		rec[8] = strconv.FormatInt(balance, 10)
		// The hash covers the cells as written, and the ledger computed it over the
		// stored values: the two agree only while no stored value needs the quote. The
		// ledger's ids, times, currencies and hashes never start with one of those
		// characters; should one ever, a file that cannot verify is worse than none.
		for _, i := range journalText {
			if cell := csvcell.Text(rec[i]); cell != rec[i] {
				return fmt.Errorf("audit: journal entry seq %d: %s %q would be written as %q to keep spreadsheets from running it, but its hash covers the stored value: the export would not verify",
					seq, journalHeader[i], rec[i], cell)
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
			curTotals.Debits += amount
		} else {
			curTotals.Credits += amount
		}
		m.Chain.LastHash = rec[10]
		if progress != nil && f.rows%progressEvery == 0 {
			progress(f.rows, total)
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("audit: read journal: %w", err)
	}
	flush()
	if progress != nil {
		progress(f.rows, total)
	}
	return nil
}

// writeAccounts writes every account with its balance before the period's first entry and
// after its last one: the balance_after of the account's last entry below each bound (0
// when it has none), looked up on the (account_id, seq) index, so the cost is a few index
// probes per account whatever the journal's size.
func writeAccounts(ctx context.Context, tx *sql.Tx, f *csvFile, c Chain) error {
	rows, err := tx.QueryContext(ctx, `SELECT a.id, a.type, a.name, COALESCE(a.msisdn, ''), COALESCE(a.code, ''),
			a.currency, a.status,
			COALESCE((SELECT e.balance_after FROM entries e WHERE e.account_id = a.id AND e.seq < ?1
				ORDER BY e.seq DESC LIMIT 1), 0),
			COALESCE((SELECT e.balance_after FROM entries e WHERE e.account_id = a.id AND e.seq <= ?2
				ORDER BY e.seq DESC LIMIT 1), 0)
		FROM accounts a ORDER BY a.id`, c.FirstSeq, c.LastSeq)
	if err != nil {
		return fmt.Errorf("audit: read accounts: %w", err)
	}
	defer rows.Close()
	rec := make([]string, len(accountsHeader))
	var opening, closing int64
	for rows.Next() {
		if err := rows.Scan(&rec[0], &rec[1], &rec[2], &rec[3], &rec[4], &rec[5], &rec[6], &opening, &closing); err != nil {
			return fmt.Errorf("audit: read accounts: %w", err)
		}
		for _, i := range accountsText {
			rec[i] = csvcell.Text(rec[i])
		}
		rec[7] = strconv.FormatInt(opening, 10)
		rec[8] = strconv.FormatInt(closing, 10)
		if err := f.write(rec); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("audit: read accounts: %w", err)
	}
	return nil
}

// writeAuthEvents writes the code history of the period, oldest first. The table holds
// masked numbers and never a code, so rows are copied as they are, through csvcell.Text.
func writeAuthEvents(ctx context.Context, tx *sql.Tx, f *csvFile, p Period) error {
	var n int
	if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'auth_events'`).Scan(&n); err != nil {
		return fmt.Errorf("audit: look for auth_events: %w", err)
	}
	if n == 0 {
		return nil
	}
	to := p.To
	if to == "" {
		to = "\uffff" // sorts after every time
	}
	rows, err := tx.QueryContext(ctx, `SELECT time, payment_id, msisdn_masked, channel, event, detail
		FROM auth_events WHERE time >= ? AND time < ? ORDER BY seq`, p.From, to)
	if err != nil {
		return fmt.Errorf("audit: read auth events: %w", err)
	}
	defer rows.Close()
	rec := make([]string, len(authEventsHeader))
	for rows.Next() {
		if err := rows.Scan(&rec[0], &rec[1], &rec[2], &rec[3], &rec[4], &rec[5]); err != nil {
			return fmt.Errorf("audit: read auth events: %w", err)
		}
		for _, i := range authEventsText {
			rec[i] = csvcell.Text(rec[i])
		}
		if err := f.write(rec); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("audit: read auth events: %w", err)
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
