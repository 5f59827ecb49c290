package audit_test

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/payswitch/payswitch/audit"
	"github.com/payswitch/payswitch/ledger"
	"github.com/payswitch/payswitch/store"
)

// benchRows is the journal size BenchmarkExport exports: two rows per transfer.
const benchRows = 1_000_000

// BenchmarkExport exports a journal of a million rows (5,000 wallets, 100 merchants)
// and reports rows per second and peak memory: the Go heap in use (sampled), and the
// process's peak resident set while exporting, which counts SQLite's own memory too
// (Linux only). The fixture is built once per run, with synchronous OFF and large
// transactions (see buildJournal).
//
//	go test -run '^$' -bench Export -benchtime 1x ./audit
func BenchmarkExport(b *testing.B) {
	bk := mustOpenBooks(b, store.Options{Synchronous: "OFF"})
	start := time.Now()
	buildJournal(b, bk, benchRows)
	b.Logf("fixture: %d journal rows in %s", benchRows, time.Since(start).Round(time.Millisecond))
	db := bk.readOnly(b)

	b.Run("1M_rows", func(b *testing.B) {
		var rows int64
		var peak memPeak
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			dir := filepath.Join(b.TempDir(), strconv.Itoa(i))
			runtime.GC()
			stop := peak.sample()
			m, err := audit.Export(ctx, db, dir, audit.Options{})
			stop()
			if err != nil {
				b.Fatal(err)
			}
			rows += m.Files[audit.JournalFile].Rows
		}
		b.StopTimer()
		b.ReportMetric(float64(rows)/b.Elapsed().Seconds(), "rows/s")
		b.ReportMetric(float64(peak.heapInuse)/(1<<20), "peak-heap-MB")
		b.ReportMetric(float64(peak.sys)/(1<<20), "go-sys-MB")
		if peak.rss > 0 {
			b.ReportMetric(float64(peak.rss)/(1<<20), "peak-rss-MB")
			b.ReportMetric(float64(peak.rss-peak.rssBefore)/(1<<20), "rss-growth-MB")
		}
	})

	b.Run("verify_1M_rows", func(b *testing.B) {
		dir := filepath.Join(b.TempDir(), "export")
		if _, err := audit.Export(ctx, db, dir, audit.Options{}); err != nil {
			b.Fatal(err)
		}
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			if _, err := audit.Verify(dir); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(benchRows*b.N)/b.Elapsed().Seconds(), "rows/s")
	})
}

