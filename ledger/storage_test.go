package ledger_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/payswitch/payswitch/ledger"
	"github.com/payswitch/payswitch/store"
)

func TestReopenKeepsEverything(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ledger.db")
	l, err := ledger.Open(path, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	alice, bob := mustWallet(t, l, "KES"), mustWallet(t, l, "KES")
	mustDeposit(t, l, alice.ID, 1_000)
	pay, err := l.Transfer(ctx, ledger.TransferRequest{Key: "p", Debit: alice.ID, Credit: bob.ID, Amount: 100, PaymentID: "P", Kind: "transfer"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := l.Hold(ctx, ledger.HoldRequest{Key: "h", Debit: alice.ID, Credit: bob.ID, Amount: 50, Kind: "transfer"}); err != nil {
		t.Fatal(err)
	}
	before := mustVerify(t, l)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("file mode %v, %v; want 0600", fi.Mode().Perm(), err)
	}

	l = mustOpenPath(t, path)
	wantBalance(t, l, alice.ID, ledger.Balance{Posted: 900, Held: 50, Available: 850})
	wantBalance(t, l, bob.ID, posted(100))
	if got, err := l.TransferByID(ctx, pay.ID); err != nil || got != pay {
		t.Errorf("transfer after reopening = %+v, %v; want %+v", got, err, pay)
	}
	// The same key after a restart is still the same transfer.
	if again, err := l.Transfer(ctx, ledger.TransferRequest{Key: "p", Debit: alice.ID, Credit: bob.ID, Amount: 100, PaymentID: "P", Kind: "transfer"}); err != nil || again != pay {
		t.Errorf("replay after reopening = %+v, %v", again, err)
	}
	if _, err := l.Post(ctx, "h"); err != nil {
		t.Fatal(err)
	}
	after := mustVerify(t, l)
	if after.Entries != before.Entries+2 {
		t.Errorf("entries %d, want %d", after.Entries, before.Entries+2)
	}
	var firstNew ledger.Entry
	if err := l.Journal(ctx, before.LastSeq, func(e ledger.Entry) error {
		if firstNew.Seq == 0 {
			firstNew = e
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if firstNew.PrevHash != before.LastHash {
		t.Errorf("the chain after reopening links to %s, want %s", firstNew.PrevHash, before.LastHash)
	}
}

func TestMigratesFromFirstVersion(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ledger.db")
	// A file written by a binary that knew only the first migration.
	old := store.Schema{Component: ledger.Schema.Component, Migrations: ledger.Schema.Migrations[:1]}
	db, err := store.Open(path, store.Options{}, old)
	if err != nil {
		t.Fatal(err)
	}
	err = db.Write(ctx, func(tx store.Tx) error {
		_, err := tx.ExecContext(context.Background(), `INSERT INTO accounts (id, type, currency, name, msisdn, created_at, credits_posted)
			VALUES ('ACOLDWALLET1', 'wallet', 'KES', 'old', '254700000777', '2025-01-01T00:00:00.000000Z', 0)`)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	l := mustOpenPath(t, path)
	var version int
	if err := l.DB().Reader().QueryRow(`SELECT version FROM schema_versions WHERE component = 'ledger'`).Scan(&version); err != nil {
		t.Fatal(err)
	}
	if version != len(ledger.Schema.Migrations) {
		t.Errorf("schema version %d, want %d", version, len(ledger.Schema.Migrations))
	}
	a, err := l.AccountByMSISDN(ctx, "254700000777")
	if err != nil || a.ID != "ACOLDWALLET1" {
		t.Fatalf("old account = %+v, %v", a, err)
	}
	bob := mustWallet(t, l, "KES")
	mustDeposit(t, l, a.ID, 500)
	if _, err := l.Hold(ctx, ledger.HoldRequest{Key: "h", Debit: a.ID, Credit: bob.ID, Amount: 200, Kind: "transfer"}); err != nil {
		t.Fatalf("hold after migrating: %v", err)
	}
	if _, err := l.Post(ctx, "h"); err != nil {
		t.Fatal(err)
	}
	wantBalance(t, l, a.ID, posted(300))
	mustVerify(t, l)
}

func TestRefusesNewerSchema(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ledger.db")
	newer := store.Schema{Component: ledger.Schema.Component,
		Migrations: append(append([]string{}, ledger.Schema.Migrations...), `CREATE TABLE ledger_future (x INTEGER) STRICT`)}
	db, err := store.Open(path, store.Options{}, newer)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	l, err := ledger.Open(path, store.Options{})
	if !errors.Is(err, store.ErrNewerSchema) {
		if l != nil {
			l.Close()
		}
		t.Fatalf("opening a newer file: err = %v, want store.ErrNewerSchema", err)
	}
}
