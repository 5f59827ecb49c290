package outbox

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/payswitch/payswitch/internal/pgtest"

	"github.com/payswitch/payswitch/store"
)

// nodeOutboxes are an Outbox on each of dbs, all on clock c, as the nodes of a switch.
func nodeOutboxes(dbs []*store.DB, c *clock) []*Outbox {
	os := make([]*Outbox, len(dbs))
	for i, db := range dbs {
		os[i] = New(db, c.Now)
	}
	return os
}

// drain runs workers goroutines per Outbox that claim (up to 1..16 at a time) and mark
// sent until a claim finds nothing, and returns how often each message was claimed.
func drain(t testing.TB, os []*Outbox, workers int) map[int64]int {
	var mu sync.Mutex
	claimed := map[int64]int{}
	var wg sync.WaitGroup
	start := make(chan struct{})
	for n, o := range os {
		for w := range workers {
			wg.Go(func() {
				<-start
				for {
					ms, err := o.Claim(ctx, KindSMS, 1+rand.IntN(16), time.Minute)
					if err != nil {
						t.Error(err)
						return
					}
					if len(ms) == 0 {
						return
					}
					for _, m := range ms {
						mu.Lock()
						claimed[m.ID]++
						mu.Unlock()
						if err := o.MarkSent(ctx, m, fmt.Sprintf("node%d", n), []string{fmt.Sprintf("w%d-%d", w, m.ID)}); err != nil {
							t.Error(err)
							return
						}
					}
				}
			})
		}
	}
	close(start)
	wg.Wait()
	return claimed
}

