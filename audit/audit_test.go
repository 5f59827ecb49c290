package audit_test

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/csv"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/payswitch/payswitch/audit"
	"github.com/payswitch/payswitch/ledger"
	"github.com/payswitch/payswitch/otp"
	"github.com/payswitch/payswitch/store"
)

var ctx = context.Background()

// clock is the ledger's time in tests: it moves only when told to.
type clock struct {
	mu sync.Mutex // guards t
	t  time.Time
}

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) set(t time.Time) {
	c.mu.Lock()
	c.t = t
	c.mu.Unlock()
}

// books is a switch's database with its ledger, on a file in a temporary directory.
type books struct {
	path  string
	db    *store.DB
	l     *ledger.Ledger
	clock *clock
}

var day1 = time.Date(2025, 3, 10, 9, 0, 0, 0, time.UTC)

func mustOpenBooks(tb testing.TB, opts store.Options) *books {
	tb.Helper()
	path := filepath.Join(tb.TempDir(), "payswitch.db")
	db, err := store.Open(path, opts, ledger.Schema, otp.Schema)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { db.Close() })
	c := &clock{t: day1}
	return &books{path: path, db: db, l: ledger.New(db, c.now), clock: c}
}

// readOnly opens the file as the export command does, beside the running writer.
func (b *books) readOnly(tb testing.TB) *sql.DB {
	tb.Helper()
	db, err := store.OpenReadOnly(b.path, ledger.Schema, otp.Schema)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { db.Close() })
	return db
}

func (b *books) transfer(tb testing.TB, key, debit, credit string, amount int64, payment, kind string) ledger.Transfer {
	tb.Helper()
	tr, err := b.l.Transfer(ctx, ledger.TransferRequest{Key: key, Debit: debit, Credit: credit, Amount: amount,
		PaymentID: payment, Kind: kind})
	if err != nil {
		tb.Fatal(err)
	}
	return tr
}

func (b *books) event(tb testing.TB, e otp.Event) {
	tb.Helper()
	if err := b.db.Write(ctx, func(tx store.Tx) error { return otp.RecordEvent(ctx, tx, e) }); err != nil {
		tb.Fatal(err)
	}
}

// seed books a small day: two deposits, two merchant payments, one reversed. Its
// journal is, by seq: 1-2 deposit to alice, 3-4 deposit to bob, 5-6 alice pays the
// merchant, 7-8 bob pays the merchant, 9-10 bob's payment reversed.
func seed(tb testing.TB, b *books) {
	tb.Helper()
	if _, err := b.l.SystemAccount(ctx, ledger.Cash, "KES", "KES"); err != nil {
		tb.Fatal(err)
	}
	for _, a := range []ledger.NewAccount{
		{ID: "W-ALICE", Type: ledger.Wallet, Currency: "KES", Name: "Alice", MSISDN: "254700000001"},
		{ID: "W-BOB", Type: ledger.Wallet, Currency: "KES", Name: "Bob, Jr.", MSISDN: "254700000002"},
		{ID: "M-MAMA", Type: ledger.Merchant, Currency: "KES", Name: "Mama \"Mboga\"", Code: "55501"},
	} {
		if _, err := b.l.CreateAccount(ctx, a); err != nil {
			tb.Fatal(err)
		}
	}
	b.transfer(tb, "dep:1", "cash:KES", "W-ALICE", 100000, "DEP0000001", "deposit")
	b.transfer(tb, "dep:2", "cash:KES", "W-BOB", 50000, "DEP0000002", "deposit")
	b.event(tb, otp.Event{Time: b.clock.now(), PaymentID: "PAY0000001", MSISDN: "254700000001", Channel: "sms", Event: otp.EventIssued})
	b.event(tb, otp.Event{Time: b.clock.now(), PaymentID: "PAY0000001", MSISDN: "254700000001", Channel: "sms", Event: otp.EventWrong, Detail: "2 tries left"})
	b.event(tb, otp.Event{Time: b.clock.now(), PaymentID: "PAY0000001", MSISDN: "254700000001", Channel: "sms", Event: otp.EventConfirmed})
	b.transfer(tb, "PAY0000001:hold", "W-ALICE", "M-MAMA", 15000, "PAY0000001", "merchant_payment")
	bobPays := b.transfer(tb, "PAY0000002:hold", "W-BOB", "M-MAMA", 2000, "PAY0000002", "merchant_payment")
	if _, err := b.l.Reverse(ctx, bobPays.ID, "PAY0000002:reverse"); err != nil {
		tb.Fatal(err)
	}
}

