package store_test

import (
	"context"
	"errors"
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

// transferOutcome is what one making of a transfer request got.
type transferOutcome struct {
	req ledger.TransferRequest
	id  string // the transfer, when Write said nil
	err error
}

// TestFailoverUnderLoadLosesAndDoublesNothing is the failover drill at the store level:
// goroutines book ledger transfers with idempotency keys through one store.DB on the
// pair's multi-host URL; the primary is killed mid-load and the standby promoted. The
// same DB (not reopened) books again on the promoted standby; every transfer whose
// Write said nil is there with the id it was given; each failed request, made again
// with its key, resolves to exactly one transfer (the first making's, if its COMMIT
// was acknowledged by the standby but its answer lost); the balances are what the
// requests add up to, the books balance and the journal verifies.
func TestFailoverUnderLoadLosesAndDoublesNothing(t *testing.T) {
	ctx := context.Background()
	pair := pgtest.NewPair(t, pgtest.PairOptions{})
	db, err := store.OpenPostgres(ctx, pair.URL("postgres"), store.Options{}, ledger.Schema)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	var tick atomic.Int64
	start := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	now := func() time.Time { return start.Add(time.Duration(tick.Add(1)) * time.Millisecond) }
	l := ledger.New(db, now)

	cash, err := l.SystemAccount(ctx, ledger.Cash, "KES", "KES")
	if err != nil {
		t.Fatal(err)
	}
	const funds = 10_000_000
	var wallets []string
	for i := range 8 {
		w, err := l.CreateAccount(ctx, ledger.NewAccount{Type: ledger.Wallet, Currency: "KES", Name: "w",
			MSISDN: fmt.Sprintf("25470000%04d", i)})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := l.Transfer(ctx, ledger.TransferRequest{Key: "dep" + w.ID, Debit: cash.ID, Credit: w.ID,
			Amount: funds, Kind: "deposit"}); err != nil {
			t.Fatal(err)
		}
		wallets = append(wallets, w.ID)
	}

	const workers = 6
	var (
		phase    atomic.Int32 // 0: primary up; 1: killed; 2: standby promoted
		acked    [3]atomic.Int32
		failures atomic.Int32
		mu       sync.Mutex
		outcomes []transferOutcome
		stop     = make(chan struct{})
		wg       sync.WaitGroup
	)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(w), 7))
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				d, c := rng.IntN(len(wallets)), rng.IntN(len(wallets)-1)
				if c >= d {
					c++
				}
				req := ledger.TransferRequest{Key: fmt.Sprintf("t%d-%d", w, i), Debit: wallets[d], Credit: wallets[c],
					Amount: 1 + rng.Int64N(500), Kind: "p2p"}
				ph := phase.Load()
				tr, err := l.Transfer(ctx, req)
				mu.Lock()
				outcomes = append(outcomes, transferOutcome{req: req, id: tr.ID, err: err})
				mu.Unlock()
				if err == nil {
					acked[ph].Add(1)
				} else {
					failures.Add(1)
					time.Sleep(5 * time.Millisecond) // a client's pause before its next request
				}
			}
		}()
	}
	waitUntil(t, "transfers before the kill", func() bool { return acked[0].Load() >= 150 })
	if err := pair.KillPrimary(); err != nil {
		t.Fatal(err)
	}
	phase.Store(1)
	failed := failures.Load()
	waitUntil(t, "transfers failing with the primary dead", func() bool { return failures.Load() >= failed+2*workers })
	if err := pair.Promote(ctx); err != nil {
		t.Fatal(err)
	}
	phase.Store(2)
	waitUntil(t, "transfers on the promoted standby", func() bool { return acked[2].Load() >= 150 })
	close(stop)
	wg.Wait()

	if h, err := db.WriterHost(ctx); err != nil || h != pair.StandbyAddr() {
		t.Errorf("WriterHost = %q, %v; want the promoted standby %s", h, err, pair.StandbyAddr())
	}
	// Every failure says the database could not be reached, and left nothing booked
	// unless its error said the COMMIT's answer was lost; everything acknowledged is
	// booked with the id it was given.
	before := bookedTransfers(t, db)
	ids := map[string]string{} // key -> the transfer every making that succeeded got
	unknown := 0
	for _, o := range outcomes {
		if o.err == nil {
			ids[o.req.Key] = o.id
			if before[o.req.Key] != o.id {
				t.Errorf("%s acknowledged as %s, booked as %q", o.req.Key, o.id, before[o.req.Key])
			}
			continue
		}
		if f := store.FaultOf(o.err); f != store.FaultUnreachable && f != store.FaultReadOnly {
			t.Errorf("%s failed with %v (fault %q), want unreachable", o.req.Key, o.err, f)
		}
		if errors.Is(o.err, store.ErrCommitUnknown) {
			unknown++
		} else if before[o.req.Key] != "" {
			t.Errorf("%s failed with %v, not ErrCommitUnknown, yet was booked", o.req.Key, o.err)
		}
	}
	// Each failed request made again with its key now succeeds, and every request is
	// booked once, with the id its successful makings were given.
	for _, o := range outcomes {
		if o.err == nil {
			continue
		}
		tr, err := l.Transfer(ctx, o.req)
		if err != nil {
			t.Fatalf("%s made again after the failover: %v", o.req.Key, err)
		}
		if id := ids[o.req.Key]; id != "" && id != tr.ID {
			t.Errorf("%s made again: %s, earlier %s", o.req.Key, tr.ID, id)
		}
		ids[o.req.Key] = tr.ID
	}
	booked := bookedTransfers(t, db)
	if len(booked) != len(ids) {
		t.Errorf("%d transfers booked for %d requests", len(booked), len(ids))
	}
	for key, id := range ids {
		if booked[key] != id {
			t.Errorf("%s: made as %s, booked as %q", key, id, booked[key])
		}
	}
	// Balances are what the requests add up to.
	want := map[string]int64{}
	for _, w := range wallets {
		want[w] = funds
	}
	seen := map[string]bool{}
	for _, o := range outcomes {
		if !seen[o.req.Key] {
			seen[o.req.Key] = true
			want[o.req.Debit] -= o.req.Amount
			want[o.req.Credit] += o.req.Amount
		}
	}
	for _, w := range wallets {
		a, err := l.Account(ctx, w)
		if err != nil {
			t.Fatal(err)
		}
		if a.Balance.Posted != want[w] {
			t.Errorf("balance of %s = %d, want %d", w, a.Balance.Posted, want[w])
		}
	}
	totals, err := l.TrialBalance(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for cur, tot := range totals {
		if tot.Debits != tot.Credits {
			t.Errorf("%s: debits %d, credits %d", cur, tot.Debits, tot.Credits)
		}
	}
	if r, err := l.Verify(ctx); err != nil || !r.OK {
		t.Errorf("Verify = %+v, %v", r, err)
	}
	t.Logf("%d requests: %d acknowledged before the kill, %d begun while no host took writes (done once the "+
		"standby was promoted), %d after the promotion; %d failed (%d with the COMMIT's answer lost) and were made again",
		len(ids), acked[0].Load(), acked[1].Load(), acked[2].Load(), len(outcomes)-int(acked[0].Load()+acked[1].Load()+acked[2].Load()), unknown)
}

// waitUntil polls cond until it holds, failing t after a limit generous enough for a
// shared machine.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(60 * time.Second); !cond(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("no %s within 60s", what)
		}
	}
}

// bookedTransfers is the key and id of every transfer the drill's requests booked.
func bookedTransfers(t *testing.T, db *store.DB) map[string]string {
	t.Helper()
	rows, err := db.Reader().Query("SELECT key, id FROM transfers WHERE kind = 'p2p'")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	booked := map[string]string{}
	for rows.Next() {
		var key, id string
		if err := rows.Scan(&key, &id); err != nil {
			t.Fatal(err)
		}
		if booked[key] != "" {
			t.Errorf("%s booked twice", key)
		}
		booked[key] = id
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return booked
}