// Two nodes claiming from one queue at once, four workers each: every message is sent
// once, none twice, none is left.
func TestNodesClaimFromOneQueue(t *testing.T) {
	pgtest.Both(t, func(t *testing.T) {
		dbs, c := openNodes(t, 2), newClock()
		os := nodeOutboxes(dbs, c)
		const n = 600
		batch := make([]Message, n)
		for i := range batch {
			batch[i] = sms(fmt.Sprintf("2547%08d", i), "hi")
		}
		queued := put(t, dbs[0], Enqueue, batch...)
		claimed := drain(t, os, 4)
		for _, id := range queued {
			if claimed[id] != 1 {
				t.Errorf("message %d was claimed %d times, want once", id, claimed[id])
			}
		}
		if len(claimed) != n {
			t.Errorf("%d messages claimed, want %d", len(claimed), n)
		}
		stats, err := os[1].Stats(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if stats[StateSent] != n || stats[StateQueued] != 0 || stats[StateSending] != 0 {
			t.Fatalf("after the workers: %v, want all %d sent", stats, n)
		}
	})
}

// A node that starts while another is sending leaves the other's claims alone: on
// PostgreSQL ReleaseClaims gives back only claims whose lease ran out (a dead node's).
func TestStartingNodeLeavesLiveClaims(t *testing.T) {
	t.Run("postgres", func(t *testing.T) {
		dbs, c := openNodes(t, 2), newClock()
		os := nodeOutboxes(dbs, c)
		put(t, dbs[0], Enqueue, sms("254700000001", "one"), sms("254700000002", "two"))
		dead := claim(t, os[0], 1, 10*time.Second) // its node dies: nothing more from it
		c.Advance(5 * time.Second)
		live := claim(t, os[0], 1, time.Minute)
		c.Advance(5 * time.Second)
		n, err := os[1].ReleaseClaims(ctx)
		if err != nil || n != 1 {
			t.Fatalf("release at start: %d, %v; want 1 (the dead claim)", n, err)
		}
		got := claim(t, os[1], 10, time.Minute)
		if len(got) != 1 || got[0].ID != dead[0].ID || got[0].Attempts != 2 {
			t.Fatalf("claimed %+v after the start, want the dead claim %d again", got, dead[0].ID)
		}
		if m := get(t, os[1], live[0].ID); m.State != StateSending || !m.NextAttemptAt.Equal(live[0].NextAttemptAt) {
			t.Fatalf("the live claim is %s until %v, want still sending until %v", m.State, m.NextAttemptAt, live[0].NextAttemptAt)
		}
		if err := os[0].MarkSent(ctx, live[0], "node0", []string{"x1"}); err != nil {
			t.Fatal(err)
		}
	})
}

// countingHook counts, per message, the receipts applied to it, once durable.
type countingHook struct {
	mu sync.Mutex
	n  map[int64]int
}

func (h *countingHook) hook(_ context.Context, _ store.Tx, r Receipted) (func(), error) {
	return func() { h.mu.Lock(); h.n[r.ID]++; h.mu.Unlock() }, nil
}

// A receipt that comes to one node while another records the part it is for: whichever
// goes first, the receipt is applied exactly once (by the receipt, or by the MarkSent
// that finds it waiting), and nothing is left waiting. And receipts for the two parts of
// one message on two nodes at once deliver it.
func TestNodesMatchReceiptsOnce(t *testing.T) {
	pgtest.Both(t, func(t *testing.T) {
		dbs, c := openNodes(t, 2), newClock()
		os := nodeOutboxes(dbs, c)
		const n = 150
		batch := make([]Message, n)
		for i := range batch {
			batch[i] = sms(fmt.Sprintf("2547%08d", i), "hi")
			batch[i].RequestReceipt = true
		}
		queued := put(t, dbs[0], Enqueue, batch...)
		if got := claim(t, os[0], n, time.Minute); len(got) != n {
			t.Fatalf("claimed %d, want %d", len(got), n)
		}
		h := &countingHook{n: map[int64]int{}}
		var failed atomic.Int64
		var wg sync.WaitGroup
		for i, id := range queued {
			start := make(chan struct{})
			wg.Go(func() {
				<-start
				if err := os[0].MarkSentThen(ctx, askedReceipts(id), "carrier-a", []string{fmt.Sprintf("r%d", id)}, h.hook); err != nil {
					t.Error(err)
					failed.Add(1)
				}
			})
			wg.Go(func() {
				<-start
				if i%2 == 0 {
					time.Sleep(time.Duration(rand.IntN(200)) * time.Microsecond)
				}
				if _, _, err := os[1].ReceiptThen(ctx, "carrier-a", fmt.Sprintf("r%d", id), "DELIVRD", h.hook); err != nil {
					t.Error(err)
					failed.Add(1)
				}
			})
			close(start)
		}
		wg.Wait()
		if failed.Load() > 0 {
			t.FailNow()
		}
		for _, id := range queued {
			if h.n[id] != 1 {
				t.Errorf("message %d: the receipt was applied %d times, want once", id, h.n[id])
			}
			if m := get(t, os[1], id); m.State != StateDelivered {
				t.Errorf("message %d is %s, want delivered", id, m.State)
			}
		}
		if left := rows(t, dbs[1], `SELECT count(*) FROM early_receipts`); left != 0 {
			t.Errorf("%d receipts left waiting", left)
		}

		// Two parts, their receipts on two nodes at once.
		for i := range batch {
			batch[i].To = fmt.Sprintf("2548%08d", i)
		}
		twoParts := put(t, dbs[0], Enqueue, batch...)
		if got := claim(t, os[0], n, time.Minute); len(got) != n {
			t.Fatalf("claimed %d, want %d", len(got), n)
		}
		for _, id := range twoParts {
			if err := os[0].MarkSent(ctx, askedReceipts(id), "carrier-a", []string{fmt.Sprintf("a%d", id), fmt.Sprintf("b%d", id)}); err != nil {
				t.Fatal(err)
			}
		}
		for _, id := range twoParts {
			start := make(chan struct{})
			for p, node := range []int{0, 1} {
				wg.Go(func() {
					<-start
					if _, ok, err := os[node].Receipt(ctx, "carrier-a", fmt.Sprintf("%c%d", 'a'+p, id), "DELIVRD"); err != nil || !ok {
						t.Errorf("receipt: known %v, %v", ok, err)
					}
				})
			}
			close(start)
		}
		wg.Wait()
		for _, id := range twoParts {
			if m := get(t, os[1], id); m.State != StateDelivered {
				t.Errorf("message %d of two parts is %s, want delivered", id, m.State)
			}
		}
	})
}

// BenchmarkClaimNodes claims and marks sent b.N queued SMS, 16 at a time, with four
// workers per node, on each driver with one and two nodes (SQLite: one only).
func BenchmarkClaimNodes(b *testing.B) {
	for _, driver := range []string{"sqlite", "postgres"} {
		for _, nodes := range []int{1, 2} {
			if driver == "sqlite" && nodes > 1 {
				continue
			}
			b.Run(fmt.Sprintf("%s/nodes=%d", driver, nodes), func(b *testing.B) {
				dbs, c := openNodes(b, nodes), newClock()
				os := nodeOutboxes(dbs, c)
				batch := make([]Message, b.N)
				for i := range batch {
					batch[i] = sms(fmt.Sprintf("2547%08d", i), "Confirmed. PAYAAAAAAA KES 1,500.00 paid.")
				}
				for len(batch) > 0 {
					k := min(len(batch), 5000)
					put(b, dbs[0], Enqueue, batch[:k]...)
					batch = batch[k:]
				}
				b.ResetTimer()
				start := time.Now()
				claimed := drain(b, os, 4)
				b.ReportMetric(float64(len(claimed))/time.Since(start).Seconds(), "msgs/s")
				if len(claimed) != b.N {
					b.Fatalf("%d claimed, want %d", len(claimed), b.N)
				}
			})
		}
	}
}

// TestRestartedNodeTakesBackItsOwnClaims: on PostgreSQL a node killed while sending left
// claims with an hour's lease. Another node starting gives back none of them (they could
// be a live node's), and the killed node, started again under its name, gives back its
// own at once instead of letting them wait out the lease.
func TestRestartedNodeTakesBackItsOwnClaims(t *testing.T) {
	pgtest.Both(t, func(t *testing.T) {
		if !pgtest.OnPostgres(t) {
			t.Skip("one process delivers from a SQLite file: it gives back every claim at start (TestReleaseClaimsAfterACrash)")
		}
		restartedNodeTakesBackItsOwnClaims(t, openNodes(t, 2))
	})
}

func restartedNodeTakesBackItsOwnClaims(t *testing.T, db []*store.DB) {
	ctx := context.Background()
	a := New(db[0], nil)
	a.SetNode("host-a:8080")
	put(t, db[0], Enqueue, sms("254700000001", "hello"))
	if ms, err := a.Claim(ctx, KindSMS, 10, time.Hour); err != nil || len(ms) != 1 {
		t.Fatalf("claim: %v %v", ms, err)
	}
	b := New(db[1], nil)
	b.SetNode("host-b:8080")
	if n, err := b.ReleaseClaims(ctx); err != nil || n != 0 {
		t.Fatalf("another node starting gave back %d claims (%v), want none", n, err)
	}
	restarted := New(db[1], nil)
	restarted.SetNode("host-a:8080")
	if n, err := restarted.ReleaseClaims(ctx); err != nil || n != 1 {
		t.Fatalf("the node started again gave back %d claims (%v), want its one", n, err)
	}
	if ms, err := b.Claim(ctx, KindSMS, 10, time.Hour); err != nil || len(ms) != 1 || ms[0].Attempts != 2 {
		t.Fatalf("after the release: %+v %v", ms, err)
	}
}
