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
// holds; migration 3 rewrites CHECKs; migration 4 rebuilds accounts, transfers and holds
// for fewer B-tree operations per payment; migration 5 admits escrow accounts; migration 6
// drops holds_pending. Read the tables as migration 4 leaves them, less that index.
// On PostgreSQL the tables start as migration 4 leaves them (postgresMigrations).
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
	migration4,
	migrationEscrow,
	migrationNoPendingIndex,
}, Postgres: postgresMigrations}

// migrationNoPendingIndex drops holds_pending. No statement looks holds up by their
// debit account (balances carry what is held, in debits_pending), and the index cost every
// payment two changes on a page chosen by its payer: the entry at the hold and its removal
// at the post, each a page more for the store's one writer to change and to write to its
// WAL. The pending holds that ledger.Verify sums are found by a scan of holds, as its
// entries are.
const migrationNoPendingIndex = `DROP INDEX holds_pending;`

// migrationEscrow admits the escrow account type (contract section 11), by editing the
// type CHECK of accounts in place as migration 3 did: every existing row satisfies the
// wider check, and no index depends on it. Escrow is left out of the two other CHECKs on
// purpose: like a customer's account it may not go below zero, and like every system
// account it is always active.
var migrationEscrow = store.EditTableSQL("accounts", store.Edit{
	Old: accountTypesChecked,
	New: accountTypesChecked[:len(accountTypesChecked)-1] + " OR type = 'escrow')",
})

// accountTypesChecked is the type CHECK of accounts as migration 4 wrote it.
const accountTypesChecked = `(type = 'wallet' OR type = 'merchant' OR type = 'agent' OR type = 'cash' OR type = 'fees' OR type = 'airtime_clearing' OR type = 'settlement')`

