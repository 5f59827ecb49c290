package ledger_test

import (
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/payswitch/payswitch/ledger"
	"github.com/payswitch/payswitch/store"
)

// stmtCounter counts the statements the ledger runs on the writer connection. The
// store's own savepoint around each Write is left out: it is there whatever the ledger
// does.
type stmtCounter struct {
	n   atomic.Int64
	mu  sync.Mutex
	log []string // the texts, when recording
	rec bool
}

func (c *stmtCounter) onStatement(q string) {
	switch q {
	case "SAVEPOINT op", "RELEASE op", "ROLLBACK TO op":
		return
	}
	c.n.Add(1)
	c.mu.Lock()
	if c.rec {
		c.log = append(c.log, strings.Join(strings.Fields(q), " "))
	}
	c.mu.Unlock()
}

// record starts keeping the texts of the statements counted from now on.
func (c *stmtCounter) record() {
	c.mu.Lock()
	c.rec, c.log = true, nil
	c.mu.Unlock()
}

func (c *stmtCounter) texts() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.log...)
}

// openCounting opens a ledger whose writer statements c counts.
func openCounting(tb testing.TB) (*ledger.Ledger, *stmtCounter) {
	tb.Helper()
	c := &stmtCounter{}
	l, err := ledger.Open(filepath.Join(tb.TempDir(), "ledger.db"), store.Options{OnStatement: c.onStatement})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { l.Close() })
	return l, c
}

// TestStatementsPerOperation pins how many statements each single operation runs inside
// a caller's Write, the way the payment engine calls them. A payment is a Hold and a Post
// (or a Void); fewer statements is mostly more payments a second (not always: two
// single-row UPDATEs cost less than one of two rows). Change the numbers here only on
// purpose, with BenchmarkHoldPost to show it pays.
func TestStatementsPerOperation(t *testing.T) {
	l, c := openCounting(t)
	alice, bob := mustWallet(t, l, "KES"), mustWallet(t, l, "KES")
	mustDeposit(t, l, alice.ID, 1_000_000)
	in := func(fn func(lt *ledger.Tx) error) error {
		return l.DB().Write(ctx, func(tx store.Tx) error { return fn(l.In(tx)) })
	}
	hold := func(key string, amount int64) func(lt *ledger.Tx) error {
		return func(lt *ledger.Tx) error {
			_, err := lt.Hold(ctx, ledger.HoldRequest{Key: key, Debit: alice.ID, Credit: bob.ID, Amount: amount, PaymentID: key, Kind: "transfer"})
			return err
		}
	}
	post := func(key string) func(lt *ledger.Tx) error {
		return func(lt *ledger.Tx) error { _, err := lt.Post(ctx, key); return err }
	}
	void := func(key string) func(lt *ledger.Tx) error {
		return func(lt *ledger.Tx) error { _, err := lt.Void(ctx, key); return err }
	}
	transfer := func(key string, amount int64) func(lt *ledger.Tx) error {
		return func(lt *ledger.Tx) error {
			_, err := lt.Transfer(ctx, ledger.TransferRequest{Key: key, Debit: alice.ID, Credit: bob.ID, Amount: amount, Kind: "transfer"})
			return err
		}
	}
	for _, s := range []struct {
		name    string
		fn      func(lt *ledger.Tx) error
		wantErr bool
		want    int64
	}{
		// No ledger_op savepoint: in the writer's bare group (store.Optimistic) an
		// operation that fails half done sends the group to run again with savepoints.
		{"Hold", hold("P1:hold", 100), false, 4},
		{"Hold again", hold("P1:hold", 100), false, 1},
		// An operation that fails runs twice: the store runs the group again with a
		// savepoint around each operation (store.openGroup.add). The engine turns a
		// refused hold into an answer, not an error, and pays the 1.
		{"Hold refused", hold("P2:hold", 10_000_000), true, 2},
		{"Post", post("P1:hold"), false, 6},
		// Posting reads the hold, its accounts and the head as one row, without the
		// transfer of a hold posted already: posting that again reads it by id.
		{"Post again", post("P1:hold"), false, 2},
		{"Hold to void", hold("P3:hold", 100), false, 4},
		{"Void", void("P3:hold"), false, 4},
		{"Transfer", transfer("T1", 100), false, 5},
		{"Transfer again", transfer("T1", 100), false, 1},
	} {
		c.record()
		c.n.Store(0)
		err := in(s.fn)
		if (err != nil) != s.wantErr {
			t.Fatalf("%s: err = %v", s.name, err)
		}
		got := c.n.Load()
		t.Logf("%-15s %2d statements", s.name, got)
		if got != s.want {
			t.Errorf("%s ran %d statements, want %d:\n\t%s", s.name, got, s.want, strings.Join(c.texts(), "\n\t"))
		}
	}
	mustVerify(t, l)
}

