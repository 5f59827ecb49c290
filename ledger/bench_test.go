package ledger_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/payswitch/payswitch/ledger"
	"github.com/payswitch/payswitch/store"
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
		err := l.DB().Write(ctx, func(tx store.Tx) error {
			insTransfer, err := tx.PrepareContext(context.Background(), `INSERT INTO transfers (id, key, debit, credit, amount, currency, payment_id, kind, time)
				VALUES (?, ?, ?, ?, ?, 'KES', ?, 'transfer', ?)`)
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
			debit, err := tx.PrepareContext(context.Background(), `UPDATE accounts SET debits_posted = debits_posted + ? WHERE id = ?`)
			if err != nil {
				return err
			}
			defer debit.Close()
			credit, err := tx.PrepareContext(context.Background(), `UPDATE accounts SET credits_posted = credits_posted + ? WHERE id = ?`)
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

// BenchmarkRawInsertMultiRow writes the same rows as BenchmarkRawInsert the way
// TransferBatch does: each batch's transfers with one multi-row INSERT, its entries with
// another, and each account it touches with one UPDATE of the summed change (one
// statement for all of them). It is the ceiling for a batch written with multi-row
// statements; like RawInsert it checks nothing, reads nothing and hashes nothing.
func BenchmarkRawInsertMultiRow(b *testing.B) {
	l, ids := benchLedger(b)
	var seq int64
	if err := l.DB().Reader().QueryRow(`SELECT max(seq) FROM entries`).Scan(&seq); err != nil {
		b.Fatal(err)
	}
	rows := func(n, cols int) string {
		row := "(" + strings.TrimSuffix(strings.Repeat("?, ", cols), ", ") + ")"
		return strings.TrimSuffix(strings.Repeat(row+", ", n), ", ")
	}
	rng := rand.New(rand.NewPCG(1, 2))
	hash := strings.Repeat("a", 64)
	ts := ledger.FormatTime(time.Now())
	b.ResetTimer()
	start, cpu := time.Now(), cpuTime()
	for done := 0; done < b.N; {
		n := min(benchBatch, b.N-done)
		err := l.DB().Write(ctx, func(tx store.Tx) error {
			trArgs := make([]any, 0, 7*n)
			enArgs := make([]any, 0, 9*2*n)
			debits, credits := map[string]int64{}, map[string]int64{}
			var touched []string
			for i := range n {
				d := rng.IntN(len(ids))
				c := (d + 1 + rng.IntN(len(ids)-1)) % len(ids)
				amount := 1 + rng.Int64N(10_000)
				id := l.NewTransferID()
				pay := fmt.Sprintf("PAY%07d", done+i)
				trArgs = append(trArgs, id, fmt.Sprintf("raw:%d", done+i), ids[d], ids[c], amount, pay, ts)
				enArgs = append(enArgs, seq+1, ts, id, pay, ids[d], "D", amount, hash, hash,
					seq+2, ts, id, pay, ids[c], "C", amount, hash, hash)
				seq += 2
				for _, a := range []string{ids[d], ids[c]} {
					if _, ok := debits[a]; !ok {
						debits[a] = 0
						touched = append(touched, a)
					}
				}
				debits[ids[d]] += amount
				credits[ids[c]] += amount
			}
			if _, err := tx.ExecContext(context.Background(), `INSERT INTO transfers (id, key, debit, credit, amount, currency, payment_id, kind, time)
				SELECT column1, column2, column3, column4, column5, 'KES', column6, 'transfer', column7
				FROM (VALUES `+rows(n, 7)+`)`, trArgs...); err != nil {
				return err
			}
			if _, err := tx.ExecContext(context.Background(), `INSERT INTO entries (seq, time, transfer_id, payment_id, account_id, direction,
				amount, currency, balance_after, prev_hash, hash)
				SELECT column1, column2, column3, column4, column5, column6, column7, 'KES', 0, column8, column9
				FROM (VALUES `+rows(2*n, 9)+`)`, enArgs...); err != nil {
				return err
			}
			// Padded with rows that match no account, so that the statement's text
			// depends on the batch size only and is prepared once.
			acArgs := make([]any, 0, 3*2*n)
			for _, a := range touched {
				acArgs = append(acArgs, a, debits[a], credits[a])
			}
			for len(acArgs) < cap(acArgs) {
				acArgs = append(acArgs, nil)
			}
			_, err := tx.ExecContext(context.Background(), `UPDATE accounts SET debits_posted = debits_posted + v.column2, credits_posted = credits_posted + v.column3
				FROM (VALUES `+rows(2*n, 3)+`) AS v WHERE accounts.id = v.column1`, acArgs...)
			return err
		})
		if err != nil {
			b.Fatal(err)
		}
		done += n
	}
	report(b, start, cpu)
}
