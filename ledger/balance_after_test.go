package ledger_test

import (
	"context"
	"testing"
	"time"

	"github.com/payswitch/payswitch/internal/pgtest"

	"github.com/payswitch/payswitch/ledger"
	"github.com/payswitch/payswitch/store"
)

// wantBalancesAfter checks that tr carries the posted balances wantDebit and wantCredit
// as those right after it, and that they are its two journal entries' balance_after.
func wantBalancesAfter(tb testing.TB, l *ledger.Ledger, name string, tr ledger.Transfer, wantDebit, wantCredit int64) {
	tb.Helper()
	if !tr.BalancesAfterKnown || tr.DebitBalanceAfter != wantDebit || tr.CreditBalanceAfter != wantCredit {
		tb.Errorf("%s: balances after = %d/%d (known %v), want %d/%d",
			name, tr.DebitBalanceAfter, tr.CreditBalanceAfter, tr.BalancesAfterKnown, wantDebit, wantCredit)
	}
	for _, side := range []struct {
		account, direction string
		want               int64
	}{{tr.Debit, ledger.Debit, tr.DebitBalanceAfter}, {tr.Credit, ledger.Credit, tr.CreditBalanceAfter}} {
		es, err := l.Entries(ctx, side.account, 0, ledger.MaxPage)
		if err != nil {
			tb.Fatal(err)
		}
		found := false
		for _, e := range es {
			if e.TransferID != tr.ID {
				continue
			}
			found = true
			if e.Direction != side.direction || e.BalanceAfter != side.want {
				tb.Errorf("%s: entry %d of %s is %s with balance after %d, want %s with %d",
					name, e.Seq, side.account, e.Direction, e.BalanceAfter, side.direction, side.want)
			}
		}
		if !found {
			tb.Errorf("%s: no entry of %s on %s", name, tr.ID, side.account)
		}
	}
}