// BenchmarkHoldPost runs payments the way the engine does: many callers at once, each
// payment a Hold in one Write and a Post of it in another, inside the caller's
// transaction (group commits, durable). It reports the CPU and the ledger's statements
// per payment.
func BenchmarkHoldPost(b *testing.B) {
	const callers = 32
	l, c := openCounting(b)
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
	var next atomic.Int64
	var wg sync.WaitGroup
	errc := make(chan error, callers)
	b.ResetTimer()
	c.n.Store(0)
	start, cpu := time.Now(), cpuTime()
	for g := range callers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(g), 7))
			for {
				i := next.Add(1) - 1
				if i >= int64(b.N) {
					return
				}
				d := rng.IntN(len(ids))
				cr := (d + 1 + rng.IntN(len(ids)-1)) % len(ids)
				key := fmt.Sprintf("PAY%07d:hold", i)
				err := l.DB().Write(ctx, func(tx store.Tx) error {
					_, err := l.In(tx).Hold(ctx, ledger.HoldRequest{Key: key, Debit: ids[d], Credit: ids[cr],
						Amount: 1 + rng.Int64N(10_000), PaymentID: key[:10], Kind: "transfer"})
					return err
				})
				if err == nil {
					err = l.DB().Write(ctx, func(tx store.Tx) error {
						_, err := l.In(tx).Post(ctx, key)
						return err
					})
				}
				if err != nil {
					errc <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	elapsed, used := time.Since(start), cpuTime()-cpu
	b.StopTimer()
	close(errc)
	if err := <-errc; err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "payments/s")
	b.ReportMetric(float64(used.Microseconds())/float64(b.N), "cpu-µs/payment")
	b.ReportMetric(float64(c.n.Load())/float64(b.N), "stmts/payment")
	if r, err := l.Verify(ctx); err != nil || !r.OK {
		b.Fatalf("Verify after the run: %v %v", err, r.Problems)
	}
}

// BenchmarkTransfersStatements is BenchmarkTransfers counting the ledger's statements
// per transfer of a batch.
func BenchmarkTransfersStatements(b *testing.B) {
	l, c := openCounting(b)
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
	rng := rand.New(rand.NewPCG(1, 2))
	rs := make([]ledger.TransferRequest, 0, benchBatch)
	b.ResetTimer()
	c.n.Store(0)
	for done := 0; done < b.N; {
		rs = rs[:0]
		for range min(benchBatch, b.N-done) {
			d := rng.IntN(len(ids))
			cr := (d + 1 + rng.IntN(len(ids)-1)) % len(ids)
			rs = append(rs, ledger.TransferRequest{Key: fmt.Sprintf("bench:%d", done+len(rs)), Debit: ids[d], Credit: ids[cr],
				Amount: 1 + rng.Int64N(10_000), Kind: "transfer"})
		}
		_, errs := l.TransferBatch(ctx, rs)
		for _, err := range errs {
			if err != nil {
				b.Fatal(err)
			}
		}
		done += len(rs)
	}
	b.ReportMetric(float64(c.n.Load())/float64(b.N), "stmts/transfer")
}