func mustExport(tb testing.TB, db *sql.DB, dir string, opts audit.Options) audit.Manifest {
	tb.Helper()
	m, err := audit.Export(ctx, db, dir, opts)
	if err != nil {
		tb.Fatal(err)
	}
	return m
}

func mustVerify(tb testing.TB, dir string) audit.Manifest {
	tb.Helper()
	m, err := audit.Verify(dir)
	if err != nil {
		tb.Fatalf("verify %s: %v", dir, err)
	}
	return m
}

func readCSV(tb testing.TB, path string) [][]string {
	tb.Helper()
	f, err := os.Open(path)
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	recs, err := csv.NewReader(f).ReadAll()
	if err != nil {
		tb.Fatal(err)
	}
	return recs
}

func TestExportVerifiesAndMatchesLedger(t *testing.T) {
	b := mustOpenBooks(t, store.Options{})
	seed(t, b)
	dir := filepath.Join(t.TempDir(), "audit")
	var calls, lastDone, lastTotal int64
	m := mustExport(t, b.readOnly(t), dir, audit.Options{Progress: func(done, total int64) {
		calls, lastDone, lastTotal = calls+1, done, total
	}})
	if calls == 0 || lastDone != 10 || lastTotal != 10 {
		t.Errorf("progress: %d calls, last %d of %d; want the last call 10 of 10", calls, lastDone, lastTotal)
	}

	got := mustVerify(t, dir)
	if got.Chain != m.Chain || got.Files[audit.JournalFile] != m.Files[audit.JournalFile] {
		t.Errorf("verify read manifest %+v, export wrote %+v", got, m)
	}
	if want := (audit.Totals{Debits: 169000, Credits: 169000}); m.Totals["KES"] != want {
		t.Errorf("totals = %+v, want KES %+v", m.Totals, want)
	}
	if m.Chain.FirstSeq != 1 || m.Chain.LastSeq != 10 || m.Chain.FirstPrevHash != ledger.GenesisHash {
		t.Errorf("chain = %+v, want seqs 1..10 from the genesis hash", m.Chain)
	}
	report, err := b.l.Verify(ctx)
	if err != nil || !report.OK {
		t.Fatalf("ledger verify: %+v, %v", report, err)
	}
	if m.Chain.LastHash != report.LastHash {
		t.Errorf("last hash %s, ledger's %s", m.Chain.LastHash, report.LastHash)
	}

	journal := readCSV(t, filepath.Join(dir, audit.JournalFile))
	if len(journal) != 11 || strings.Join(journal[0], ",") !=
		"seq,time,transfer_id,payment_id,account_id,direction,amount,currency,balance_after,prev_hash,hash" {
		t.Fatalf("journal.csv: %d records, header %v", len(journal), journal[0])
	}
	var entries []ledger.Entry
	if err := b.l.Journal(ctx, 0, func(e ledger.Entry) error { entries = append(entries, e); return nil }); err != nil {
		t.Fatal(err)
	}
	for i, e := range entries {
		row := journal[i+1]
		want := []string{strconv.FormatInt(e.Seq, 10), e.TimeText, e.TransferID, e.PaymentID, e.AccountID,
			e.Direction, strconv.FormatInt(e.Amount, 10), e.Currency, strconv.FormatInt(e.BalanceAfter, 10),
			e.PrevHash, e.Hash}
		if strings.Join(row, "|") != strings.Join(want, "|") {
			t.Errorf("journal row %d = %v, want %v", i+1, row, want)
		}
	}

	accounts := readCSV(t, filepath.Join(dir, audit.AccountsFile))
	wantAccounts := map[string]string{ // id -> type,name,msisdn,code,currency,status,opening,closing
		"cash:KES": "cash,KES,,,KES,active,0,-150000",
		"W-ALICE":  "wallet,Alice,254700000001,,KES,active,0,85000",
		"W-BOB":    "wallet,\"Bob, Jr.\",254700000002,,KES,active,0,50000",
		"M-MAMA":   "merchant,\"Mama \"\"Mboga\"\"\",,55501,KES,active,0,15000",
	}
	if len(accounts) != len(wantAccounts)+1 {
		t.Fatalf("accounts.csv has %d rows, want %d", len(accounts)-1, len(wantAccounts))
	}
	for _, rec := range accounts[1:] {
		var sb strings.Builder
		w := csv.NewWriter(&sb)
		w.Write(rec[1:])
		w.Flush()
		if got := strings.TrimSuffix(sb.String(), "\n"); got != wantAccounts[rec[0]] {
			t.Errorf("account %s = %s, want %s", rec[0], got, wantAccounts[rec[0]])
		}
		acc, err := b.l.Account(ctx, rec[0])
		if err != nil {
			t.Fatal(err)
		}
		if rec[8] != strconv.FormatInt(acc.Balance.Posted, 10) {
			t.Errorf("account %s closing %s, ledger's posted balance %d", rec[0], rec[8], acc.Balance.Posted)
		}
	}

	events := readCSV(t, filepath.Join(dir, audit.AuthEventsFile))
	if len(events) != 4 {
		t.Fatalf("auth_events.csv has %d rows, want 3", len(events)-1)
	}
	for _, rec := range events[1:] {
		if rec[2] != "2547****001" || rec[1] != "PAY0000001" {
			t.Errorf("auth event %v: want payment PAY0000001 and the number masked", rec)
		}
	}
	if events[2][4] != "wrong" || events[2][5] != "2 tries left" {
		t.Errorf("second auth event %v, want the wrong code with its detail", events[2])
	}

	for _, name := range []string{audit.JournalFile, audit.AccountsFile, audit.AuthEventsFile, audit.ManifestFile} {
		fi, err := os.Stat(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("%s has mode %v, want 0600: it holds customers' data", name, fi.Mode().Perm())
		}
	}
	leftovers, _ := filepath.Glob(filepath.Join(dir, "*.partial"))
	if len(leftovers) > 0 {
		t.Errorf("temporary files left: %v", leftovers)
	}
}

