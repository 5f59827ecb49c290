package ledger_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/payswitch/payswitch/internal/pgtest"
	"github.com/payswitch/payswitch/ledger"
	"github.com/payswitch/payswitch/store"
)

// raceOp is one request of the race test, made twice, on two nodes when there are two.
type raceOp struct {
	key          string
	debit, other string // the account that pays, and the one paid
	amount       int64
	hold         bool // a hold, then settled (posted, or voided when void)
	void         bool
	reverse      bool // the transfer is reversed afterwards (key "rev:" + key)
}

// raceResult is what one making of a raceOp got.
type raceResult struct {
	id    string // the transfer booked (or the hold's, once posted); "" when none
	rev   string // the reversal's id
	err   error
	voids bool // the hold was voided by this making
}

// TestNodesRaceOnPostgres has one or two nodes (store.DBs) on one PostgreSQL database
// make the same requests at once from many goroutines, each request twice (on both
// nodes when there are two), over a few accounts that run short of money: transfers,
// holds posted or voided, reversals. Afterwards no customer balance is below zero, the
// books balance, the journal's chain verifies, and every key was booked once: both
// makings of a request got the same transfer.
func TestNodesRaceOnPostgres(t *testing.T) {
	for _, nodes := range []int{1, 2} {
		t.Run(fmt.Sprintf("%d nodes", nodes), func(t *testing.T) { raceNodes(t, nodes, false) })
		// Inside a caller's Write, as the engine books: credits wait for the end there.
		t.Run(fmt.Sprintf("%d nodes in writes", nodes), func(t *testing.T) { raceNodes(t, nodes, true) })
	}
}

func raceNodes(t *testing.T, nodes int, inWrite bool) {
	url := pgtest.URL(t)
	var ls []*ledger.Ledger
	for range nodes {
		db, err := store.OpenPostgres(ctx, url, store.Options{}, ledger.Schema)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		ls = append(ls, ledger.New(db, nil))
	}
	l := ls[0]
	mustCash(t, l, "KES")
	shop, err := l.CreateAccount(ctx, ledger.NewAccount{Type: ledger.Merchant, Currency: "KES", Code: "777"})
	if err != nil {
		t.Fatal(err)
	}
	var wallets []string
	for range 6 {
		w := mustWallet(t, l, "KES")
		wallets = append(wallets, w.ID)
		mustDeposit(t, l, w.ID, 5_000)
	}
	accounts := append([]string{shop.ID}, wallets...)

	const requests = 400
	rng := rand.New(rand.NewPCG(1, 2))
	ops := make([]raceOp, requests)
	for i := range ops {
		d := accounts[rng.IntN(len(accounts))] // the shop spends too, or it would end up with everything
		c := accounts[rng.IntN(len(accounts))]
		for c == d {
			c = accounts[rng.IntN(len(accounts))]
		}
		op := raceOp{key: fmt.Sprintf("k%d", i), debit: d, other: c, amount: 1 + rng.Int64N(2_500)}
		switch r := rng.IntN(10); {
		case r < 3:
			if d != shop.ID {
				op.hold, op.other, op.void = true, shop.ID, r == 0
			}
		case r == 3:
			op.reverse = true
		}
		ops[i] = op
	}
	// Each request is made twice, by workers of different nodes (when there are two),
	// in a different order each time.
	type job struct{ op, making int }
	jobs := make([][]job, nodes)
	for making := range 2 {
		for _, i := range rng.Perm(requests) {
			n := making % nodes
			jobs[n] = append(jobs[n], job{i, making})
		}
	}
	results := make([][2]raceResult, requests)
	const workers = 8 // in all, spread over the nodes, so that one and two nodes compare
	workersPerNode := workers / nodes
	start := time.Now()
	var wg sync.WaitGroup
	for n, nodeJobs := range jobs {
		next := make(chan job)
		for range workersPerNode {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for j := range next {
					results[j.op][j.making] = makeOp(ls[n], ops[j.op], inWrite)
				}
			}()
		}
		go func() {
			for _, j := range nodeJobs {
				next <- j
			}
			close(next)
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)

	booked := 0
	for i, op := range ops {
		a, b := results[i][0], results[i][1]
		for _, r := range []raceResult{a, b} {
			if r.err != nil && !errors.Is(r.err, ledger.ErrInsufficientFunds) &&
				!(op.hold && errors.Is(r.err, ledger.ErrNotFound)) {
				t.Errorf("%s: unexpected error %v", op.key, r.err)
			}
		}
		if a.id != "" && b.id != "" && a.id != b.id {
			t.Errorf("%s booked twice: %s and %s", op.key, a.id, b.id)
		}
		if a.rev != "" && b.rev != "" && a.rev != b.rev {
			t.Errorf("%s reversed twice: %s and %s", op.key, a.rev, b.rev)
		}
		if a.id != "" || b.id != "" {
			booked++
		}
		if a.rev != "" || b.rev != "" {
			booked++
		}
		if op.hold && !op.void && (a.voids || b.voids) {
			t.Errorf("%s: a hold to post was voided", op.key)
		}
	}
	if n := countRows(t, l, "transfers"); n != booked+len(wallets) { // and the deposits
		t.Errorf("%d transfers in the books, the callers were told of %d (and %d deposits)", n, booked, len(wallets))
	}
	for _, id := range accounts {
		if b := balanceOf(t, l, id); b.Available < 0 || b.Held != 0 {
			t.Errorf("%s: %+v, want nothing below zero and nothing held", id, b)
		}
	}
	tb, err := l.TrialBalance(ctx)
	if err != nil || tb["KES"].Debits != tb["KES"].Credits {
		t.Errorf("trial balance %+v, %v", tb, err)
	}
	r := mustVerify(t, l)
	var redos int64
	for _, l := range ls {
		redos += l.DB().Stats().Redos
	}
	t.Logf("%d node(s), %d workers each: %d requests made twice (%.0f/s), %d bookings (%d entries) in %v: %.0f bookings/s, %d transactions run again",
		nodes, workersPerNode, requests, 2*requests/elapsed.Seconds(), booked, r.Entries, elapsed.Round(time.Millisecond),
		float64(booked)/elapsed.Seconds(), redos)
}

