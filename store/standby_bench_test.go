package store_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/payswitch/payswitch/internal/pgtest"
	"github.com/payswitch/payswitch/ledger"
	"github.com/payswitch/payswitch/store"
)

// BenchmarkSynchronousStandby tells what the synchronous standby costs: the same work on
// a durable primary alone and on a primary that waits for its standby's disk at every
// commit, both on loopback. "commit" is a one-row insert per Write (the commit's
// latency, shared by 16 writers); "transfer" is a ledger transfer per Write between
// 200 wallets, which also holds the journal's head across the wait.
//
//	go test -run - -bench SynchronousStandby -benchtime 2000x ./store/
func BenchmarkSynchronousStandby(b *testing.B) {
	for _, setup := range []struct {
		name string
		opts pgtest.PairOptions
	}{{"alone", pgtest.PairOptions{Alone: true}}, {"sync-standby", pgtest.PairOptions{}}} {
		b.Run(setup.name, func(b *testing.B) {
			ctx := context.Background()
			pair := pgtest.NewPair(b, setup.opts)
			db, err := store.OpenPostgres(ctx, pair.URL("postgres"), store.Options{}, ledger.Schema)
			if err != nil {
				b.Fatal(err)
			}
			defer db.Close()
			if err := db.Write(ctx, func(tx store.Tx) error {
				_, err := tx.ExecContext(ctx, "CREATE TABLE bench (n BIGINT)")
				return err
			}); err != nil {
				b.Fatal(err)
			}
			l := ledger.New(db, nil)
			cash, err := l.SystemAccount(ctx, ledger.Cash, "KES", "KES")
			if err != nil {
				b.Fatal(err)
			}
			var wallets []string
			for i := range 200 {
				w, err := l.CreateAccount(ctx, ledger.NewAccount{Type: ledger.Wallet, Currency: "KES", Name: "w",
					MSISDN: fmt.Sprintf("2547100%05d", i)})
				if err != nil {
					b.Fatal(err)
				}
				if _, err := l.Transfer(ctx, ledger.TransferRequest{Key: "dep" + w.ID, Debit: cash.ID, Credit: w.ID,
					Amount: 1 << 40, Kind: "deposit"}); err != nil {
					b.Fatal(err)
				}
				wallets = append(wallets, w.ID)
			}
			b.Run("commit", func(b *testing.B) {
				parallel(b, func(i int64) error {
					return db.Write(ctx, func(tx store.Tx) error {
						_, err := tx.ExecContext(ctx, "INSERT INTO bench VALUES (?)", i)
						return err
					})
				})
			})
			b.Run("transfer", func(b *testing.B) {
				parallel(b, func(i int64) error {
					d := wallets[i%int64(len(wallets))]
					c := wallets[(i*7+1)%int64(len(wallets))]
					if c == d {
						c = wallets[(i+1)%int64(len(wallets))]
					}
					_, err := l.Transfer(ctx, ledger.TransferRequest{Key: fmt.Sprintf("b%d", benchKeys.Add(1)),
						Debit: d, Credit: c, Amount: 1, Kind: "p2p"})
					return err
				})
			})
		})
	}
}

// benchKeys makes every benchmark transfer's key new, however often it runs.
var benchKeys atomic.Int64

// parallel runs op b.N times from 16 goroutines and reports operations per second.
func parallel(b *testing.B, op func(i int64) error) {
	var next atomic.Int64
	var wg sync.WaitGroup
	b.ResetTimer()
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := next.Add(1); i <= int64(b.N); i = next.Add(1) {
				if err := op(i); err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "ops/s")
}
