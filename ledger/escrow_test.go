package ledger_test

import (
	"errors"
	"path/filepath"
	"testing"

	"github.com/payswitch/payswitch/internal/pgtest"

	"github.com/payswitch/payswitch/ledger"
	"github.com/payswitch/payswitch/store"
)

// The escrow account (contract section 11) is a system account that keeps guaranteed
// payments' money: made by SystemAccount, always active, and, unlike the other system
// accounts, never below zero, which the schema enforces as well as the code.
func TestEscrowAccount(t *testing.T) {
	pgtest.Both(t, func(t *testing.T) {
		l := mustOpen(t)
		if !ledger.Escrow.Valid() || !ledger.Escrow.IsSystem() || ledger.Escrow.MayGoNegative() {
			t.Fatalf("escrow: Valid %v IsSystem %v MayGoNegative %v, want valid system never negative",
				ledger.Escrow.Valid(), ledger.Escrow.IsSystem(), ledger.Escrow.MayGoNegative())
		}
		esc, err := l.SystemAccount(ctx, ledger.Escrow, "KES", "KES")
		if err != nil {
			t.Fatal(err)
		}
		if esc.ID != "escrow:KES" || esc.Type != ledger.Escrow || esc.Status != ledger.Active {
			t.Fatalf("escrow account = %+v", esc)
		}
		alice, shop := mustWallet(t, l, "KES"), mustWallet(t, l, "KES")
		mustDeposit(t, l, alice.ID, 1_000)
		if _, err := l.Transfer(ctx, ledger.TransferRequest{Key: "p1:in", Debit: alice.ID, Credit: esc.ID,
			Amount: 600, Kind: "merchant_payment"}); err != nil {
			t.Fatal(err)
		}
		if _, err := l.Transfer(ctx, ledger.TransferRequest{Key: "p1:out", Debit: esc.ID, Credit: shop.ID,
			Amount: 601, Kind: "escrow_release"}); !errors.Is(err, ledger.ErrInsufficientFunds) {
			t.Fatalf("escrow paying out more than it keeps: err = %v, want ErrInsufficientFunds", err)
		}
		if _, err := l.Transfer(ctx, ledger.TransferRequest{Key: "p1:out", Debit: esc.ID, Credit: shop.ID,
			Amount: 600, Kind: "escrow_release"}); err != nil {
			t.Fatal(err)
		}
		if a, err := l.Account(ctx, esc.ID); err != nil || a.Balance.Posted != 0 {
			t.Fatalf("escrow after release = %+v, %v; want 0", a.Balance, err)
		}
		if err := l.SetStatus(ctx, esc.ID, ledger.Frozen); !errors.Is(err, ledger.ErrInvalidAccount) {
			t.Errorf("freezing escrow: err = %v, want ErrInvalidAccount", err)
		}
		rep, err := l.Verify(ctx)
		if err != nil || len(rep.Problems) > 0 {
			t.Fatalf("verify = %v, %v", rep.Problems, err)
		}
	})
}

// The schema itself refuses escrow below zero, whatever the code does, and an account
// type it does not know: migrationEscrow widened the type CHECK and nothing else.
func TestEscrowSchemaChecks(t *testing.T) {
	db, err := store.Open(filepath.Join(t.TempDir(), "ledger.db"), store.Options{}, ledger.Schema)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	insert := func(id, typ string, credits, debits int64) error {
		return db.Write(ctx, func(tx store.Tx) error {
			_, err := tx.ExecContext(ctx, `INSERT INTO accounts (id, type, currency, status, created_at,
				credits_posted, debits_posted) VALUES (?, ?, 'KES', 'active', '2026-01-01', ?, ?)`, id, typ, credits, debits)
			return err
		})
	}
	if err := insert("escrow:KES", "escrow", 5, 0); err != nil {
		t.Fatalf("escrow account: %v", err)
	}
	if err := insert("escrow:UGX", "escrow", 0, 5); err == nil {
		t.Error("escrow below zero was inserted")
	}
	if err := insert("cash:UGX", "cash", 0, 5); err != nil {
		t.Errorf("cash below zero: %v", err)
	}
	if err := insert("bogus:KES", "bogus", 0, 0); err == nil {
		t.Error("an unknown account type was inserted")
	}
}
