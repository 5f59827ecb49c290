package ledger_test

import (
	"database/sql"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/payswitch/payswitch/ledger"
)

const (
	benchWallets = 1_000
	benchBatch   = 500
	benchFunds   = 1 << 40 // no wallet runs dry during a run
)

// benchLedger opens a durable (WAL, synchronous FULL) ledger with benchWallets funded
// wallets.
func benchLedger(b *testing.B) (*ledger.Ledger, []string) {
	b.Helper()
	l := mustOpenPath(b, filepath.Join(b.TempDir(), "bench.db"))
	cash := mustCash(b, l, "KES")
	ids := make([]string, benchWallets)
	deposits := make([]ledger.TransferRequest, benchWallets)
	for i := range ids {
		a, err := l.CreateAccount(ctx, ledger.NewAccount{Type: ledger.Wallet, Currency: "KES", MSISDN: fmt.Sprintf("2547%08d", i)})
		if err != nil {
			b.Fatal(err)
		}
		ids[i] = a.ID
		deposits[i] = ledger.TransferRequest{Key: "fund:" + a.ID, Debit: cash.ID, Credit: a.ID, Amount: benchFunds, Kind: "deposit"}
	}
	if _, errs := l.TransferBatch(ctx, deposits); errs[0] != nil {
		b.Fatal(errs[0])
	}
	return l, ids
}

// report gives the throughput and the CPU time per transfer, which varies less than the
// wall clock when other work shares the machine.
func report(b *testing.B, start time.Time, cpu time.Duration) {
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "transfers/s")
	b.ReportMetric(float64((cpuTime()-cpu).Microseconds())/float64(b.N), "cpu-µs/transfer")
}

// BenchmarkTransfers books wallet-to-wallet transfers through the public API,
// TransferBatch of benchBatch, durable commits.
func BenchmarkTransfers(b *testing.B) {
	l, ids := benchLedger(b)
	rng := rand.New(rand.NewPCG(1, 2))
	rs := make([]ledger.TransferRequest, 0, benchBatch)
	b.ResetTimer()
	start, cpu := time.Now(), cpuTime()
	for done := 0; done < b.N; {
		rs = rs[:0]
		for range min(benchBatch, b.N-done) {
			d := rng.IntN(len(ids))
			c := (d + 1 + rng.IntN(len(ids)-1)) % len(ids)
			rs = append(rs, ledger.TransferRequest{Key: fmt.Sprintf("bench:%d", done+len(rs)), Debit: ids[d], Credit: ids[c],
				Amount: 1 + rng.Int64N(10_000), PaymentID: "PAY" + fmt.Sprintf("%07d", done+len(rs)), Kind: "transfer"})
		}
		_, errs := l.TransferBatch(ctx, rs)
		for _, err := range errs {
			if err != nil {
				b.Fatal(err)
			}
		}
		done += len(rs)
	}
	report(b, start, cpu)
	b.StopTimer()
	if r, err := l.Verify(ctx); err != nil || !r.OK {
		b.Fatalf("Verify after the run: %v %v", err, r.Problems)
	}
}

// BenchmarkRawInsert writes the rows of the same transfers (one transfer row, two entry
// rows, two balance updates) with plain prepared SQL, batches of benchBatch, into the same
// kind of file: the ceiling BenchmarkTransfers is measured against. It checks nothing,
// reads nothing and hashes nothing.
func BenchmarkRawInsert(b *testing.B) {
	l, ids := benchLedger(b)
	var seq int64
	if err := l.DB().Reader().QueryRow(`SELECT max(seq) FROM entries`).Scan(&seq); err != nil {
		b.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	hash := strings.Repeat("a", 64)
	ts := ledger.FormatTime(time.Now())
	b.ResetTimer()
	start, cpu := time.Now(), cpuTime()
	for done := 0; done < b.N; {
		n := min(benchBatch, b.N-done)
		err := l.DB().Write(ctx, func(tx *sql.Tx) error {
			insTransfer, err := tx.Prepare(`INSERT INTO transfers (id, key, debit, credit, amount, currency, payment_id, kind, time)
				VALUES (?, ?, ?, ?, ?, 'KES', ?, 'transfer', ?)`)
			if err != nil {
				return err
			}
			defer insTransfer.Close()
			insEntry, err := tx.Prepare(`INSERT INTO entries (seq, time, transfer_id, payment_id, account_id, direction,
				amount, currency, balance_after, prev_hash, hash) VALUES (?, ?, ?, ?, ?, ?, ?, 'KES', ?, ?, ?)`)
			if err != nil {
				return err
			}
			defer insEntry.Close()
			debit, err := tx.Prepare(`UPDATE accounts SET debits_posted = debits_posted + ? WHERE id = ?`)
			if err != nil {
				return err
			}
			defer debit.Close()
			credit, err := tx.Prepare(`UPDATE accounts SET credits_posted = credits_posted + ? WHERE id = ?`)
			if err != nil {
				return err
			}
			defer credit.Close()
			for i := range n {
				d := rng.IntN(len(ids))
				c := (d + 1 + rng.IntN(len(ids)-1)) % len(ids)
				amount := 1 + rng.Int64N(10_000)
				id := l.NewTransferID()
				pay := fmt.Sprintf("PAY%07d", done+i)
				if _, err := insTransfer.Exec(id, fmt.Sprintf("raw:%d", done+i), ids[d], ids[c], amount, pay, ts); err != nil {
					return err
				}
				if _, err := debit.Exec(amount, ids[d]); err != nil {
					return err
				}
				if _, err := credit.Exec(amount, ids[c]); err != nil {
					return err
				}
				seq++
				if _, err := insEntry.Exec(seq, ts, id, pay, ids[d], "D", amount, 0, hash, hash); err != nil {
					return err
				}
				seq++
				if _, err := insEntry.Exec(seq, ts, id, pay, ids[c], "C", amount, 0, hash, hash); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
		done += n
	}
	report(b, start, cpu)
}