// makeOp makes op on l, as a caller of the ledger would: each call alone, or with
// inWrite each inside a store.Write of its own through l.In.
func makeOp(l *ledger.Ledger, op raceOp, inWrite bool) raceResult {
	if !inWrite {
		return makeOpOn(l, op)
	}
	var r raceResult
	err := l.DB().Write(ctx, func(tx store.Tx) error {
		r = makeOpOn(inWriteOps{l.In(tx)}, op)
		return nil
	})
	if err != nil && r.err == nil {
		r = raceResult{err: err}
	}
	return r
}

// ledgerOps are the calls makeOpOn makes, which a Ledger and a Tx both have.
type ledgerOps interface {
	Hold(ctx context.Context, r ledger.HoldRequest) (ledger.Hold, error)
	Void(ctx context.Context, key string) (ledger.Hold, error)
	Post(ctx context.Context, key string) (ledger.Transfer, error)
	Transfer(ctx context.Context, r ledger.TransferRequest) (ledger.Transfer, error)
	Reverse(ctx context.Context, id, key string) (ledger.Transfer, error)
}

// inWriteOps is a Tx as ledgerOps.
type inWriteOps struct{ *ledger.Tx }

func makeOpOn(l ledgerOps, op raceOp) raceResult {
	var r raceResult
	if op.hold {
		if _, r.err = l.Hold(ctx, ledger.HoldRequest{Key: op.key, Debit: op.debit, Credit: op.other, Amount: op.amount,
			PaymentID: op.key, Kind: "merchant_payment"}); r.err != nil && !errors.Is(r.err, ledger.ErrInsufficientFunds) {
			return r
		}
		// Settle even when this making's hold was refused: the other's may have been made.
		if op.void {
			var h ledger.Hold
			h, r.err = l.Void(ctx, op.key)
			r.voids = r.err == nil && h.State == ledger.HoldVoided
			return r
		}
		var tr ledger.Transfer
		tr, r.err = l.Post(ctx, op.key)
		r.id = tr.ID
		return r
	}
	tr, err := l.Transfer(ctx, ledger.TransferRequest{Key: op.key, Debit: op.debit, Credit: op.other, Amount: op.amount, Kind: "transfer"})
	r.id, r.err = tr.ID, err
	if err != nil || !op.reverse {
		return r
	}
	rev, err := l.Reverse(ctx, tr.ID, "rev:"+op.key)
	r.rev, r.err = rev.ID, err
	return r
}

