package ledger_test

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/payswitch/payswitch/internal/pgtest"

	"github.com/payswitch/payswitch/ledger"
	"github.com/payswitch/payswitch/store"
)

func TestTransferBatchOneBadCommitsTheRest(t *testing.T) {
	pgtest.Both(t, func(t *testing.T) {
		l := mustOpen(t)
		cash := mustCash(t, l, "KES")
		alice, bob, carol := mustWallet(t, l, "KES"), mustWallet(t, l, "KES"), mustWallet(t, l, "KES")
		rs := []ledger.TransferRequest{
			{Key: "dep", Debit: cash.ID, Credit: alice.ID, Amount: 100, Kind: "deposit"},
			{Key: "a1", Debit: alice.ID, Credit: bob.ID, Amount: 60, Kind: "transfer"},                 // uses the deposit above
			{Key: "a2", Debit: alice.ID, Credit: bob.ID, Amount: 60, Kind: "transfer"},                 // only 40 left
			{Key: "dep", Debit: cash.ID, Credit: alice.ID, Amount: 100, Kind: "deposit"},               // a repeat: the first
			{Key: "dep", Debit: cash.ID, Credit: alice.ID, Amount: 999, Kind: "deposit"},               // a conflict
			{Key: "x", Debit: alice.ID, Credit: "ACNOSUCHONE0", Amount: 1, Kind: "transfer"},           // unknown
			{Key: "b1", Debit: bob.ID, Credit: carol.ID, Amount: 60, PaymentID: "P", Kind: "transfer"}, // spends a1
		}
		want := []error{nil, nil, ledger.ErrInsufficientFunds, nil, ledger.ErrIdempotencyConflict, ledger.ErrNotFound, nil}
		trs, errs := l.TransferBatch(ctx, rs)
		if len(trs) != len(rs) || len(errs) != len(rs) {
			t.Fatalf("got %d transfers and %d errors for %d requests", len(trs), len(errs), len(rs))
		}
		for i := range rs {
			if !errors.Is(errs[i], want[i]) {
				t.Errorf("request %d (%s): err = %v, want %v", i, rs[i].Key, errs[i], want[i])
			}
			if (errs[i] == nil) != (trs[i].ID != "") {
				t.Errorf("request %d: transfer %+v with err %v", i, trs[i], errs[i])
			}
		}
		if trs[3] != trs[0] {
			t.Errorf("repeated key in the batch gave %+v, want the first %+v", trs[3], trs[0])
		}
		wantBalance(t, l, alice.ID, posted(40))
		wantBalance(t, l, bob.ID, posted(0))
		wantBalance(t, l, carol.ID, posted(60))
		if n := countRows(t, l, "transfers"); n != 3 {
			t.Errorf("%d transfers, want 3", n)
		}
		r := mustVerify(t, l)
		if r.Entries != 6 {
			t.Errorf("%d entries, want 6", r.Entries)
		}

		// The next batch continues the same chain.
		_, errs = l.TransferBatch(ctx, []ledger.TransferRequest{{Key: "c1", Debit: carol.ID, Credit: alice.ID, Amount: 10, Kind: "transfer"}})
		if errs[0] != nil {
			t.Fatal(errs[0])
		}
		mustVerify(t, l)
		if trs, errs := l.TransferBatch(ctx, nil); len(trs) != 0 || len(errs) != 0 {
			t.Errorf("empty batch = %v, %v", trs, errs)
		}
	})
}

