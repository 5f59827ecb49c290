package ledger_test

import (
	"errors"
	"fmt"
	"testing"

	"github.com/payswitch/payswitch/internal/pgtest"

	"github.com/payswitch/payswitch/ledger"
	"github.com/payswitch/payswitch/store"
)

// TestTxPaymentFlow runs a payment the way the engine does, each step in its own
// store.Write through l.In(tx).
func TestTxPaymentFlow(t *testing.T) {
	pgtest.Both(t, func(t *testing.T) {
		l := mustOpen(t)
		in := func(fn func(lt *ledger.Tx) error) {
			t.Helper()
			if err := l.DB().Write(ctx, func(tx store.Tx) error { return fn(l.In(tx)) }); err != nil {
				t.Fatal(err)
			}
		}
		var alice, shop ledger.Account
		in(func(lt *ledger.Tx) error {
			cash, err := lt.SystemAccount(ctx, ledger.Cash, "KES", "KES")
			if err != nil {
				return err
			}
			if alice, err = lt.CreateAccount(ctx, ledger.NewAccount{Type: ledger.Wallet, Currency: "KES", MSISDN: "254700000001"}); err != nil {
				return err
			}
			if shop, err = lt.CreateAccount(ctx, ledger.NewAccount{Type: ledger.Merchant, Currency: "KES", Code: "55501"}); err != nil {
				return err
			}
			_, err = lt.Transfer(ctx, ledger.TransferRequest{Key: "CASHIN-1", Debit: cash.ID, Credit: alice.ID, Amount: 1_000, Kind: "deposit"})
			return err
		})
		in(func(lt *ledger.Tx) error {
			payer, err := lt.AccountByMSISDN(ctx, "254700000001")
			if err != nil {
				return err
			}
			payee, err := lt.AccountByCode(ctx, "55501")
			if err != nil {
				return err
			}
			// A refused hold leaves nothing, and the flow goes on in the same transaction.
			if _, err := lt.Hold(ctx, ledger.HoldRequest{Key: "PAY1:hold", Debit: payer.ID, Credit: payee.ID, Amount: 5_000, PaymentID: "PAY1", Kind: "merchant_payment"}); !errors.Is(err, ledger.ErrInsufficientFunds) {
				return fmt.Errorf("hold too much: %v", err)
			}
			if _, err := lt.Hold(ctx, ledger.HoldRequest{Key: "PAY1:hold", Debit: payer.ID, Credit: payee.ID, Amount: 400, PaymentID: "PAY1", Kind: "merchant_payment"}); err != nil {
				return err
			}
			_, err = lt.Hold(ctx, ledger.HoldRequest{Key: "PAY2:hold", Debit: payer.ID, Credit: payee.ID, Amount: 100, PaymentID: "PAY2", Kind: "merchant_payment"})
			return err
		})
		wantBalance(t, l, alice.ID, ledger.Balance{Posted: 1_000, Held: 500, Available: 500})
		var pay ledger.Transfer
		in(func(lt *ledger.Tx) error {
			var err error
			if pay, err = lt.Post(ctx, "PAY1:hold"); err != nil {
				return err
			}
			h, err := lt.HoldByKey(ctx, "PAY1:hold")
			if err != nil || h.State != ledger.HoldPosted || h.TransferID != pay.ID {
				return fmt.Errorf("hold after post = %+v, %v", h, err)
			}
			if v, err := lt.Void(ctx, "PAY2:hold"); err != nil || v.State != ledger.HoldVoided {
				return fmt.Errorf("void = %+v, %v", v, err)
			}
			// Read again, the transfer has both balances after, also where the post
			// left its credit for the end (PostgreSQL).
			got, err := lt.TransferByID(ctx, pay.ID)
			if err != nil || got.ID != pay.ID || got.DebitBalanceAfter != pay.DebitBalanceAfter ||
				!got.BalancesAfterKnown || got.CreditBalanceAfter != 400 {
				return fmt.Errorf("transfer by id = %+v, %v; post = %+v", got, err, pay)
			}
			return nil
		})
		wantBalance(t, l, alice.ID, posted(600))
		wantBalance(t, l, shop.ID, posted(400))
		in(func(lt *ledger.Tx) error {
			rev, err := lt.Reverse(ctx, pay.ID, "PAY1:reverse")
			if err != nil {
				return err
			}
			trs, err := lt.TransfersOfPayment(ctx, "PAY1")
			if err != nil || len(trs) != 2 || trs[1].ID != rev.ID || !trs[1].BalancesAfterKnown {
				return fmt.Errorf("transfers of PAY1 = %+v, %v", trs, err)
			}
			if err := lt.SetStatus(ctx, shop.ID, ledger.Frozen); err != nil {
				return err
			}
			a, err := lt.Account(ctx, shop.ID)
			if err != nil || a.Status != ledger.Frozen || a.Balance.Posted != 0 {
				return fmt.Errorf("shop = %+v, %v", a, err)
			}
			return nil
		})
		wantBalance(t, l, alice.ID, posted(1_000))
		mustVerify(t, l)
	})
}

// TestTxFailureAfterWritingLeavesNothing makes a transfer fail after it has written its
// row and balances; the caller's transaction must still be as the ledger found it. On
// PostgreSQL entries are appended at the transaction's end (postgres_append.go), so a
// refused entry fails the whole Write there, and nothing of it is kept.
func TestTxFailureAfterWritingLeavesNothing(t *testing.T) {
	pgtest.Both(t, func(t *testing.T) {
		l := mustOpen(t)
		alice, bob := mustWallet(t, l, "KES"), mustWallet(t, l, "KES")
		mustDeposit(t, l, alice.ID, 1_000)
		refuseBoomEntries(t, l)
		if pgtest.OnPostgres(t) {
			err := l.DB().Write(ctx, func(tx store.Tx) error {
				lt := l.In(tx)
				if _, err := lt.Transfer(ctx, ledger.TransferRequest{Key: "fine", Debit: alice.ID, Credit: bob.ID, Amount: 10, Kind: "transfer"}); err != nil {
					return err
				}
				_, err := lt.Transfer(ctx, ledger.TransferRequest{Key: "boom", Debit: alice.ID, Credit: bob.ID, Amount: 100, PaymentID: "BOOM", Kind: "transfer"})
				return err
			})
			if err == nil {
				t.Fatal("a refused entry did not fail the Write")
			}
			wantBalance(t, l, alice.ID, posted(1_000))
			wantBalance(t, l, bob.ID, posted(0))
			if n := countRows(t, l, "transfers"); n != 1 {
				t.Errorf("%d transfers, want the deposit's alone", n)
			}
			mustVerify(t, l)
			return
		}
		err := l.DB().Write(ctx, func(tx store.Tx) error {
			lt := l.In(tx)
			if _, err := lt.Transfer(ctx, ledger.TransferRequest{Key: "boom", Debit: alice.ID, Credit: bob.ID, Amount: 100, PaymentID: "BOOM", Kind: "transfer"}); err == nil {
				return errors.New("the refused entry did not fail the transfer")
			}
			_, err := lt.Transfer(ctx, ledger.TransferRequest{Key: "fine", Debit: alice.ID, Credit: bob.ID, Amount: 10, Kind: "transfer"})
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		wantBalance(t, l, alice.ID, posted(990))
		wantBalance(t, l, bob.ID, posted(10))
		if n := countRows(t, l, "transfers"); n != 2 {
			t.Errorf("%d transfers, want 2", n)
		}
		mustVerify(t, l)
	})
}