func TestExportRefusesADirectoryWithAnExport(t *testing.T) {
	b := mustOpenBooks(t, store.Options{})
	seed(t, b)
	dir := t.TempDir()
	mustExport(t, b.readOnly(t), dir, audit.Options{})
	before, _ := os.ReadFile(filepath.Join(dir, audit.ManifestFile))
	if _, err := audit.Export(ctx, b.readOnly(t), dir, audit.Options{}); !errors.Is(err, audit.ErrExists) {
		t.Fatalf("second export into the same directory: %v, want ErrExists", err)
	}
	after, _ := os.ReadFile(filepath.Join(dir, audit.ManifestFile))
	if string(before) != string(after) {
		t.Error("the refused export changed the manifest")
	}
}

func TestExportRefusesAnEmptyPeriod(t *testing.T) {
	b := mustOpenBooks(t, store.Options{})
	_, err := audit.Export(ctx, b.readOnly(t), t.TempDir(), audit.Options{From: day1, To: day1})
	if !errors.Is(err, audit.ErrPeriod) {
		t.Fatalf("from == to: %v, want ErrPeriod", err)
	}
}

func TestExportOfAnEmptyLedgerVerifies(t *testing.T) {
	b := mustOpenBooks(t, store.Options{})
	dir := t.TempDir()
	m := mustExport(t, b.readOnly(t), dir, audit.Options{})
	mustVerify(t, dir)
	if m.Chain != (audit.Chain{FirstSeq: 1, LastSeq: 0, FirstPrevHash: ledger.GenesisHash, LastHash: ledger.GenesisHash}) {
		t.Errorf("chain of an empty ledger = %+v", m.Chain)
	}
}