// TestTransferCarriesBalancesAfter follows accounts through every call that returns a
// transfer: each gives both accounts' posted balances right after that transfer (what a
// receipt prints), a repeat the same ones as the first call even when the accounts have
// moved since, and a balance of zero is known as zero.
func TestTransferCarriesBalancesAfter(t *testing.T) {
	pgtest.Both(t, func(t *testing.T) {
		l := mustOpen(t)
		cash := mustCash(t, l, "KES")
		alice, bob, shop := mustWallet(t, l, "KES"), mustWallet(t, l, "KES"), mustWallet(t, l, "KES")
		transfer := func(key, debit, credit string, amount int64) func() (ledger.Transfer, error) {
			return func() (ledger.Transfer, error) {
				return l.Transfer(ctx, ledger.TransferRequest{Key: key, Debit: debit, Credit: credit, Amount: amount,
					PaymentID: "PAY", Kind: "transfer"})
			}
		}
		byKey := map[string]ledger.Transfer{}
		for _, s := range []struct {
			name                  string
			key                   string // remembers the transfer under it when set
			fn                    func() (ledger.Transfer, error)
			wantDebit, wantCredit int64
		}{
			// Cash is a system account and goes below zero.
			{"deposit", "dep", transfer("dep", cash.ID, alice.ID, 1_000), -1_000, 1_000},
			{"transfer", "t1", transfer("t1", alice.ID, bob.ID, 300), 700, 300},
			{"post", "p1", func() (ledger.Transfer, error) {
				if _, err := l.Hold(ctx, ledger.HoldRequest{Key: "P1:hold", Debit: alice.ID, Credit: shop.ID, Amount: 200,
					PaymentID: "P1", Kind: "merchant_payment"}); err != nil {
					return ledger.Transfer{}, err
				}
				return l.Post(ctx, "P1:hold")
			}, 500, 200},
			{"transfer that moves both", "t2", transfer("t2", bob.ID, alice.ID, 50), 250, 550},
			// Repeats give the balances of then, not of now (alice 550, bob 250).
			{"transfer again", "", transfer("t1", alice.ID, bob.ID, 300), 700, 300},
			{"post again", "", func() (ledger.Transfer, error) { return l.Post(ctx, "P1:hold") }, 500, 200},
			{"reverse", "r2", func() (ledger.Transfer, error) { return l.Reverse(ctx, byKey["t2"].ID, "r2") }, 500, 300},
			{"reverse again", "", func() (ledger.Transfer, error) { return l.Reverse(ctx, byKey["t2"].ID, "r2") }, 500, 300},
			{"the whole balance", "t3", transfer("t3", bob.ID, shop.ID, 300), 0, 500},
			{"the whole balance again", "", transfer("t3", bob.ID, shop.ID, 300), 0, 500},
			{"read by id", "", func() (ledger.Transfer, error) { return l.TransferByID(ctx, byKey["t1"].ID) }, 700, 300},
			{"post and post again in one transaction", "p2", func() (tr ledger.Transfer, err error) {
				err = l.DB().Write(ctx, func(tx store.Tx) error {
					lt := l.In(tx)
					if _, err := lt.Hold(ctx, ledger.HoldRequest{Key: "P2:hold", Debit: shop.ID, Credit: bob.ID, Amount: 500,
						PaymentID: "P2", Kind: "transfer"}); err != nil {
						return err
					}
					if tr, err = lt.Post(ctx, "P2:hold"); err != nil {
						return err
					}
					// On PostgreSQL the first post's credit waits for the end, and its
					// balances after with it; the second reads it back with both.
					again, err := lt.Post(ctx, "P2:hold")
					if err == nil && (again.ID != tr.ID || again.DebitBalanceAfter != tr.DebitBalanceAfter ||
						tr.BalancesAfterKnown && again != tr || !again.BalancesAfterKnown) {
						t.Errorf("post again in the transaction = %+v, want %+v", again, tr)
					}
					tr = again
					return err
				})
				return tr, err
			}, 0, 500},
		} {
			tr, err := s.fn()
			if err != nil {
				t.Fatalf("%s: %v", s.name, err)
			}
			wantBalancesAfter(t, l, s.name, tr, s.wantDebit, s.wantCredit)
			if s.key != "" {
				byKey[s.key] = tr
			}
		}
		// A read returns every transfer as the call that booked it did.
		trs, err := l.TransfersOfPayment(ctx, "PAY")
		if err != nil {
			t.Fatal(err)
		}
		keys := []string{"dep", "t1", "t2", "r2", "t3"} // a reversal has its original's payment
		if len(trs) != len(keys) {
			t.Fatalf("%d transfers of PAY, want %d", len(trs), len(keys))
		}
		for i, key := range keys {
			if trs[i] != byKey[key] {
				t.Errorf("transfer %s read as %+v, booked as %+v", key, trs[i], byKey[key])
			}
		}
		wantBalance(t, l, alice.ID, posted(500))
		wantBalance(t, l, bob.ID, posted(500))
		wantBalance(t, l, shop.ID, posted(0))
		mustVerify(t, l)
	})
}

