package ledger_test

import (
	"errors"
	"testing"

	"github.com/payswitch/payswitch/internal/pgtest"

	"github.com/payswitch/payswitch/ledger"
)

func TestReverse(t *testing.T) {
	pgtest.Both(t, func(t *testing.T) {
		setup := func(t *testing.T) (*ledger.Ledger, ledger.Account, ledger.Account, ledger.Transfer) {
			l := mustOpen(t)
			alice, shop := mustWallet(t, l, "KES"), mustWallet(t, l, "KES")
			mustDeposit(t, l, alice.ID, 1_000)
			pay, err := l.Transfer(ctx, ledger.TransferRequest{Key: "P1:pay", Debit: alice.ID, Credit: shop.ID,
				Amount: 400, PaymentID: "P1", Kind: "merchant_payment"})
			if err != nil {
				t.Fatal(err)
			}
			return l, alice, shop, pay
		}

		t.Run("books the opposite transfer", func(t *testing.T) {
			l, alice, shop, pay := setup(t)
			rev, err := l.Reverse(ctx, pay.ID, "P1:reverse")
			if err != nil {
				t.Fatal(err)
			}
			if rev.Debit != shop.ID || rev.Credit != alice.ID || rev.Amount != 400 || rev.Kind != ledger.KindReversal ||
				rev.PaymentID != "P1" || rev.Reverses != pay.ID || rev.ID == pay.ID {
				t.Errorf("reversal = %+v", rev)
			}
			wantBalance(t, l, alice.ID, posted(1_000))
			wantBalance(t, l, shop.ID, posted(0))
			// The original is untouched.
			orig, err := l.TransferByID(ctx, pay.ID)
			if err != nil || orig != pay {
				t.Errorf("original now %+v, %v; want %+v", orig, err, pay)
			}
			mustVerify(t, l)
		})
		t.Run("twice with the same key", func(t *testing.T) {
			l, alice, _, pay := setup(t)
			first, err := l.Reverse(ctx, pay.ID, "P1:reverse")
			if err != nil {
				t.Fatal(err)
			}
			again, err := l.Reverse(ctx, pay.ID, "P1:reverse")
			if err != nil || again != first {
				t.Errorf("again = %+v, %v; want %+v", again, err, first)
			}
			wantBalance(t, l, alice.ID, posted(1_000))
			if n := countRows(t, l, "transfers"); n != 3 {
				t.Errorf("%d transfers, want 3", n)
			}
		})
		t.Run("already reversed under another key", func(t *testing.T) {
			l, alice, _, pay := setup(t)
			if _, err := l.Reverse(ctx, pay.ID, "P1:reverse"); err != nil {
				t.Fatal(err)
			}
			if _, err := l.Reverse(ctx, pay.ID, "P1:reverse-again"); !errors.Is(err, ledger.ErrAlreadyReversed) {
				t.Errorf("err = %v, want ErrAlreadyReversed", err)
			}
			wantBalance(t, l, alice.ID, posted(1_000))
		})
		t.Run("payee spent the funds", func(t *testing.T) {
			l, alice, shop, pay := setup(t)
			other := mustWallet(t, l, "KES")
			if _, err := l.Transfer(ctx, ledger.TransferRequest{Key: "spend", Debit: shop.ID, Credit: other.ID, Amount: 350, Kind: "transfer"}); err != nil {
				t.Fatal(err)
			}
			if _, err := l.Reverse(ctx, pay.ID, "P1:reverse"); !errors.Is(err, ledger.ErrInsufficientFunds) {
				t.Errorf("err = %v, want ErrInsufficientFunds", err)
			}
			wantBalance(t, l, alice.ID, posted(600))
			wantBalance(t, l, shop.ID, posted(50))
		})
		t.Run("a reversal is not reversed", func(t *testing.T) {
			l, _, _, pay := setup(t)
			rev, err := l.Reverse(ctx, pay.ID, "P1:reverse")
			if err != nil {
				t.Fatal(err)
			}
			if _, err := l.Reverse(ctx, rev.ID, "P1:undo"); !errors.Is(err, ledger.ErrInvalidRequest) {
				t.Errorf("err = %v, want ErrInvalidRequest", err)
			}
		})
		t.Run("key of another transfer", func(t *testing.T) {
			l, _, _, pay := setup(t)
			if _, err := l.Reverse(ctx, pay.ID, "P1:pay"); !errors.Is(err, ledger.ErrIdempotencyConflict) {
				t.Errorf("err = %v, want ErrIdempotencyConflict", err)
			}
		})
		t.Run("unknown transfer", func(t *testing.T) {
			l, _, _, _ := setup(t)
			if _, err := l.Reverse(ctx, "TRNOSUCHTHING", "x"); !errors.Is(err, ledger.ErrNotFound) {
				t.Errorf("err = %v, want ErrNotFound", err)
			}
		})
	})
}
