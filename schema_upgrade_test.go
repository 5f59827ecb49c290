package main

import (
	"context"
	"path/filepath"
	"regexp"
	"testing"

	"github.com/payswitch/payswitch/ledger"
	"github.com/payswitch/payswitch/otp"
	"github.com/payswitch/payswitch/outbox"
	"github.com/payswitch/payswitch/smpp"
	"github.com/payswitch/payswitch/store"
	payswitch "github.com/payswitch/payswitch/switch"
)

func allSchemas() []store.Schema {
	return []store.Schema{ledger.Schema, otp.Schema, outbox.Schema, payswitch.Schema, smpp.GatewaySchema}
}

// inListCheck finds an IN list of three values or more, which SQLite evaluates in a
// CHECK by building a temporary B-tree for every row (store.InAsOr).
var inListCheck = regexp.MustCompile(`\w+ IN \('[^']*',\s*'[^']*',\s*'`)

// A database written by the release before the CHECKs were rewritten upgrades in
// place: its rows, balances and journal are intact, the CHECKs are the cheap form and
// still refuse what they refused.
func TestSchemaUpgradeRewritesChecksAndKeepsData(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "payswitch.db")

	// The schemas as that release had them.
	released := map[string]int{"ledger": 2, "otp": 1, "outbox": 1}
	var old []store.Schema
	for _, s := range allSchemas() {
		if n, ok := released[s.Component]; ok {
			s.Migrations = s.Migrations[:n]
		}
		old = append(old, s)
	}
	db, err := store.Open(path, store.Options{}, old...)
	if err != nil {
		t.Fatal(err)
	}
	led := ledger.New(db, nil)
	cash, err := led.SystemAccount(ctx, ledger.Cash, "Cash", "KES")
	if err != nil {
		t.Fatal(err)
	}
	wallet, err := led.CreateAccount(ctx, ledger.NewAccount{Type: ledger.Wallet, Currency: "KES", Name: "Alice", MSISDN: alice})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := led.Transfer(ctx, ledger.TransferRequest{Key: "dep-1", Debit: cash.ID, Credit: wallet.ID, Amount: 50_000, Kind: "deposit"}); err != nil {
		t.Fatal(err)
	}
	if _, err := led.Hold(ctx, ledger.HoldRequest{Key: "hold-1", Debit: wallet.ID, Credit: cash.ID, Amount: 1_000, Kind: "payment"}); err != nil {
		t.Fatal(err)
	}
	box := outbox.New(db, nil)
	if err := db.Write(ctx, func(tx store.Tx) error {
		_, err := box.Enqueue(ctx, tx, outbox.Message{To: alice, Text: "hello", Purpose: "reply"})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	db, err = store.Open(path, store.Options{}, allSchemas()...)
	if err != nil {
		t.Fatalf("upgrade: %v", err)
	}
	defer db.Close()
	led = ledger.New(db, nil)

	rows, err := db.Reader().Query(`SELECT name, sql FROM sqlite_schema WHERE type = 'table' AND sql IS NOT NULL`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var name, ddl string
		if err := rows.Scan(&name, &ddl); err != nil {
			t.Fatal(err)
		}
		if m := inListCheck.FindString(ddl); m != "" {
			t.Errorf("table %s still has an IN list of three or more values: %q", name, m)
		}
	}
	rows.Close()

	var integrity string
	if err := db.Reader().QueryRow(`PRAGMA integrity_check`).Scan(&integrity); err != nil || integrity != "ok" {
		t.Fatalf("integrity_check = %q, %v", integrity, err)
	}
	rep, err := led.Verify(ctx)
	if err != nil || !rep.OK || rep.Transfers != 1 {
		t.Fatalf("verify after upgrade: %+v, %v", rep, err)
	}
	got, err := led.Account(ctx, wallet.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Balance != (ledger.Balance{Posted: 50_000, Held: 1_000, Available: 49_000}) {
		t.Fatalf("balance after upgrade = %+v", got.Balance)
	}
	if _, err := led.Post(ctx, "hold-1"); err != nil {
		t.Fatalf("posting a hold made before the upgrade: %v", err)
	}

	// The rewritten CHECKs still hold, on the writer that migrated.
	for _, bad := range []string{
		`UPDATE messages SET state = 'lost'`,
		`UPDATE accounts SET status = 'asleep' WHERE id = '` + wallet.ID + `'`,
		`UPDATE accounts SET status = 'frozen' WHERE id = '` + cash.ID + `'`,
		`UPDATE accounts SET debits_posted = debits_posted + 1000000 WHERE id = '` + wallet.ID + `'`,
		`INSERT INTO auth_events (time, payment_id, msisdn_masked, channel, event) VALUES ('t', 'p', 'm', 'sms', 'guessed')`,
		`INSERT INTO otp_codes (payment_id, digest, issued_at, expires_at, state) VALUES ('p', x'00', 0, 0, 'maybe')`,
	} {
		err := db.Write(ctx, func(tx store.Tx) error { _, err := tx.ExecContext(context.Background(), bad); return err })
		if err == nil {
			t.Errorf("%s: accepted after the upgrade", bad)
		}
	}
}