// buildJournal books rows/2 transfers, a deposit to each wallet and then merchant
// payments from the wallets in turn, one millisecond apart. It writes the rows with plain
// SQL in large transactions, hashing each entry with ledger.EntryHash, because booking
// half a million transfers through the ledger's checks would take most of a minute;
// the verify sub-benchmark proves the rows follow the published rules.
func buildJournal(b *testing.B, bk *books, rows int) {
	const wallets, merchants, batch = 5000, 100, 25_000
	if _, err := bk.l.SystemAccount(ctx, ledger.Cash, "KES", "KES"); err != nil {
		b.Fatal(err)
	}
	for i := 0; i < wallets; i++ {
		if _, err := bk.l.CreateAccount(ctx, ledger.NewAccount{ID: "W" + strconv.Itoa(i), Type: ledger.Wallet,
			Currency: "KES", Name: "Wallet " + strconv.Itoa(i), MSISDN: strconv.Itoa(254700000000 + i)}); err != nil {
			b.Fatal(err)
		}
	}
	for i := 0; i < merchants; i++ {
		if _, err := bk.l.CreateAccount(ctx, ledger.NewAccount{ID: "M" + strconv.Itoa(i), Type: ledger.Merchant,
			Currency: "KES", Name: "Merchant " + strconv.Itoa(i), Code: strconv.Itoa(50000 + i)}); err != nil {
			b.Fatal(err)
		}
	}
	type totals struct{ debits, credits int64 }
	books := map[string]*totals{}
	account := func(id string) *totals {
		t := books[id]
		if t == nil {
			t = &totals{}
			books[id] = t
		}
		return t
	}
	prev, seq := ledger.GenesisHash, int64(0)
	for n := 0; n < rows/2; {
		err := bk.db.Write(ctx, func(tx store.Tx) error {
			insTransfer, err := tx.PrepareContext(context.Background(), `INSERT INTO transfers (id, key, debit, credit, amount, currency, payment_id, kind, time)
				VALUES (?, ?, ?, ?, ?, 'KES', ?, ?, ?)`)
			if err != nil {
				return err
			}
			defer insTransfer.Close()
			insEntry, err := tx.PrepareContext(context.Background(), `INSERT INTO entries (seq, time, transfer_id, payment_id, account_id, direction,
				amount, currency, balance_after, prev_hash, hash) VALUES (?, ?, ?, ?, ?, ?, ?, 'KES', ?, ?, ?)`)
			if err != nil {
				return err
			}
			defer insEntry.Close()
			for end := min(n+batch, rows/2); n < end; n++ {
				id, ts := fmt.Sprintf("TR%012d", n), ledger.FormatTime(day1.Add(time.Duration(n)*time.Millisecond))
				debit, credit, amount := "W"+strconv.Itoa(n%wallets), "M"+strconv.Itoa(n%merchants), int64(100+n%5000)
				payment, kind := "PAY"+strconv.Itoa(n), "merchant_payment"
				if n < wallets {
					debit, credit, amount = "cash:KES", "W"+strconv.Itoa(n), 100_000_000
					payment, kind = "DEP"+strconv.Itoa(n), "deposit"
				}
				if _, err := insTransfer.Exec(id, "bench:"+strconv.Itoa(n), debit, credit, amount, payment, kind, ts); err != nil {
					return err
				}
				d, c := account(debit), account(credit)
				d.debits += amount
				c.credits += amount
				for _, e := range []ledger.Entry{
					{AccountID: debit, Direction: ledger.Debit, BalanceAfter: d.credits - d.debits},
					{AccountID: credit, Direction: ledger.Credit, BalanceAfter: c.credits - c.debits},
				} {
					seq++
					e.Seq, e.TimeText, e.TransferID, e.PaymentID, e.Amount, e.Currency, e.PrevHash = seq, ts, id, payment, amount, "KES", prev
					e.Hash = ledger.EntryHash(e)
					if _, err := insEntry.Exec(e.Seq, ts, id, payment, e.AccountID, e.Direction, amount, e.BalanceAfter,
						e.PrevHash, e.Hash); err != nil {
						return err
					}
					prev = e.Hash
				}
			}
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
	}
	err := bk.db.Write(ctx, func(tx store.Tx) error {
		for id, t := range books {
			if _, err := tx.ExecContext(context.Background(), `UPDATE accounts SET debits_posted = ?, credits_posted = ? WHERE id = ?`,
				t.debits, t.credits, id); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
}

// memPeak keeps the highest memory readings seen while sampling.
type memPeak struct {
	mu        sync.Mutex // guards the fields below
	heapInuse uint64
	sys       uint64
	rss       uint64
	rssBefore uint64 // resident set when sampling started
}

// sample reads memory every few milliseconds until stop is called.
func (p *memPeak) sample() (stop func()) {
	resetPeakRSS()
	p.rssBefore = readStatus("VmRSS:")
	done := make(chan struct{})
	finished := make(chan struct{})
	read := func() {
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		p.mu.Lock()
		p.heapInuse = max(p.heapInuse, ms.HeapInuse)
		p.sys = max(p.sys, ms.Sys)
		p.mu.Unlock()
	}
	go func() {
		defer close(finished)
		t := time.NewTicker(5 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				read()
			}
		}
	}()
	return func() {
		close(done)
		<-finished
		read()
		p.mu.Lock()
		p.rss = max(p.rss, readStatus("VmHWM:"))
		p.mu.Unlock()
	}
}

// resetPeakRSS starts a new peak resident set measurement (Linux: clear_refs 5).
func resetPeakRSS() { os.WriteFile("/proc/self/clear_refs", []byte("5"), 0) }

// readStatus reads a memory line of /proc/self/status, such as VmHWM (the peak resident
// set since resetPeakRSS) or VmRSS, in bytes; 0 where it cannot be read (not Linux).
func readStatus(field string) uint64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		if rest, ok := strings.CutPrefix(s.Text(), field); ok {
			kb, err := strconv.ParseUint(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			if err != nil {
				return 0
			}
			return kb << 10
		}
	}
	return 0
}