// TestTransferBatchFailureAfterWritingFailsAlone makes one request fail after it has
// written its transfer row and balances (a trigger refuses its journal entry), which is
// the case the batch's per-request savepoints exist for.
func TestTransferBatchFailureAfterWritingFailsAlone(t *testing.T) {
	pgtest.Both(t, func(t *testing.T) {
		l := mustOpen(t)
		cash := mustCash(t, l, "KES")
		alice, bob := mustWallet(t, l, "KES"), mustWallet(t, l, "KES")
		refuseBoomEntries(t, l)
		rs := []ledger.TransferRequest{
			{Key: "d1", Debit: cash.ID, Credit: alice.ID, Amount: 100, Kind: "deposit"},
			{Key: "boom", Debit: cash.ID, Credit: bob.ID, Amount: 50, PaymentID: "BOOM", Kind: "deposit"},
			{Key: "t1", Debit: alice.ID, Credit: bob.ID, Amount: 30, Kind: "transfer"},
			{Key: "t2", Debit: alice.ID, Credit: bob.ID, Amount: 300, Kind: "transfer"}, // refused before writing
		}
		trs, errs := l.TransferBatch(ctx, rs)
		if errs[0] != nil || errs[2] != nil {
			t.Fatalf("good requests failed: %v", errs)
		}
		if errs[1] == nil || !strings.Contains(errs[1].Error(), "entry refused") {
			t.Errorf("request 1: err = %v, want the trigger's refusal", errs[1])
		}
		if !errors.Is(errs[3], ledger.ErrInsufficientFunds) {
			t.Errorf("request 3: err = %v, want ErrInsufficientFunds", errs[3])
		}
		if trs[1].ID != "" {
			t.Errorf("failed request returned %+v", trs[1])
		}
		wantBalance(t, l, cash.ID, posted(-100))
		wantBalance(t, l, alice.ID, posted(70))
		wantBalance(t, l, bob.ID, posted(30))
		if n := countRows(t, l, "transfers"); n != 2 {
			t.Errorf("%d transfers, want 2: the failed one left its row", n)
		}
		mustVerify(t, l)
	})
}

