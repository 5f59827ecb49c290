package main

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
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
	checkBooks(t, led, 1, wallet.ID, ledger.Balance{Posted: 50_000, Held: 1_000, Available: 49_000})
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

// released returns the schemas as a release had them: each component named in versions
// cut back to that many migrations, the others whole.
func released(versions map[string]int) []store.Schema {
	var out []store.Schema
	for _, s := range allSchemas() {
		if n, ok := versions[s.Component]; ok {
			s.Migrations = s.Migrations[:n]
		}
		out = append(out, s)
	}
	return out
}

// tableRows reads every row of the tables the rebuilds touch, in key order, as text: what
// must read the same after the upgrade. payments' rowids are read too, which the
// rebuild keeps.
func tableRows(t *testing.T, db *store.DB) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	for table, q := range map[string]string{
		"accounts":  `SELECT * FROM accounts ORDER BY id`,
		"transfers": `SELECT * FROM transfers ORDER BY id`,
		"holds":     `SELECT * FROM holds ORDER BY key`,
		"entries":   `SELECT * FROM entries ORDER BY seq`,
		// The columns payments had in its first migration: later ones add columns with a
		// default (description, migration 5), which every old row reads as the default.
		"payments": `SELECT rowid, id, type, channel, state, payer_msisdn, payer_account, payee_account, payee_name,
			payee_code, payee_msisdn, target_msisdn, amount, currency, reference, request_key, reason, carrier,
			transfer_id, reversal_ref, attempts, next_attempt_at, expires_at, created_at, updated_at
			FROM payments ORDER BY id`,
		"payment_events": `SELECT * FROM payment_events ORDER BY seq`,
		"otp_codes":      `SELECT * FROM otp_codes ORDER BY payment_id`,
	} {
		rows, err := db.Reader().Query(q)
		if err != nil {
			t.Fatal(err)
		}
		cols, _ := rows.Columns()
		for rows.Next() {
			vals := make([]any, len(cols))
			ptrs := make([]any, len(cols))
			for i := range vals {
				ptrs[i] = &vals[i]
			}
			if err := rows.Scan(ptrs...); err != nil {
				t.Fatal(err)
			}
			out[table] = append(out[table], fmt.Sprintf("%#v", vals))
		}
		if err := rows.Close(); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

// A database of the release before the tables were rebuilt (ledger 3, otp 2, payments 1)
// upgrades in place: accounts, transfers and otp_codes become WITHOUT ROWID tables, the
// UNIQUE columns that are mostly NULL become partial unique indexes, every row reads the
// same, and every constraint, trigger and foreign key still refuses what it refused.
func TestSchemaUpgradeRebuildsTablesAndKeepsData(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "payswitch.db")
	db, err := store.Open(path, store.Options{}, released(map[string]int{"ledger": 3, "otp": 2, "payments": 1})...)
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
	shop, err := led.CreateAccount(ctx, ledger.NewAccount{Type: ledger.Merchant, Currency: "KES", Name: "Shop", Code: "55501"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := led.Transfer(ctx, ledger.TransferRequest{Key: "dep-1", Debit: cash.ID, Credit: wallet.ID, Amount: 50_000, Kind: "deposit"}); err != nil {
		t.Fatal(err)
	}
	paid, err := led.Transfer(ctx, ledger.TransferRequest{Key: "pay-1", Debit: wallet.ID, Credit: shop.ID, Amount: 2_000, PaymentID: "PAYONE", Kind: "payment"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := led.Reverse(ctx, paid.ID, "rev-1"); err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{"hold-posted", "hold-voided", "hold-pending"} {
		if _, err := led.Hold(ctx, ledger.HoldRequest{Key: key, Debit: wallet.ID, Credit: shop.ID, Amount: 1_000, PaymentID: key, Kind: "payment"}); err != nil {
			t.Fatal(err)
		}
	}
	posted, err := led.Post(ctx, "hold-posted")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := led.Void(ctx, "hold-voided"); err != nil {
		t.Fatal(err)
	}
	// Payments as the engine writes them: most without a request key or reversal
	// reference, one with each.
	exec := func(db *store.DB, q string, args ...any) error {
		return db.Write(ctx, func(tx store.Tx) error { _, err := tx.ExecContext(ctx, q, args...); return err })
	}
	const insertPayment = `INSERT INTO payments (id, type, channel, state, payer_msisdn, payer_account, payee_account,
		amount, currency, request_key, reversal_ref, created_at, updated_at) VALUES (?, 'merchant_payment', 'sms', 'completed', ?, ?, ?, 100, 'KES', ?, ?, 1, 2)`
	for _, p := range []struct {
		id       string
		key, ref any
	}{{"PAYONE", nil, nil}, {"PAYTWO", "api-7", nil}, {"PAYTHREE", nil, "op-ref-9"}, {"PAYFOUR", nil, nil}} {
		if err := exec(db, insertPayment, p.id, alice, wallet.ID, shop.ID, p.key, p.ref); err != nil {
			t.Fatal(err)
		}
		if err := exec(db, `INSERT INTO payment_events (payment_id, time, event, from_state, to_state) VALUES (?, 1, 'create', '', 'completed')`, p.id); err != nil {
			t.Fatal(err)
		}
		if err := exec(db, `INSERT INTO otp_codes (payment_id, digest, issued_at, expires_at, state) VALUES (?, x'0102', 1, 2, 'used')`, p.id); err != nil {
			t.Fatal(err)
		}
	}
	before := tableRows(t, db)
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	db, err = store.Open(path, store.Options{}, allSchemas()...)
	if err != nil {
		t.Fatalf("upgrade: %v", err)
	}
	defer db.Close()
	led = ledger.New(db, nil)

	if after := tableRows(t, db); !reflect.DeepEqual(before, after) {
		for table := range before {
			if !reflect.DeepEqual(before[table], after[table]) {
				t.Errorf("%s changed:\nbefore %v\nafter  %v", table, before[table], after[table])
			}
		}
	}
	var integrity string
	if err := db.Reader().QueryRow(`PRAGMA integrity_check`).Scan(&integrity); err != nil || integrity != "ok" {
		t.Fatalf("integrity_check = %q, %v", integrity, err)
	}
	var orphans int
	if err := db.Reader().QueryRow(`SELECT count(*) FROM pragma_foreign_key_check`).Scan(&orphans); err != nil || orphans != 0 {
		t.Fatalf("foreign_key_check: %d rows, %v", orphans, err)
	}
	for _, c := range []struct {
		name, query string
		want        int
	}{
		{"scratch tables left", `SELECT count(*) FROM sqlite_schema WHERE name LIKE '%rebuild%'`, 0},
		{"WITHOUT ROWID tables", `SELECT count(*) FROM sqlite_schema WHERE type = 'table'
			AND name IN ('accounts', 'transfers', 'holds', 'otp_codes') AND sql LIKE '%WITHOUT ROWID'`, 4},
		{"payments is a rowid table", `SELECT count(*) FROM sqlite_schema WHERE name = 'payments' AND sql NOT LIKE '%WITHOUT ROWID%'`, 1},
		{"UNIQUE columns that are mostly NULL", `SELECT count(*)
			FROM (SELECT 'payments' AS t UNION ALL SELECT 'transfers' UNION ALL SELECT 'holds') AS tb,
				pragma_index_list(tb.t) AS il, pragma_index_info(il.name) AS ii
			WHERE il.origin = 'u' AND ii.name IN ('request_key', 'reversal_ref', 'reverses', 'transfer_id')`, 0},
		{"partial unique indexes", `SELECT count(*) FROM sqlite_schema WHERE type = 'index' AND name IN
			('payments_request_key', 'payments_reversal_ref', 'transfers_reverses', 'holds_transfer')`, 4},
		{"triggers", `SELECT count(*) FROM sqlite_schema WHERE type = 'trigger' AND name IN ('transfers_no_update',
			'transfers_no_delete', 'holds_settle_once', 'holds_no_delete', 'entries_no_update', 'entries_no_delete')`, 6},
	} {
		rows, err := db.Reader().Query(c.query)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		for rows.Next() {
			var n int
			if err := rows.Scan(&n); err != nil {
				t.Fatal(err)
			}
			if n != c.want {
				t.Errorf("%s: %d, want %d", c.name, n, c.want)
			}
		}
		rows.Close()
	}

	// Every constraint still refuses what it refused.
	for _, bad := range []struct{ name, query, want string }{
		{"a second payment with a request key", `INSERT INTO payments (id, type, channel, state, payer_account, payee_account, amount,
			currency, request_key, created_at, updated_at) VALUES ('PAYDUP', 't', 'sms', 'completed', 'a', 'b', 1, 'KES', 'api-7', 1, 1)`, "UNIQUE constraint failed: payments.request_key"},
		{"a second payment with a reversal reference", `UPDATE payments SET reversal_ref = 'op-ref-9' WHERE id = 'PAYONE'`, "UNIQUE constraint failed: payments.reversal_ref"},
		{"an event of no payment", `INSERT INTO payment_events (payment_id, time, event, from_state, to_state) VALUES ('NOPAY', 1, 'e', '', '')`, "FOREIGN KEY constraint failed"},
		{"a second code for a payment", `INSERT INTO otp_codes (payment_id, digest, issued_at, expires_at, state) VALUES ('PAYONE', x'00', 0, 0, 'active')`, "UNIQUE constraint failed: otp_codes.payment_id"},
		{"a code in no state", `INSERT INTO otp_codes (payment_id, digest, issued_at, expires_at, state) VALUES ('PAYNEW', x'00', 0, 0, 'maybe')`, "CHECK constraint failed"},
		{"a second reversal of a transfer", `INSERT INTO transfers (id, key, debit, credit, amount, currency, kind, reverses, time)
			VALUES ('TRDUP', 'rev-2', '` + shop.ID + `', '` + wallet.ID + `', 2000, 'KES', 'reversal', '` + paid.ID + `', 't')`, "UNIQUE constraint failed: transfers.reverses"},
		{"a reversal of no transfer", `INSERT INTO transfers (id, key, debit, credit, amount, currency, kind, reverses, time)
			VALUES ('TRNONE', 'rev-3', '` + shop.ID + `', '` + wallet.ID + `', 2000, 'KES', 'reversal', 'TRNOTHING', 't')`, "FOREIGN KEY constraint failed"},
		{"a transfer of no account", `INSERT INTO transfers (id, key, debit, credit, amount, currency, kind, time)
			VALUES ('TRGHOST', 'ghost', 'ACNOBODY', '` + wallet.ID + `', 1, 'KES', 'k', 't')`, "FOREIGN KEY constraint failed"},
		{"a transfer key used twice", `INSERT INTO transfers (id, key, debit, credit, amount, currency, kind, time)
			VALUES ('TRTWICE', 'dep-1', '` + cash.ID + `', '` + wallet.ID + `', 1, 'KES', 'k', 't')`, "UNIQUE constraint failed: transfers.key"},
		{"an edited transfer", `UPDATE transfers SET amount = 1 WHERE id = '` + paid.ID + `'`, "transfers are append-only"},
		{"a deleted transfer", `DELETE FROM transfers WHERE id = '` + paid.ID + `'`, "transfers are append-only"},
		{"an entry of no transfer", `INSERT INTO entries (seq, time, transfer_id, payment_id, account_id, direction, amount, currency,
			balance_after, prev_hash, hash) VALUES (1000, 't', 'TRNOTHING', '', '` + wallet.ID + `', 'D', 1, 'KES', 0, 'x', 'y')`, "FOREIGN KEY constraint failed"},
		{"a second hold of one transfer", `INSERT INTO holds (key, debit, credit, amount, currency, kind, state, transfer_id, created_at, updated_at)
			VALUES ('hold-copy', '` + wallet.ID + `', '` + shop.ID + `', 1000, 'KES', 'payment', 'posted', '` + posted.ID + `', 't', 't')`, "UNIQUE constraint failed: holds.transfer_id"},
		{"a posted hold without its transfer", `INSERT INTO holds (key, debit, credit, amount, currency, kind, state, created_at, updated_at)
			VALUES ('hold-odd', '` + wallet.ID + `', '` + shop.ID + `', 1000, 'KES', 'payment', 'posted', 't', 't')`, "CHECK constraint failed"},
		{"a hold settled twice", `UPDATE holds SET state = 'voided', transfer_id = NULL WHERE key = 'hold-posted'`, "a hold is posted or voided once"},
		{"a deleted hold", `DELETE FROM holds WHERE key = 'hold-voided'`, "holds are never deleted"},
		{"an overdrawn wallet", `UPDATE accounts SET debits_posted = debits_posted + 1000000 WHERE id = '` + wallet.ID + `'`, "CHECK constraint failed"},
		{"an account of no type", `INSERT INTO accounts (id, type, currency, created_at) VALUES ('ACODD', 'piggy', 'KES', 't')`, "CHECK constraint failed"},
		{"a second account of a number", `INSERT INTO accounts (id, type, currency, msisdn, created_at) VALUES ('ACTWO', 'wallet', 'KES', '` + alice + `', 't')`, "UNIQUE constraint failed: accounts.msisdn"},
	} {
		if err := exec(db, bad.query); err == nil || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("%s: %v after the upgrade, want %q", bad.name, err, bad.want)
		}
	}
	// What they always allowed, they still allow: any number of payments without a
	// request key or reversal reference.
	for _, id := range []string{"PAYFIVE", "PAYSIX"} {
		if err := exec(db, insertPayment, id, alice, wallet.ID, shop.ID, nil, nil); err != nil {
			t.Errorf("payment %s without request key: %v", id, err)
		}
	}

	// The ledger goes on from where it was.
	if _, err := led.Post(ctx, "hold-pending"); err != nil {
		t.Fatalf("posting a hold made before the upgrade: %v", err)
	}
	if again, err := led.Post(ctx, "hold-posted"); err != nil || again.ID != posted.ID {
		t.Fatalf("posting again a hold posted before the upgrade: %+v, %v", again, err)
	}
	if _, err := led.Reverse(ctx, paid.ID, "rev-again"); !errors.Is(err, ledger.ErrAlreadyReversed) {
		t.Fatalf("reversing a transfer reversed before the upgrade: %v", err)
	}
	trs, err := led.TransfersOfPayment(ctx, "PAYONE")
	if err != nil || len(trs) != 2 || trs[0].ID != paid.ID || trs[1].Reverses != paid.ID {
		t.Fatalf("transfers of PAYONE, oldest first: %+v, %v", trs, err)
	}
	checkBooks(t, led, 5, wallet.ID, ledger.Balance{Posted: 48_000, Held: 0, Available: 48_000})
}

// checkBooks verifies the upgraded ledger (its journal chain, transfers transfers) and
// the balance of account.
func checkBooks(t *testing.T, led *ledger.Ledger, transfers int, account string, want ledger.Balance) {
	t.Helper()
	ctx := context.Background()
	rep, err := led.Verify(ctx)
	if err != nil || !rep.OK || rep.Transfers != int64(transfers) {
		t.Fatalf("verify after upgrade: %+v, %v", rep, err)
	}
	got, err := led.Account(ctx, account)
	if err != nil {
		t.Fatal(err)
	}
	if got.Balance != want {
		t.Fatalf("balance of %s after upgrade = %+v, want %+v", account, got.Balance, want)
	}
}