// TestExportWhilePaymentsRun exports while a writer keeps booking transfers through the
// ledger: each export is one snapshot, so it verifies whatever was committed meanwhile,
// and the writer is never refused.
func TestExportWhilePaymentsRun(t *testing.T) {
	b := mustOpenBooks(t, store.Options{})
	seed(t, b)
	db := b.readOnly(t)

	stop := make(chan struct{})
	booked := make(chan int, 1)
	writerErr := make(chan error, 1)
	go func() {
		n := 0
		for {
			select {
			case <-stop:
				booked <- n
				writerErr <- nil
				return
			default:
			}
			n++
			_, err := b.l.Transfer(ctx, ledger.TransferRequest{Key: "load:" + strconv.Itoa(n), Debit: "cash:KES",
				Credit: "W-ALICE", Amount: int64(n), PaymentID: "LOAD", Kind: "deposit"})
			if err == nil {
				_, err = b.l.Transfer(ctx, ledger.TransferRequest{Key: "loadpay:" + strconv.Itoa(n), Debit: "W-ALICE",
					Credit: "M-MAMA", Amount: int64(n), PaymentID: "LOADPAY", Kind: "merchant_payment"})
			}
			if err != nil {
				booked <- n
				writerErr <- err
				return
			}
		}
	}()

	var lastSeq int64
	for i := 0; i < 5; i++ {
		dir := filepath.Join(t.TempDir(), strconv.Itoa(i))
		m, err := audit.Export(ctx, db, dir, audit.Options{})
		if err != nil {
			close(stop)
			t.Fatal(err)
		}
		if _, err := audit.Verify(dir); err != nil {
			close(stop)
			t.Fatalf("export %d taken while payments run: %v", i, err)
		}
		if m.Chain.LastSeq < lastSeq {
			t.Errorf("export %d ends at seq %d, before the previous one's %d", i, m.Chain.LastSeq, lastSeq)
		}
		lastSeq = m.Chain.LastSeq
	}
	close(stop)
	n := <-booked
	if err := <-writerErr; err != nil {
		t.Fatalf("writer failed after %d transfers while exports ran: %v", n, err)
	}

	// The final state exports and verifies too, and ends where the ledger does.
	dir := filepath.Join(t.TempDir(), "final")
	m := mustExport(t, db, dir, audit.Options{})
	mustVerify(t, dir)
	report, err := b.l.Verify(ctx)
	if err != nil || !report.OK {
		t.Fatalf("ledger verify: %+v %v", report, err)
	}
	if m.Chain.LastSeq != report.LastSeq || m.Chain.LastHash != report.LastHash {
		t.Errorf("export ends at seq %d %s, ledger at %d %s", m.Chain.LastSeq, m.Chain.LastHash, report.LastSeq, report.LastHash)
	}
}