// TestKeySpaceIsSharedAcrossNodes has two nodes take one key at the same moment, one
// for a transfer and the other for a hold on other accounts, many times: the accounts
// have no lock in common, yet each time exactly one request gets the key and the other
// is an idempotency conflict.
func TestKeySpaceIsSharedAcrossNodes(t *testing.T) {
	url := pgtest.URL(t)
	var ls [2]*ledger.Ledger
	for i := range ls {
		db, err := store.OpenPostgres(ctx, url, store.Options{}, ledger.Schema)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		ls[i] = ledger.New(db, nil)
	}
	a, b, c, d := mustWallet(t, ls[0], "KES"), mustWallet(t, ls[0], "KES"), mustWallet(t, ls[0], "KES"), mustWallet(t, ls[0], "KES")
	mustDeposit(t, ls[0], a.ID, 1_000)
	mustDeposit(t, ls[0], c.ID, 1_000)
	const rounds = 40
	for i := range rounds {
		key := fmt.Sprintf("shared-%d", i)
		var terr, herr error
		var wg sync.WaitGroup
		wg.Add(2)
		go func() {
			defer wg.Done()
			_, terr = ls[0].Transfer(ctx, ledger.TransferRequest{Key: key, Debit: a.ID, Credit: b.ID, Amount: 1, Kind: "transfer"})
		}()
		go func() {
			defer wg.Done()
			_, herr = ls[1].Hold(ctx, ledger.HoldRequest{Key: key, Debit: c.ID, Credit: d.ID, Amount: 1, Kind: "transfer"})
		}()
		wg.Wait()
		if (terr == nil) == (herr == nil) {
			t.Fatalf("round %d: transfer %v, hold %v; want exactly one to get the key", i, terr, herr)
		}
		for _, err := range []error{terr, herr} {
			if err != nil && !errors.Is(err, ledger.ErrIdempotencyConflict) {
				t.Fatalf("round %d: %v, want ErrIdempotencyConflict", i, err)
			}
		}
	}
	mustVerify(t, ls[0])
}

// TestDeadlockedCallersRunAgainWithTheirKeys has two nodes each hold funds on two
// accounts in one transaction, in opposite orders, so that each waits for an account the
// other has locked. PostgreSQL aborts one transaction; the store runs it again, with the
// same keys, and every hold is made once.
func TestDeadlockedCallersRunAgainWithTheirKeys(t *testing.T) {
	url := pgtest.URL(t)
	var ls [2]*ledger.Ledger
	for i := range ls {
		db, err := store.OpenPostgres(ctx, url, store.Options{}, ledger.Schema)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		ls[i] = ledger.New(db, nil)
	}
	var ws []ledger.Account
	for range 6 {
		ws = append(ws, mustWallet(t, ls[0], "KES"))
	}
	a, b := ws[0].ID, ws[1].ID
	mustDeposit(t, ls[0], a, 100)
	mustDeposit(t, ls[0], b, 100)
	// Each caller's first run waits, holding its first account, until the other holds its own.
	var holding sync.WaitGroup
	holding.Add(2)
	caller := func(l *ledger.Ledger, first, second ledger.HoldRequest) func(store.Tx) error {
		runs := 0
		return func(tx store.Tx) error {
			runs++
			lt := l.In(tx)
			if _, err := lt.Hold(ctx, first); err != nil {
				return err
			}
			if runs == 1 {
				holding.Done()
				holding.Wait()
			}
			_, err := lt.Hold(ctx, second)
			return err
		}
	}
	hold := func(key, debit, credit string) ledger.HoldRequest {
		return ledger.HoldRequest{Key: key, Debit: debit, Credit: credit, Amount: 10, Kind: "transfer"}
	}
	errs := make(chan error, 2)
	go func() { errs <- ls[0].DB().Write(ctx, caller(ls[0], hold("h1", a, ws[2].ID), hold("h2", b, ws[3].ID))) }()
	go func() { errs <- ls[1].DB().Write(ctx, caller(ls[1], hold("h3", b, ws[4].ID), hold("h4", a, ws[5].ID))) }()
	for range 2 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	if redos := ls[0].DB().Stats().Redos + ls[1].DB().Stats().Redos; redos < 1 {
		t.Fatal("no transaction was run again: the callers did not deadlock")
	}
	for _, key := range []string{"h1", "h2", "h3", "h4"} {
		if h, err := ls[0].HoldByKey(ctx, key); err != nil || h.State != ledger.HoldPending {
			t.Errorf("hold %s: %+v, %v", key, h, err)
		}
	}
	for _, id := range []string{a, b} {
		wantBalance(t, ls[0], id, ledger.Balance{Posted: 100, Held: 20, Available: 80})
	}
	if n := countRows(t, ls[0], "holds"); n != 4 {
		t.Errorf("%d holds, want 4", n)
	}
	mustVerify(t, ls[0])
}
