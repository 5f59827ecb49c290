package ledger_test

import (
	"errors"
	"fmt"
	"testing"

	"github.com/payswitch/payswitch/internal/pgtest"
	"github.com/payswitch/payswitch/ledger"
	"github.com/payswitch/payswitch/store"
)

// Inside a caller's Write on PostgreSQL a booking's credit waits for the transaction's
// end (postgres_credits.go). These tests run on both drivers: on SQLite the credit is
// applied at once, and every answer must be the same.

// TestTransactionSeesItsOwnWaitingCredits reads and spends, in the transaction that
// booked them, credits that wait: the account read shows them, a debit of the credited
// account finds the funds, and the entries' balances after follow the order of the
// bookings.
func TestTransactionSeesItsOwnWaitingCredits(t *testing.T) {
	pgtest.Both(t, func(t *testing.T) {
		l := mustOpen(t)
		mustCash(t, l, "KES")
		alice, bob := mustWallet(t, l, "KES"), mustWallet(t, l, "KES")
		shop, err := l.CreateAccount(ctx, ledger.NewAccount{Type: ledger.Merchant, Currency: "KES", Code: "55501"})
		if err != nil {
			t.Fatal(err)
		}
		mustDeposit(t, l, alice.ID, 1_000)
		var toShop, fromShop ledger.Transfer
		err = l.DB().Write(ctx, func(tx store.Tx) error {
			lt := l.In(tx)
			if _, err := lt.Hold(ctx, ledger.HoldRequest{Key: "P1:hold", Debit: alice.ID, Credit: shop.ID, Amount: 300,
				PaymentID: "P1", Kind: "merchant_payment"}); err != nil {
				return err
			}
			a, err := lt.Account(ctx, shop.ID)
			if err != nil {
				return err
			}
			if a.Balance.Posted != 0 {
				t.Errorf("shop after the hold = %+v, want nothing posted", a.Balance)
			}
			if toShop, err = lt.Post(ctx, "P1:hold"); err != nil {
				return err
			}
			// The debit side is known at once; the credit's balance only when it waits no more.
			pg := l.DB().Dialect() == store.Postgres
			if toShop.CreditWaits != pg || toShop.BalancesAfterKnown == pg || toShop.DebitBalanceAfter != 700 {
				t.Errorf("post in the transaction = %+v, want the debit's balance after (700), the credit's waiting: %v", toShop, pg)
			}
			// The shop has nothing but the credit that waits: spending it must find it.
			if fromShop, err = lt.Transfer(ctx, ledger.TransferRequest{Key: "T1", Debit: shop.ID, Credit: bob.ID,
				Amount: 250, Kind: "transfer"}); err != nil {
				return err
			}
			if !fromShop.BalancesAfterKnown && fromShop.DebitBalanceAfter != 50 {
				t.Errorf("shop after paying bob = %d, want 50", fromShop.DebitBalanceAfter)
			}
			if a, err = lt.Account(ctx, bob.ID); err != nil || a.Balance.Posted != 250 {
				t.Errorf("bob in the transaction = %+v, %v; want 250 posted", a.Balance, err)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		read := func(id string) ledger.Transfer {
			tr, err := l.TransferByID(ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			return tr
		}
		wantBalancesAfter(t, l, "post", read(toShop.ID), 700, 300)
		wantBalancesAfter(t, l, "shop pays bob", read(fromShop.ID), 50, 250)
		wantBalance(t, l, shop.ID, posted(50))
		wantBalance(t, l, bob.ID, posted(250))
		mustVerify(t, l)
	})
}

// TestRolledBackOperationLeavesWaitingCreditsToApply has an operation apply the credits
// that wait (its lock of the credited account) and then fail: its savepoint's rollback
// undoes that statement too, so the credits must be applied again at the end.
func TestRolledBackOperationLeavesWaitingCreditsToApply(t *testing.T) {
	pgtest.Both(t, func(t *testing.T) {
		l := mustOpen(t)
		mustCash(t, l, "KES")
		alice, bob := mustWallet(t, l, "KES"), mustWallet(t, l, "KES")
		mustDeposit(t, l, alice.ID, 1_000)
		err := l.DB().Write(ctx, func(tx store.Tx) error {
			lt := l.In(tx)
			if _, err := lt.Transfer(ctx, ledger.TransferRequest{Key: "T1", Debit: alice.ID, Credit: bob.ID,
				Amount: 100, Kind: "transfer"}); err != nil {
				return err
			}
			// Bob cannot pay this much even with the 100: refused and rolled back.
			_, err := lt.Transfer(ctx, ledger.TransferRequest{Key: "T2", Debit: bob.ID, Credit: alice.ID,
				Amount: 5_000, Kind: "transfer"})
			if !errors.Is(err, ledger.ErrInsufficientFunds) {
				t.Errorf("bob pays 5,000 = %v, want ErrInsufficientFunds", err)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		wantBalance(t, l, alice.ID, posted(900))
		wantBalance(t, l, bob.ID, posted(100))
		mustVerify(t, l)
	})
}

// TestCreditToAccountFrozenMeanwhileFailsTheWrite freezes the credited account from
// another transaction after the booking and before the end: on PostgreSQL the credit,
// applied at the end, finds it frozen and the whole Write fails, leaving nothing; on
// SQLite the freeze waits for the writer, and the booking stands.
func TestCreditToAccountFrozenMeanwhileFailsTheWrite(t *testing.T) {
	pgtest.Both(t, func(t *testing.T) {
		// On PostgreSQL the freeze comes from another node: a node's own Writes queue for
		// its group, which this Write holds.
		l, operator := mustOpen(t), (*ledger.Ledger)(nil)
		pg := driverOf(t) == store.Postgres
		if pg {
			url := pgtest.URL(t)
			l, operator = ledger.New(openPostgresAt(t, url), nil), ledger.New(openPostgresAt(t, url), nil)
		} else {
			operator = l
		}
		mustCash(t, l, "KES")
		alice := mustWallet(t, l, "KES")
		shop, err := l.CreateAccount(ctx, ledger.NewAccount{Type: ledger.Merchant, Currency: "KES", Code: "55501"})
		if err != nil {
			t.Fatal(err)
		}
		mustDeposit(t, l, alice.ID, 1_000)
		froze := make(chan error, 1)
		err = l.DB().Write(ctx, func(tx store.Tx) error {
			if _, err := l.In(tx).Transfer(ctx, ledger.TransferRequest{Key: "T1", Debit: alice.ID, Credit: shop.ID,
				Amount: 100, Kind: "merchant_payment"}); err != nil {
				return err
			}
			go func() { froze <- operator.SetStatus(ctx, shop.ID, ledger.Frozen) }()
			if pg { // the shop's row is not locked yet: the freeze goes through
				if err := <-froze; err != nil {
					t.Errorf("freeze: %v", err)
				}
			}
			return nil
		})
		if !pg {
			if err != nil {
				t.Fatal(err)
			}
			if err := <-froze; err != nil {
				t.Fatal(err)
			}
			wantBalance(t, l, alice.ID, posted(900))
			mustVerify(t, l)
			return
		}
		if !errors.Is(err, ledger.ErrAccountInactive) {
			t.Fatalf("write = %v, want ErrAccountInactive", err)
		}
		wantBalance(t, l, alice.ID, posted(1_000))
		wantBalance(t, l, shop.ID, posted(0))
		if n := countRows(t, l, "transfers"); n != 1 { // the deposit
			t.Errorf("%d transfers, want the deposit alone", n)
		}
		mustVerify(t, l)
	})
}

// TestWaitingCreditsOfSeveralAccountsApplyTogether books, in one Write, credits to three
// merchants in an order that is not theirs (two to one of them, one through a hold), so
// that on PostgreSQL the transaction's end applies them all in one UPDATE: each
// transfer's balance after is its merchant's balance just after it, and the books verify.
// With one of the merchants frozen meanwhile (from another node), the whole Write fails
// and nothing of it stays.
func TestWaitingCreditsOfSeveralAccountsApplyTogether(t *testing.T) {
	pgtest.Both(t, func(t *testing.T) {
		for _, freeze := range []bool{false, true} {
			name := "all active"
			if freeze {
				name = "one frozen meanwhile"
			}
			t.Run(name, func(t *testing.T) {
				l, operator := mustOpen(t), (*ledger.Ledger)(nil)
				pg := driverOf(t) == store.Postgres
				if freeze && !pg {
					t.Skip("on SQLite a freeze waits for the one writer, which this Write holds (see TestCreditToAccountFrozenMeanwhileFailsTheWrite)")
				}
				if pg {
					url := pgtest.URL(t)
					l, operator = ledger.New(openPostgresAt(t, url), nil), ledger.New(openPostgresAt(t, url), nil)
				}
				mustCash(t, l, "KES")
				alice := mustWallet(t, l, "KES")
				shops := make([]ledger.Account, 3)
				for i := range shops {
					var err error
					shops[i], err = l.CreateAccount(ctx, ledger.NewAccount{Type: ledger.Merchant, Currency: "KES", Code: fmt.Sprintf("5550%d", i)})
					if err != nil {
						t.Fatal(err)
					}
				}
				mustDeposit(t, l, alice.ID, 1_000)
				pays := []struct {
					shop   int
					amount int64
				}{{1, 100}, {0, 200}, {1, 50}, {2, 10}}
				var trs []ledger.Transfer
				err := l.DB().Write(ctx, func(tx store.Tx) error {
					lt := l.In(tx)
					for i, p := range pays {
						if i == 3 { // the last through a hold, posted in the same Write
							key := fmt.Sprintf("P%d:hold", i)
							if _, err := lt.Hold(ctx, ledger.HoldRequest{Key: key, Debit: alice.ID, Credit: shops[p.shop].ID,
								Amount: p.amount, PaymentID: fmt.Sprintf("P%d", i), Kind: "merchant_payment"}); err != nil {
								return err
							}
							tr, err := lt.Post(ctx, key)
							trs = append(trs, tr)
							if err != nil {
								return err
							}
							continue
						}
						tr, err := lt.Transfer(ctx, ledger.TransferRequest{Key: fmt.Sprintf("T%d", i), Debit: alice.ID,
							Credit: shops[p.shop].ID, Amount: p.amount, Kind: "merchant_payment"})
						if err != nil {
							return err
						}
						trs = append(trs, tr)
					}
					if freeze { // from another node: the shops' rows are not locked yet
						if err := operator.SetStatus(ctx, shops[2].ID, ledger.Frozen); err != nil {
							t.Errorf("freeze: %v", err)
						}
					}
					return nil
				})
				if freeze {
					if !errors.Is(err, ledger.ErrAccountInactive) {
						t.Fatalf("write = %v, want ErrAccountInactive", err)
					}
					wantBalance(t, l, alice.ID, posted(1_000))
					for _, s := range shops {
						wantBalance(t, l, s.ID, posted(0))
					}
					mustVerify(t, l)
					return
				}
				if err != nil {
					t.Fatal(err)
				}
				wantCredit := []int64{100, 200, 150, 10}
				debit := int64(1_000)
				for i, tr := range trs {
					got, err := l.TransferByID(ctx, tr.ID)
					if err != nil {
						t.Fatal(err)
					}
					debit -= pays[i].amount
					wantBalancesAfter(t, l, fmt.Sprintf("payment %d", i), got, debit, wantCredit[i])
				}
				wantBalance(t, l, shops[0].ID, posted(200))
				wantBalance(t, l, shops[1].ID, posted(150))
				wantBalance(t, l, shops[2].ID, posted(10))
				mustVerify(t, l)
			})
		}
	})
}