// Migration 4 rebuilds accounts, transfers and holds so that a payment costs the store's
// one writer fewer B-tree operations, with every row, constraint, trigger and foreign key
// kept:
//   - accounts is a WITHOUT ROWID table: a payment reads its two accounts twice and
//     updates them four times, and each of those found the row through the automatic
//     index of id first and then the table;
//   - transfers is a WITHOUT ROWID table keyed by id (ids sort by time, so a new
//     transfer goes at the end), not a rowid table beside an automatic index of id: one
//     B-tree insert less per transfer, and entries and holds find their transfer in one
//     seek. reverses is unique through a partial index over the reversals, the only rows
//     that have it: the UNIQUE column put a NULL entry for every other transfer into an
//     index;
//   - holds.transfer_id likewise, unique over the posted holds: the UNIQUE column
//     indexed a NULL for every new hold, and posting it deleted that entry again.
//
// A partial unique index over the non-NULL values allows exactly what a UNIQUE column
// allows (any number of NULLs, each other value once), and a lookup by value uses it.
//
// How, inside the migration's transaction (where foreign_keys cannot be turned off):
// each table is copied to a plain scratch table, dropped, created anew under its own name
// and filled again from the copy. Dropping a table that entries references deletes its
// rows first, which leaves entries' rows without their parents; defer_foreign_keys lets
// that wait, and filling the new table finds every parent again, so nothing is left
// unresolved when the transaction commits (SQLite refuses the commit otherwise). The
// tables are dropped children first and filled parents first, so that no drop has to
// look for rows of a table without an index on the referencing column (transfers.debit,
// holds.credit): only entries, whose columns are indexed, is looked into. The triggers
// go with their tables and are created again after the rows are in.
const migration4 = `
PRAGMA defer_foreign_keys = ON;

CREATE TABLE ledger_rebuild_accounts AS SELECT * FROM accounts;
CREATE TABLE ledger_rebuild_transfers AS SELECT * FROM transfers ORDER BY rowid;
CREATE TABLE ledger_rebuild_holds AS SELECT * FROM holds;

DROP TABLE holds;
DROP INDEX transfers_by_payment;
DROP TABLE transfers;
DROP TABLE accounts;

CREATE TABLE accounts (
	id              TEXT PRIMARY KEY,
	type            TEXT NOT NULL CHECK ((type = 'wallet' OR type = 'merchant' OR type = 'agent' OR type = 'cash' OR type = 'fees' OR type = 'airtime_clearing' OR type = 'settlement')),
	currency        TEXT NOT NULL CHECK (length(currency) = 3),
	name            TEXT NOT NULL DEFAULT '',
	msisdn          TEXT UNIQUE,
	code            TEXT UNIQUE,
	status          TEXT NOT NULL DEFAULT 'active' CHECK ((status = 'active' OR status = 'frozen' OR status = 'closed')),
	created_at      TEXT NOT NULL,
	debits_posted   INTEGER NOT NULL DEFAULT 0 CHECK (debits_posted >= 0),
	credits_posted  INTEGER NOT NULL DEFAULT 0 CHECK (credits_posted >= 0),
	debits_pending  INTEGER NOT NULL DEFAULT 0 CHECK (debits_pending >= 0),
	credits_pending INTEGER NOT NULL DEFAULT 0 CHECK (credits_pending >= 0),
	CHECK ((type = 'cash' OR type = 'fees' OR type = 'airtime_clearing' OR type = 'settlement')
		OR credits_posted - debits_posted - debits_pending >= 0),
	CHECK ((type = 'wallet' OR type = 'merchant' OR type = 'agent') OR status = 'active')
) STRICT, WITHOUT ROWID;
INSERT INTO accounts SELECT * FROM ledger_rebuild_accounts;

CREATE TABLE transfers (
	id         TEXT PRIMARY KEY,
	key        TEXT NOT NULL UNIQUE,
	debit      TEXT NOT NULL REFERENCES accounts (id),
	credit     TEXT NOT NULL REFERENCES accounts (id),
	amount     INTEGER NOT NULL CHECK (amount > 0),
	currency   TEXT NOT NULL,
	payment_id TEXT NOT NULL DEFAULT '',
	kind       TEXT NOT NULL,
	reverses   TEXT REFERENCES transfers (id),
	time       TEXT NOT NULL,
	CHECK (debit <> credit)
) STRICT, WITHOUT ROWID;
CREATE UNIQUE INDEX transfers_reverses ON transfers (reverses) WHERE reverses IS NOT NULL;
INSERT INTO transfers SELECT * FROM ledger_rebuild_transfers ORDER BY rowid;
CREATE INDEX transfers_by_payment ON transfers (payment_id) WHERE payment_id <> '';
CREATE TRIGGER transfers_no_update BEFORE UPDATE ON transfers
BEGIN SELECT RAISE(ABORT, 'ledger: transfers are append-only'); END;
CREATE TRIGGER transfers_no_delete BEFORE DELETE ON transfers
BEGIN SELECT RAISE(ABORT, 'ledger: transfers are append-only'); END;

CREATE TABLE holds (
	key         TEXT PRIMARY KEY,
	debit       TEXT NOT NULL REFERENCES accounts (id),
	credit      TEXT NOT NULL REFERENCES accounts (id),
	amount      INTEGER NOT NULL CHECK (amount > 0),
	currency    TEXT NOT NULL,
	payment_id  TEXT NOT NULL DEFAULT '',
	kind        TEXT NOT NULL,
	state       TEXT NOT NULL CHECK ((state = 'pending' OR state = 'posted' OR state = 'voided')),
	transfer_id TEXT REFERENCES transfers (id),
	created_at  TEXT NOT NULL,
	updated_at  TEXT NOT NULL,
	CHECK (debit <> credit),
	CHECK ((state = 'posted') = (transfer_id IS NOT NULL))
) STRICT, WITHOUT ROWID;
CREATE UNIQUE INDEX holds_transfer ON holds (transfer_id) WHERE transfer_id IS NOT NULL;
INSERT INTO holds SELECT * FROM ledger_rebuild_holds;
CREATE INDEX holds_pending ON holds (debit) WHERE state = 'pending';
CREATE TRIGGER holds_settle_once BEFORE UPDATE ON holds
WHEN OLD.state <> 'pending' OR NEW.key <> OLD.key OR NEW.debit <> OLD.debit
	OR NEW.credit <> OLD.credit OR NEW.amount <> OLD.amount
BEGIN SELECT RAISE(ABORT, 'ledger: a hold is posted or voided once'); END;
CREATE TRIGGER holds_no_delete BEFORE DELETE ON holds
BEGIN SELECT RAISE(ABORT, 'ledger: holds are never deleted'); END;

DROP TABLE ledger_rebuild_accounts;
DROP TABLE ledger_rebuild_transfers;
DROP TABLE ledger_rebuild_holds;
`