// TestPeriodExports splits three days into periods: each verifies on its own, each
// starts where the one before ended, and opening balances carry over.
func TestPeriodExports(t *testing.T) {
	b := mustOpenBooks(t, store.Options{})
	seed(t, b) // day 1: seqs 1..10
	day2 := day1.Add(24 * time.Hour)
	b.clock.set(day2)
	b.transfer(t, "PAY0000003:hold", "W-ALICE", "M-MAMA", 3000, "PAY0000003", "merchant_payment") // 11-12
	b.event(t, otp.Event{Time: day2, PaymentID: "PAY0000003", MSISDN: "254700000001", Channel: "ussd", Event: otp.EventConfirmed})
	b.clock.set(day2.Add(time.Hour))
	b.transfer(t, "dep:3", "cash:KES", "W-BOB", 700, "DEP0000003", "deposit") // 13-14
	b.clock.set(day2.Add(24 * time.Hour))
	b.transfer(t, "PAY0000004:hold", "W-BOB", "M-MAMA", 100, "PAY0000004", "merchant_payment") // 15-16
	db := b.readOnly(t)

	d1, d2, d3 := filepath.Join(t.TempDir(), "d1"), filepath.Join(t.TempDir(), "d2"), filepath.Join(t.TempDir(), "d3")
	m1 := mustExport(t, db, d1, audit.Options{To: day2})
	m2 := mustExport(t, db, d2, audit.Options{From: day2, To: day2.Add(24 * time.Hour)})
	m3 := mustExport(t, db, d3, audit.Options{From: day2.Add(24 * time.Hour)})
	for _, d := range []string{d1, d2, d3} {
		mustVerify(t, d)
	}
	if m1.Chain.FirstSeq != 1 || m1.Chain.LastSeq != 10 || m2.Chain.FirstSeq != 11 || m2.Chain.LastSeq != 14 ||
		m3.Chain.FirstSeq != 15 || m3.Chain.LastSeq != 16 {
		t.Errorf("periods cover seqs %d..%d, %d..%d, %d..%d; want 1..10, 11..14, 15..16",
			m1.Chain.FirstSeq, m1.Chain.LastSeq, m2.Chain.FirstSeq, m2.Chain.LastSeq, m3.Chain.FirstSeq, m3.Chain.LastSeq)
	}
	if m2.Chain.FirstPrevHash != m1.Chain.LastHash || m3.Chain.FirstPrevHash != m2.Chain.LastHash {
		t.Error("a period's first_prev_hash is not the previous period's last_hash")
	}
	if m2.Period.From != "2025-03-11T09:00:00.000000Z" || m2.Period.To != "2025-03-12T09:00:00.000000Z" {
		t.Errorf("period = %+v", m2.Period)
	}
	if m2.Files[audit.AuthEventsFile].Rows != 1 || m1.Files[audit.AuthEventsFile].Rows != 3 {
		t.Errorf("auth events per period: %d and %d, want 3 and 1", m1.Files[audit.AuthEventsFile].Rows, m2.Files[audit.AuthEventsFile].Rows)
	}
	// Balances carry over: a period's opening is the one before's closing.
	closing1 := balances(t, d1, 8)
	opening2, closing2 := balances(t, d2, 7), balances(t, d2, 8)
	for id, bal := range closing1 {
		if opening2[id] != bal {
			t.Errorf("%s: day 2 opens at %s, day 1 closed at %s", id, opening2[id], bal)
		}
	}
	if closing2["M-MAMA"] != "18000" || closing2["W-BOB"] != "50700" {
		t.Errorf("day 2 closing balances %v", closing2)
	}

	// A period with no entries still links the chain.
	empty := filepath.Join(t.TempDir(), "empty")
	m := mustExport(t, db, empty, audit.Options{From: day2.Add(2 * time.Hour), To: day2.Add(3 * time.Hour)})
	mustVerify(t, empty)
	if m.Files[audit.JournalFile].Rows != 0 || m.Chain.FirstSeq != 15 || m.Chain.LastSeq != 14 ||
		m.Chain.FirstPrevHash != m2.Chain.LastHash || m.Chain.LastHash != m.Chain.FirstPrevHash {
		t.Errorf("empty period: %+v", m.Chain)
	}
}

// balances reads one balance column of accounts.csv by account id.
func balances(tb testing.TB, dir string, col int) map[string]string {
	tb.Helper()
	out := map[string]string{}
	for _, rec := range readCSV(tb, filepath.Join(dir, audit.AccountsFile))[1:] {
		out[rec[0]] = rec[col]
	}
	return out
}