// TestTransferBatchCarriesBalancesAfter: a batch gives each transfer the balances right
// after it within the batch, and a key repeated in the batch, or booked before it, the
// first transfer's.
func TestTransferBatchCarriesBalancesAfter(t *testing.T) {
	pgtest.Both(t, func(t *testing.T) {
		l := mustOpen(t)
		cash := mustCash(t, l, "KES")
		alice, bob := mustWallet(t, l, "KES"), mustWallet(t, l, "KES")
		dep, err := l.Transfer(ctx, ledger.TransferRequest{Key: "dep", Debit: cash.ID, Credit: alice.ID, Amount: 1_000, Kind: "deposit"})
		if err != nil {
			t.Fatal(err)
		}
		wantBalancesAfter(t, l, "deposit", dep, -1_000, 1_000)
		type want struct {
			name          string
			debit, credit int64
		}
		for _, batch := range []struct {
			name string
			rs   []ledger.TransferRequest
			want []want // zero name: the request is refused
		}{
			{"first", []ledger.TransferRequest{
				{Key: "a1", Debit: alice.ID, Credit: bob.ID, Amount: 600, Kind: "transfer"},
				{Key: "b1", Debit: bob.ID, Credit: alice.ID, Amount: 100, Kind: "transfer"},
				{Key: "a1", Debit: alice.ID, Credit: bob.ID, Amount: 600, Kind: "transfer"},
				{Key: "dep", Debit: cash.ID, Credit: alice.ID, Amount: 1_000, Kind: "deposit"},
				{Key: "a2", Debit: alice.ID, Credit: bob.ID, Amount: 500, Kind: "transfer"},
				{Key: "x", Debit: alice.ID, Credit: bob.ID, Amount: 1, Kind: "transfer"},
				{Key: "dep2", Debit: cash.ID, Credit: bob.ID, Amount: 1, Kind: "deposit"},
			}, []want{
				{"a1", 400, 600},
				{"b1", 500, 500},
				{"a1 repeated in the batch", 400, 600},
				{"dep booked before the batch", -1_000, 1_000},
				{"a2, all alice has", 0, 1_000},
				{},
				{"dep2", -1_001, 1_001},
			}},
			{"second", []ledger.TransferRequest{
				{Key: "a1", Debit: alice.ID, Credit: bob.ID, Amount: 600, Kind: "transfer"},
				{Key: "dep2", Debit: cash.ID, Credit: bob.ID, Amount: 1, Kind: "deposit"},
			}, []want{
				{"a1 from the first batch", 400, 600},
				{"dep2 from the first batch", -1_001, 1_001},
			}},
		} {
			trs, errs := l.TransferBatch(ctx, batch.rs)
			for i, w := range batch.want {
				if w.name == "" {
					if errs[i] == nil {
						t.Errorf("%s batch: request %d booked %+v, want it refused", batch.name, i, trs[i])
					}
					continue
				}
				if errs[i] != nil {
					t.Errorf("%s batch: %s: %v", batch.name, w.name, errs[i])
					continue
				}
				wantBalancesAfter(t, l, batch.name+" batch: "+w.name, trs[i], w.debit, w.credit)
			}
		}
		wantBalance(t, l, alice.ID, posted(0))
		wantBalance(t, l, bob.ID, posted(1_001))
		mustVerify(t, l)
	})
}

// TestTransferWithoutEntriesHasNoBalancesAfter: a transfer whose entries are missing (a
// damaged journal; the ledger never writes one) is still found, by a read and by a repeat
// of its request, but says its balances after are unknown instead of reporting zeros.
func TestTransferWithoutEntriesHasNoBalancesAfter(t *testing.T) {
	pgtest.Both(t, func(t *testing.T) {
		l := mustOpen(t)
		alice, bob := mustWallet(t, l, "KES"), mustWallet(t, l, "KES")
		const id = "TR0000000000AA"
		err := l.DB().Write(ctx, func(tx store.Tx) error {
			_, err := tx.ExecContext(context.Background(), `INSERT INTO transfers (id, key, debit, credit, amount, currency, payment_id, kind, time)
				VALUES (?, 'k', ?, ?, 5, 'KES', '', 'transfer', ?)`, id, alice.ID, bob.ID, ledger.FormatTime(time.Now()))
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range []struct {
			name string
			fn   func() (ledger.Transfer, error)
		}{
			{"read by id", func() (ledger.Transfer, error) { return l.TransferByID(ctx, id) }},
			{"repeated request", func() (ledger.Transfer, error) {
				return l.Transfer(ctx, ledger.TransferRequest{Key: "k", Debit: alice.ID, Credit: bob.ID, Amount: 5, Kind: "transfer"})
			}},
		} {
			tr, err := c.fn()
			if err != nil || tr.ID != id {
				t.Errorf("%s = %+v, %v; want transfer %s", c.name, tr, err, id)
				continue
			}
			if tr.BalancesAfterKnown || tr.DebitBalanceAfter != 0 || tr.CreditBalanceAfter != 0 {
				t.Errorf("%s: balances after %d/%d known %v, want unknown", c.name, tr.DebitBalanceAfter, tr.CreditBalanceAfter, tr.BalancesAfterKnown)
			}
		}
	})
}