// twinLedger opens a ledger on a fixed clock with the same accounts, balances, holds and
// transfers every time, so that a batch and the same requests one by one can be compared.
func twinLedger(t *testing.T) *ledger.Ledger {
	t.Helper()
	db := openDB(t, store.Options{})
	clock := time.Date(2026, 5, 4, 3, 2, 1, 0, time.UTC)
	l := ledger.New(db, func() time.Time { return clock })
	mustCash(t, l, "KES")
	mustCash(t, l, "UGX")
	for _, a := range []ledger.NewAccount{
		{ID: "a1", Type: ledger.Wallet, Currency: "KES"}, {ID: "a2", Type: ledger.Wallet, Currency: "KES"},
		{ID: "a3", Type: ledger.Wallet, Currency: "KES"}, {ID: "a4", Type: ledger.Wallet, Currency: "KES"},
		{ID: "shop", Type: ledger.Merchant, Currency: "KES", Code: "555"},
		{ID: "u1", Type: ledger.Wallet, Currency: "UGX"}, {ID: "f1", Type: ledger.Wallet, Currency: "KES"},
	} {
		if _, err := l.CreateAccount(ctx, a); err != nil {
			t.Fatal(err)
		}
	}
	setup := []ledger.TransferRequest{
		{Key: "fund-a1", Debit: "cash:KES", Credit: "a1", Amount: 1_000, Kind: "deposit"},
		{Key: "fund-a2", Debit: "cash:KES", Credit: "a2", Amount: 1_000, Kind: "deposit"},
		{Key: "fund-a3", Debit: "cash:KES", Credit: "a3", Amount: 1_000, Kind: "deposit"},
		{Key: "fund-u1", Debit: "cash:UGX", Credit: "u1", Amount: 500, Kind: "deposit"},
		{Key: "fund-f1", Debit: "cash:KES", Credit: "f1", Amount: 100, Kind: "deposit"},
		{Key: "T0", Debit: "a3", Credit: "a4", Amount: 200, PaymentID: "P0", Kind: "transfer"},
	}
	for _, r := range setup {
		if _, err := l.Transfer(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	for _, h := range []ledger.HoldRequest{
		{Key: "H1", Debit: "a1", Credit: "shop", Amount: 100, PaymentID: "PH1", Kind: "merchant_payment"},
		{Key: "H2", Debit: "a2", Credit: "shop", Amount: 50, PaymentID: "PH2", Kind: "merchant_payment"},
		{Key: "H3", Debit: "a2", Credit: "shop", Amount: 70, PaymentID: "PH3", Kind: "merchant_payment"},
	} {
		if _, err := l.Hold(ctx, h); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := l.Post(ctx, "H2"); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Void(ctx, "H3"); err != nil {
		t.Fatal(err)
	}
	if err := l.SetStatus(ctx, "f1", ledger.Frozen); err != nil {
		t.Fatal(err)
	}
	return l
}

// mixedRequests returns n transfer requests over the twin ledger's accounts that go
// through every case a batch decides: fresh, repeated and conflicting keys, keys of
// holds and of earlier transfers, unknown, frozen and foreign-currency accounts, spending
// more than there is, totals that would overflow, and malformed requests.
func mixedRequests(n int, seed uint64) []ledger.TransferRequest {
	rng := rand.New(rand.NewPCG(seed, 99))
	accounts := []string{"cash:KES", "a1", "a2", "a3", "a4", "shop", "a1", "a2", "a3", "a4", "u1", "f1", "cash:UGX", "nobody"}
	rs := make([]ledger.TransferRequest, 0, n)
	for i := range n {
		r := ledger.TransferRequest{Key: fmt.Sprintf("k%d", i), Debit: accounts[rng.IntN(len(accounts))],
			Credit: accounts[rng.IntN(len(accounts))], Amount: 1 + rng.Int64N(700), Kind: "transfer",
			PaymentID: fmt.Sprintf("P%d", rng.IntN(50))}
		switch x := rng.IntN(40); {
		case x < 4 && len(rs) > 0: // the same request again
			r = rs[rng.IntN(len(rs))]
		case x < 6 && len(rs) > 0: // a key used before, for something else
			r.Key = rs[rng.IntN(len(rs))].Key
		case x == 6:
			r.Key = []string{"T0", "H1", "H2", "H3", "fund-a1"}[rng.IntN(5)]
		case x == 7: // what posting H2 booked, asked as a transfer: its first result
			r = ledger.TransferRequest{Key: "H2", Debit: "a2", Credit: "shop", Amount: 50, PaymentID: "PH2", Kind: "merchant_payment"}
		case x == 8:
			r.Debit, r.Amount = "cash:KES", math.MaxInt64/3
		case x == 9:
			r.Amount = 0
		case x == 10:
			r.Kind = ""
		case x == 11:
			r.Key = ""
		case x < 20:
			r.Debit = "cash:KES" // keeps money coming in
		}
		rs = append(rs, r)
	}
	return rs
}

var transferID = regexp.MustCompile(`TR[A-Z0-9]{12}`)

// idMap pairs the transfer ids of one ledger with those of its twin.
type idMap map[string]string

func (m idMap) same(t *testing.T, what, x, y string) {
	t.Helper()
	if x == "" || y == "" {
		if x != y {
			t.Errorf("%s: transfer id %q vs %q", what, x, y)
		}
		return
	}
	if prev, ok := m[x]; ok && prev != y {
		t.Errorf("%s: transfer %s is %s in the twin, earlier %s", what, x, y, prev)
	}
	m[x] = y
}

// sameOutcomes compares what a batch returned (x) with what the same requests one by one
// returned (y), transfer ids paired by ids.
func sameOutcomes(t *testing.T, ids idMap, rs []ledger.TransferRequest, xs []ledger.Transfer, xerrs []error, ys []ledger.Transfer, yerrs []error) {
	t.Helper()
	for i := range rs {
		xe, ye := "", ""
		if xerrs[i] != nil {
			xe = transferID.ReplaceAllString(xerrs[i].Error(), "TR*")
		}
		if yerrs[i] != nil {
			ye = transferID.ReplaceAllString(yerrs[i].Error(), "TR*")
		}
		if xe != ye {
			t.Errorf("request %d %+v: batch err %q, alone %q", i, rs[i], xe, ye)
			continue
		}
		ids.same(t, fmt.Sprintf("request %d", i), xs[i].ID, ys[i].ID)
		x, y := xs[i], ys[i]
		x.ID, y.ID = "", ""
		if x != y {
			t.Errorf("request %d: batch %+v, alone %+v", i, xs[i], ys[i])
		}
	}
}

// sameBooks compares two ledgers' accounts and journals, transfer ids paired by ids.
func sameBooks(t *testing.T, ids idMap, x, y *ledger.Ledger) {
	t.Helper()
	accounts := func(l *ledger.Ledger) []ledger.Account {
		var as []ledger.Account
		if err := l.Accounts(ctx, func(a ledger.Account) error { as = append(as, a); return nil }); err != nil {
			t.Fatal(err)
		}
		return as
	}
	xa, ya := accounts(x), accounts(y)
	if len(xa) != len(ya) {
		t.Fatalf("%d accounts vs %d", len(xa), len(ya))
	}
	for i := range xa {
		if xa[i] != ya[i] {
			t.Errorf("account %+v vs %+v", xa[i], ya[i])
		}
	}
	journal := func(l *ledger.Ledger) []ledger.Entry {
		var es []ledger.Entry
		if err := l.Journal(ctx, 0, func(e ledger.Entry) error { es = append(es, e); return nil }); err != nil {
			t.Fatal(err)
		}
		return es
	}
	xj, yj := journal(x), journal(y)
	if len(xj) != len(yj) {
		t.Fatalf("%d entries vs %d", len(xj), len(yj))
	}
	for i := range xj {
		ids.same(t, fmt.Sprintf("entry %d", xj[i].Seq), xj[i].TransferID, yj[i].TransferID)
		a, b := xj[i], yj[i]
		a.TransferID, a.PrevHash, a.Hash = "", "", ""
		b.TransferID, b.PrevHash, b.Hash = "", "", ""
		if a != b {
			t.Errorf("entry %+v vs %+v", xj[i], yj[i])
		}
	}
	mustVerify(t, x)
	mustVerify(t, y)
}

// oneByOne books rs with Transfer, one request after another.
func oneByOne(l *ledger.Ledger, rs []ledger.TransferRequest) ([]ledger.Transfer, []error) {
	trs, errs := make([]ledger.Transfer, len(rs)), make([]error, len(rs))
	for i, r := range rs {
		trs[i], errs[i] = l.Transfer(ctx, r)
	}
	return trs, errs
}

func TestTransferBatchDecidesAsOneByOne(t *testing.T) {
	pgtest.Both(t, func(t *testing.T) {
		for _, seed := range []uint64{1, 2, 3} {
			t.Run(fmt.Sprint("seed ", seed), func(t *testing.T) {
				x, y := twinLedger(t), twinLedger(t)
				ids := idMap{}
				for round, n := range []int{400, 1, 60} {
					rs := mixedRequests(n, seed*10+uint64(round))
					xs, xerrs := x.TransferBatch(ctx, rs)
					ys, yerrs := oneByOne(y, rs)
					sameOutcomes(t, ids, rs, xs, xerrs, ys, yerrs)
					booked := 0
					for _, err := range xerrs {
						if err == nil {
							booked++
						}
					}
					if n > 1 && (booked == 0 || booked == n) {
						t.Errorf("round %d: %d of %d booked: the requests do not mix cases", round, booked, n)
					}
				}
				sameBooks(t, ids, x, y)
			})
		}
	})
}

// TestTransferBatchFallsBackAlone makes a statement of the batch fail in the middle of a
// large batch (a trigger refuses one journal entry): that request fails alone and the
// batch books the rest exactly as one by one would.
func TestTransferBatchFallsBackAlone(t *testing.T) {
	pgtest.Both(t, func(t *testing.T) {
		x, y := twinLedger(t), twinLedger(t)
		refuseBoomEntries(t, x)
		refuseBoomEntries(t, y)
		rs := mixedRequests(200, 7)
		rs[100] = ledger.TransferRequest{Key: "boom", Debit: "cash:KES", Credit: "a4", Amount: 5, PaymentID: "BOOM", Kind: "deposit"}
		xs, xerrs := x.TransferBatch(ctx, rs)
		ys, yerrs := oneByOne(y, rs)
		if xerrs[100] == nil || !strings.Contains(xerrs[100].Error(), "entry refused") {
			t.Errorf("the refused request: err = %v", xerrs[100])
		}
		ids := idMap{}
		sameOutcomes(t, ids, rs, xs, xerrs, ys, yerrs)
		sameBooks(t, ids, x, y)
	})
}

func TestTransferBatchRunningBalances(t *testing.T) {
	pgtest.Both(t, func(t *testing.T) {
		l := mustOpen(t)
		cash := mustCash(t, l, "KES")
		alice, bob := mustWallet(t, l, "KES"), mustWallet(t, l, "KES")
		mustDeposit(t, l, alice.ID, 100)
		mustDeposit(t, l, bob.ID, 1)
		earlier, err := l.Transfer(ctx, ledger.TransferRequest{Key: "earlier", Debit: bob.ID, Credit: alice.ID, Amount: 1, Kind: "transfer"})
		if err != nil {
			t.Fatal(err)
		}
		// alice has 101.
		rs := []ledger.TransferRequest{
			{Key: "s1", Debit: alice.ID, Credit: bob.ID, Amount: 60, Kind: "transfer"},
			{Key: "s2", Debit: alice.ID, Credit: bob.ID, Amount: 60, Kind: "transfer"},     // 41 left: refused
			{Key: "s1", Debit: alice.ID, Credit: bob.ID, Amount: 60, Kind: "transfer"},     // a repeat: s1 again
			{Key: "earlier", Debit: bob.ID, Credit: alice.ID, Amount: 1, Kind: "transfer"}, // a repeat of a committed one
			{Key: "b1", Debit: bob.ID, Credit: alice.ID, Amount: 60, Kind: "transfer"},     // bob spends what s1 gave him
			{Key: "s2", Debit: alice.ID, Credit: bob.ID, Amount: 60, Kind: "transfer"},     // the refused key is free: 101 - 60
			{Key: "s3", Debit: alice.ID, Credit: bob.ID, Amount: 43, Kind: "transfer"},     // 42 left: refused
			{Key: "d1", Debit: cash.ID, Credit: alice.ID, Amount: 2, Kind: "deposit"},      // 43
			{Key: "s4", Debit: alice.ID, Credit: bob.ID, Amount: 43, Kind: "transfer"},     // 0
			{Key: "s5", Debit: alice.ID, Credit: bob.ID, Amount: 1, Kind: "transfer"},      // refused
			{Key: "s1", Debit: alice.ID, Credit: bob.ID, Amount: 61, Kind: "transfer"},     // s1 with another amount
			{Key: "earlier", Debit: bob.ID, Credit: alice.ID, Amount: 2, Kind: "transfer"}, // earlier with another amount
		}
		want := []error{nil, ledger.ErrInsufficientFunds, nil, nil, nil, nil, ledger.ErrInsufficientFunds, nil, nil,
			ledger.ErrInsufficientFunds, ledger.ErrIdempotencyConflict, ledger.ErrIdempotencyConflict}
		trs, errs := l.TransferBatch(ctx, rs)
		for i := range rs {
			if !errors.Is(errs[i], want[i]) || (want[i] == nil) != (errs[i] == nil) {
				t.Errorf("request %d (%s): err = %v, want %v", i, rs[i].Key, errs[i], want[i])
			}
		}
		if trs[2] != trs[0] {
			t.Errorf("s1 again = %+v, want the first %+v", trs[2], trs[0])
		}
		if trs[3] != earlier {
			t.Errorf("earlier again = %+v, want %+v", trs[3], earlier)
		}
		wantBalance(t, l, alice.ID, posted(0))
		wantBalance(t, l, bob.ID, posted(103))
		// Each entry's balance_after is the running balance, in batch order.
		es, err := l.Entries(ctx, alice.ID, 0, 0)
		if err != nil {
			t.Fatal(err)
		}
		var after []int64
		for i := len(es) - 1; i >= 0; i-- {
			after = append(after, es[i].BalanceAfter)
		}
		if got, want := fmt.Sprint(after), fmt.Sprint([]int64{100, 101, 41, 101, 41, 43, 0}); got != want {
			t.Errorf("alice's balances after each entry = %s, want %s", got, want)
		}
		mustVerify(t, l)
	})
}

// TestTransferBatchManyTimesOneAccount books a batch that moves money around a few
// accounts hundreds of times: every account is written once, with the sum.
func TestTransferBatchManyTimesOneAccount(t *testing.T) {
	pgtest.Both(t, func(t *testing.T) {
		l, c := openCounting(t)
		cash := mustCash(t, l, "KES")
		w := []ledger.Account{mustWallet(t, l, "KES"), mustWallet(t, l, "KES"), mustWallet(t, l, "KES")}
		var rs []ledger.TransferRequest
		for i := range 600 {
			d, cr := w[i%3].ID, w[(i+1)%3].ID
			if i < 3 {
				d = cash.ID
			}
			rs = append(rs, ledger.TransferRequest{Key: fmt.Sprint("m", i), Debit: d, Credit: cr, Amount: 10, Kind: "transfer"})
		}
		c.n.Store(0)
		_, errs := l.TransferBatch(ctx, rs)
		for i, err := range errs {
			if err != nil {
				t.Fatalf("request %d: %v", i, err)
			}
		}
		// A savepoint and its release, the accounts, the keys, the head, the transfers, the
		// entries (two statements: up to 1,024 rows each) and the accounts' totals.
		if got := c.n.Load(); got != 9 {
			t.Errorf("a batch of 600 ran %d statements, want 9", got)
		}
		// w[0] got 10 from cash, then each wallet gave 10 and got 10 per round.
		for _, a := range w {
			wantBalance(t, l, a.ID, posted(10))
		}
		wantBalance(t, l, cash.ID, posted(-30))
		if r := mustVerify(t, l); r.Entries != 1200 {
			t.Errorf("%d entries, want 1200", r.Entries)
		}
	})
}

// TestTransferBatchLarge books more transfers among more accounts than one statement of
// the batch takes, so that every read and write runs in several.
func TestTransferBatchLarge(t *testing.T) {
	pgtest.Both(t, func(t *testing.T) {
		l := mustOpen(t)
		cash := mustCash(t, l, "KES")
		const accounts, transfers = 1100, 2100
		ids := make([]string, accounts)
		err := l.DB().Write(ctx, func(tx store.Tx) error {
			for i := range ids {
				a, err := l.In(tx).CreateAccount(ctx, ledger.NewAccount{Type: ledger.Wallet, Currency: "KES"})
				if err != nil {
					return err
				}
				ids[i] = a.ID
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		want := map[string]int64{}
		var rs []ledger.TransferRequest
		for i := range transfers {
			r := ledger.TransferRequest{Key: fmt.Sprint("big", i), Debit: cash.ID, Credit: ids[i%accounts], Amount: 100, Kind: "deposit"}
			if i >= accounts { // the second round passes half of it on
				r.Debit, r.Credit, r.Amount = ids[i%accounts], ids[(i+1)%accounts], 50
			}
			want[r.Debit] -= r.Amount
			want[r.Credit] += r.Amount
			rs = append(rs, r)
		}
		trs, errs := l.TransferBatch(ctx, rs)
		for i, err := range errs {
			if err != nil {
				t.Fatalf("request %d: %v", i, err)
			}
		}
		if trs[transfers-1].ID <= trs[0].ID {
			t.Errorf("ids %s ... %s: want them in booking order", trs[0].ID, trs[transfers-1].ID)
		}
		for id, n := range want {
			wantBalance(t, l, id, posted(n))
		}
		if r := mustVerify(t, l); r.Transfers != transfers || r.Entries != 2*transfers {
			t.Errorf("report %+v", r)
		}
		// The same batch again books nothing and returns the same transfers.
		again, errs := l.TransferBatch(ctx, rs)
		for i := range rs {
			if errs[i] != nil || again[i] != trs[i] {
				t.Fatalf("request %d again: %+v, %v; want %+v", i, again[i], errs[i], trs[i])
			}
		}
		if n := countRows(t, l, "transfers"); n != transfers {
			t.Errorf("%d transfers after the repeat, want %d", n, transfers)
		}
	})
}