func TestVerifyNamesTheFirstWrongFileAndRow(t *testing.T) {
	b := mustOpenBooks(t, store.Options{})
	seed(t, b)
	good := t.TempDir()
	mustExport(t, b.readOnly(t), good, audit.Options{})

	tests := []struct {
		name   string
		tamper func(t *testing.T, dir string)
		want   string // the start of the problem's message
	}{
		{"changed amount", func(t *testing.T, dir string) {
			editCSV(t, dir, audit.JournalFile, func(recs [][]string) [][]string { recs[6][6] = "15001"; return recs })
		}, "journal.csv row 6 (seq 6): hash mismatch"},
		{"changed amount with its hash recomputed", func(t *testing.T, dir string) {
			editCSV(t, dir, audit.JournalFile, func(recs [][]string) [][]string {
				recs[6][6] = "15001"
				recs[6][10] = rehash(recs[6])
				return recs
			})
		}, "journal.csv row 6 (seq 6): the credit of transfer"},
		{"changed time with the hashes recomputed", func(t *testing.T, dir string) {
			editCSV(t, dir, audit.JournalFile, func(recs [][]string) [][]string {
				for _, i := range []int{5, 6} {
					recs[i][1] = "2025-03-10T09:00:00.000001Z"
					recs[i][10] = rehash(recs[i])
				}
				return recs
			})
		}, "journal.csv row 6 (seq 6): prev_hash"},
		{"both sides of a transfer changed and the chain rewritten", func(t *testing.T, dir string) {
			editCSV(t, dir, audit.JournalFile, func(recs [][]string) [][]string {
				recs[5][6], recs[6][6] = "15001", "15001"
				for i := 5; i < len(recs); i++ {
					recs[i][9] = recs[i-1][10]
					recs[i][10] = rehash(recs[i])
				}
				return recs
			})
		}, "journal.csv row 5 (seq 5): balance_after 85000, but account W-ALICE was at 100000 before this row, so 84999 was expected"},
		{"deleted row", func(t *testing.T, dir string) {
			editCSV(t, dir, audit.JournalFile, func(recs [][]string) [][]string { return append(recs[:3], recs[4:]...) })
		}, "journal.csv row 3 (seq 4): seq 4 where 3 was expected"},
		{"deleted last row", func(t *testing.T, dir string) {
			editCSV(t, dir, audit.JournalFile, func(recs [][]string) [][]string { return recs[:len(recs)-1] })
		}, "journal.csv row 9 (seq 9): the debit of transfer"},
		{"reordered rows", func(t *testing.T, dir string) {
			editCSV(t, dir, audit.JournalFile, func(recs [][]string) [][]string {
				recs[5], recs[7] = recs[7], recs[5]
				return recs
			})
		}, "journal.csv row 5 (seq 7): seq 7 where 5 was expected"},
		{"edited manifest totals", func(t *testing.T, dir string) {
			editManifest(t, dir, func(m map[string]any) {
				m["totals"].(map[string]any)["KES"].(map[string]any)["debits"] = 170000
			})
		}, "manifest.json: totals.KES is debits 170000"},
		{"edited manifest row count", func(t *testing.T, dir string) {
			editManifest(t, dir, func(m map[string]any) {
				m["files"].(map[string]any)["journal.csv"].(map[string]any)["rows"] = 9
			})
		}, "journal.csv: 10 rows, manifest.json says 9"},
		{"edited manifest hash", func(t *testing.T, dir string) {
			editManifest(t, dir, func(m map[string]any) {
				m["files"].(map[string]any)["auth_events.csv"].(map[string]any)["sha256"] = strings.Repeat("ab", 32)
			})
		}, "auth_events.csv: sha256"},
		{"edited manifest last hash", func(t *testing.T, dir string) {
			editManifest(t, dir, func(m map[string]any) {
				m["chain"].(map[string]any)["last_hash"] = strings.Repeat("0", 63) + "1"
			})
		}, "manifest.json: chain.last_hash is"},
		{"edited manifest period", func(t *testing.T, dir string) {
			editManifest(t, dir, func(m map[string]any) {
				m["period"].(map[string]any)["to"] = "2025-03-10T08:00:00.000000Z"
			})
		}, "journal.csv row 1 (seq 1): time 2025-03-10T09:00:00.000000Z is not before the period's end"},
		{"unknown manifest format", func(t *testing.T, dir string) {
			editManifest(t, dir, func(m map[string]any) { m["format"] = "payswitch-audit/99" })
		}, `manifest.json: format "payswitch-audit/99"`},
		{"changed closing balance", func(t *testing.T, dir string) {
			editCSV(t, dir, audit.AccountsFile, func(recs [][]string) [][]string {
				for _, r := range recs {
					if r[0] == "M-MAMA" {
						r[8] = "16000"
					}
				}
				return recs
			})
		}, "accounts.csv row 1 (account M-MAMA): closing_balance 16000, but replaying journal.csv from opening_balance 0 gives 15000"},
		{"account missing", func(t *testing.T, dir string) {
			editCSV(t, dir, audit.AccountsFile, func(recs [][]string) [][]string { return append(recs[:1], recs[2:]...) })
		}, "journal.csv row 6 (seq 6): account M-MAMA is not in accounts.csv"},
		{"changed account name", func(t *testing.T, dir string) {
			editCSV(t, dir, audit.AccountsFile, func(recs [][]string) [][]string { recs[1][2] = "Alicia"; return recs })
		}, "accounts.csv: sha256"},
		{"number in clear in the auth history", func(t *testing.T, dir string) {
			editCSV(t, dir, audit.AuthEventsFile, func(recs [][]string) [][]string { recs[2][2] = "254700000001"; return recs })
		}, `auth_events.csv row 2: msisdn_masked "254700000001" is not masked`},
		{"journal file missing", func(t *testing.T, dir string) {
			os.Remove(filepath.Join(dir, audit.JournalFile))
		}, "journal.csv: cannot read"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := copyDir(t, good)
			tt.tamper(t, dir)
			_, err := audit.Verify(dir)
			var p *audit.Problem
			if !errors.As(err, &p) {
				t.Fatalf("verify = %v, want a *audit.Problem", err)
			}
			if !strings.HasPrefix(err.Error(), tt.want) {
				t.Errorf("verify = %q\nwant it to start %q", err, tt.want)
			}
		})
	}
}

