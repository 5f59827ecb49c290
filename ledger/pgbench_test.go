package ledger_test

import (
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/payswitch/payswitch/internal/pgtest"
	"github.com/payswitch/payswitch/ledger"
	"github.com/payswitch/payswitch/store"
)

// benchCallers is how many goroutines book at once in BenchmarkConcurrentTransfers,
// spread over the nodes.
const benchCallers = 16

// BenchmarkConcurrentTransfers books single transfers (Ledger.Transfer, a transaction
// each) between benchWallets wallets from benchCallers goroutines: on SQLite (one
// writer, group commit, durable), and on PostgreSQL from one and from two nodes
// (store.DBs) sharing the callers. pgtest's server syncs nothing, so the PostgreSQL
// figures leave out the WAL flush a durable server makes at each commit; what they show
// is the cost of the round trips and of the locks, the journal head's above all.
func BenchmarkConcurrentTransfers(b *testing.B) {
	b.Run("sqlite", func(b *testing.B) {
		l, ids := benchLedger(b)
		concurrentTransfers(b, []*ledger.Ledger{l}, ids)
	})
	for _, nodes := range []int{1, 2} {
		b.Run(fmt.Sprintf("postgres-%d-nodes", nodes), func(b *testing.B) {
			url := pgtest.URL(b)
			var ls []*ledger.Ledger
			for range nodes {
				db, err := store.OpenPostgres(ctx, url, store.Options{Writers: benchCallers}, ledger.Schema)
				if err != nil {
					b.Fatal(err)
				}
				b.Cleanup(func() { db.Close() })
				ls = append(ls, ledger.New(db, nil))
			}
			concurrentTransfers(b, ls, fundWallets(b, ls[0]))
		})
	}
}

// fundWallets makes benchWallets funded wallets in l.
func fundWallets(b *testing.B, l *ledger.Ledger) []string {
	cash := mustCash(b, l, "KES")
	ids := make([]string, benchWallets)
	deposits := make([]ledger.TransferRequest, benchWallets)
	for i := range ids {
		a, err := l.CreateAccount(ctx, ledger.NewAccount{Type: ledger.Wallet, Currency: "KES"})
		if err != nil {
			b.Fatal(err)
		}
		ids[i] = a.ID
		deposits[i] = ledger.TransferRequest{Key: "fund:" + a.ID, Debit: cash.ID, Credit: a.ID, Amount: benchFunds, Kind: "deposit"}
	}
	if _, errs := l.TransferBatch(ctx, deposits); errs[0] != nil {
		b.Fatal(errs[0])
	}
	return ids
}

func concurrentTransfers(b *testing.B, ls []*ledger.Ledger, ids []string) {
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, benchCallers)
	b.ResetTimer()
	start, cpu := time.Now(), cpuTime()
	for g := range benchCallers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			l := ls[g%len(ls)]
			rng := rand.New(rand.NewPCG(uint64(g), 3))
			for {
				i := next.Add(1)
				if i > int64(b.N) {
					return
				}
				d := rng.IntN(len(ids))
				c := (d + 1 + rng.IntN(len(ids)-1)) % len(ids)
				if _, err := l.Transfer(ctx, ledger.TransferRequest{Key: fmt.Sprintf("c:%d", i), Debit: ids[d], Credit: ids[c],
					Amount: 1 + rng.Int64N(10_000), Kind: "transfer"}); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	report(b, start, cpu)
	b.StopTimer()
	close(errs)
	for err := range errs {
		b.Fatal(err)
	}
	if r, err := ls[0].Verify(ctx); err != nil || !r.OK {
		b.Fatalf("Verify after the run: %v %v", err, r.Problems)
	}
}
