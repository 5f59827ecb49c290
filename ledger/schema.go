package ledger

import "github.com/payswitch/payswitch/store"

// Schema holds the ledger's tables. Migrations are append-only: a released one is never
// edited, a change is a new migration at the end.
//
// Times are text in TimeLayout (UTC, microseconds): entries hash their time exactly as
// stored, and fixed-width text sorts in time order.
//
// Invariants the schema itself enforces, so that a bug in Go code cannot break them:
//   - an account that may not go below zero never has posted - held < 0 (the CHECK on
//     accounts; the code checks first and reports ErrInsufficientFunds);
//   - system accounts are always active;
//   - a transfer key and a hold key are used once (UNIQUE), a transfer is reversed at most
//     once (UNIQUE reverses), and a transfer has one debit and one credit entry
//     (UNIQUE (transfer_id, direction));
//   - entries and transfers are never updated or deleted, and a hold leaves "pending"
//     once (triggers).
//
// Migration 1 is the journal (accounts, transfers, entries); migration 2 adds two-phase
// holds.
var Schema = store.Schema{Component: "ledger", Migrations: []string{`
CREATE TABLE accounts (
	id              TEXT PRIMARY KEY,
	type            TEXT NOT NULL CHECK (type IN ('wallet', 'merchant', 'agent', 'cash', 'fees', 'airtime_clearing', 'settlement')),
	currency        TEXT NOT NULL CHECK (length(currency) = 3),
	name            TEXT NOT NULL DEFAULT '',
	msisdn          TEXT UNIQUE,
	code            TEXT UNIQUE,
	status          TEXT NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'frozen', 'closed')),
	created_at      TEXT NOT NULL,
	debits_posted   INTEGER NOT NULL DEFAULT 0 CHECK (debits_posted >= 0),
	credits_posted  INTEGER NOT NULL DEFAULT 0 CHECK (credits_posted >= 0),
	debits_pending  INTEGER NOT NULL DEFAULT 0 CHECK (debits_pending >= 0),
	credits_pending INTEGER NOT NULL DEFAULT 0 CHECK (credits_pending >= 0),
	CHECK (type IN ('cash', 'fees', 'airtime_clearing', 'settlement')
		OR credits_posted - debits_posted - debits_pending >= 0),
	CHECK (type IN ('wallet', 'merchant', 'agent') OR status = 'active')
) STRICT;

CREATE TABLE transfers (
	id         TEXT PRIMARY KEY,
	key        TEXT NOT NULL UNIQUE,
	debit      TEXT NOT NULL REFERENCES accounts (id),
	credit     TEXT NOT NULL REFERENCES accounts (id),
	amount     INTEGER NOT NULL CHECK (amount > 0),
	currency   TEXT NOT NULL,
	payment_id TEXT NOT NULL DEFAULT '',
	kind       TEXT NOT NULL,
	reverses   TEXT UNIQUE REFERENCES transfers (id),
	time       TEXT NOT NULL,
	CHECK (debit <> credit)
) STRICT;
CREATE INDEX transfers_by_payment ON transfers (payment_id) WHERE payment_id <> '';

CREATE TABLE entries (
	seq           INTEGER PRIMARY KEY,
	time          TEXT NOT NULL,
	transfer_id   TEXT NOT NULL REFERENCES transfers (id),
	payment_id    TEXT NOT NULL,
	account_id    TEXT NOT NULL REFERENCES accounts (id),
	direction     TEXT NOT NULL CHECK (direction IN ('D', 'C')),
	amount        INTEGER NOT NULL CHECK (amount > 0),
	currency      TEXT NOT NULL,
	balance_after INTEGER NOT NULL,
	prev_hash     TEXT NOT NULL,
	hash          TEXT NOT NULL
) STRICT;
CREATE INDEX entries_by_account ON entries (account_id, seq);
CREATE UNIQUE INDEX entries_one_per_side ON entries (transfer_id, direction);

CREATE TRIGGER entries_no_update BEFORE UPDATE ON entries
BEGIN SELECT RAISE(ABORT, 'ledger: entries are append-only'); END;
CREATE TRIGGER entries_no_delete BEFORE DELETE ON entries
BEGIN SELECT RAISE(ABORT, 'ledger: entries are append-only'); END;
CREATE TRIGGER transfers_no_update BEFORE UPDATE ON transfers
BEGIN SELECT RAISE(ABORT, 'ledger: transfers are append-only'); END;
CREATE TRIGGER transfers_no_delete BEFORE DELETE ON transfers
BEGIN SELECT RAISE(ABORT, 'ledger: transfers are append-only'); END;
`, `
CREATE TABLE holds (
	key         TEXT PRIMARY KEY,
	debit       TEXT NOT NULL REFERENCES accounts (id),
	credit      TEXT NOT NULL REFERENCES accounts (id),
	amount      INTEGER NOT NULL CHECK (amount > 0),
	currency    TEXT NOT NULL,
	payment_id  TEXT NOT NULL DEFAULT '',
	kind        TEXT NOT NULL,
	state       TEXT NOT NULL CHECK (state IN ('pending', 'posted', 'voided')),
	transfer_id TEXT UNIQUE REFERENCES transfers (id),
	created_at  TEXT NOT NULL,
	updated_at  TEXT NOT NULL,
	CHECK (debit <> credit),
	CHECK ((state = 'posted') = (transfer_id IS NOT NULL))
) STRICT, WITHOUT ROWID;
CREATE INDEX holds_pending ON holds (debit) WHERE state = 'pending';
CREATE TRIGGER holds_settle_once BEFORE UPDATE ON holds
WHEN OLD.state <> 'pending' OR NEW.key <> OLD.key OR NEW.debit <> OLD.debit
	OR NEW.credit <> OLD.credit OR NEW.amount <> OLD.amount
BEGIN SELECT RAISE(ABORT, 'ledger: a hold is posted or voided once'); END;
CREATE TRIGGER holds_no_delete BEFORE DELETE ON holds
BEGIN SELECT RAISE(ABORT, 'ledger: holds are never deleted'); END;
`,
	// Migration 3 writes the CHECKs on accounts and holds with OR instead of IN lists,
	// which SQLite evaluated by building a temporary B-tree on every balance update
	// (store.InAsOr says more). Same constraints, no rows copied.
	store.EditTableSQL("accounts",
		store.InAsOr(`type IN ('wallet', 'merchant', 'agent', 'cash', 'fees', 'airtime_clearing', 'settlement')`),
		store.InAsOr(`status IN ('active', 'frozen', 'closed')`),
		store.InAsOr(`type IN ('cash', 'fees', 'airtime_clearing', 'settlement')`),
		store.InAsOr(`type IN ('wallet', 'merchant', 'agent')`)) + "\n" +
		store.EditTableSQL("holds", store.InAsOr(`state IN ('pending', 'posted', 'voided')`)),
}}