// rehash recomputes a journal row's hash by the published rule.
func rehash(rec []string) string {
	sum := sha256.Sum256([]byte(rec[9] + "," + strings.Join(rec[:9], ",")))
	return hex.EncodeToString(sum[:])
}

func copyDir(tb testing.TB, src string) string {
	tb.Helper()
	dst := tb.TempDir()
	entries, err := os.ReadDir(src)
	if err != nil {
		tb.Fatal(err)
	}
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(src, e.Name()))
		if err != nil {
			tb.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dst, e.Name()), b, 0o600); err != nil {
			tb.Fatal(err)
		}
	}
	return dst
}

func editCSV(tb testing.TB, dir, name string, edit func([][]string) [][]string) {
	tb.Helper()
	path := filepath.Join(dir, name)
	recs := edit(readCSV(tb, path))
	f, err := os.Create(path)
	if err != nil {
		tb.Fatal(err)
	}
	w := csv.NewWriter(f)
	w.WriteAll(recs)
	if err := errors.Join(w.Error(), f.Close()); err != nil {
		tb.Fatal(err)
	}
}

func editManifest(tb testing.TB, dir string, edit func(map[string]any)) {
	tb.Helper()
	path := filepath.Join(dir, audit.ManifestFile)
	b, err := os.ReadFile(path)
	if err != nil {
		tb.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		tb.Fatal(err)
	}
	edit(m)
	if b, err = json.Marshal(m); err != nil {
		tb.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o600); err != nil {
		tb.Fatal(err)
	}
}
