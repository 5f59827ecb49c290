package ledger

// postgresMigrations are the ledger's tables on PostgreSQL (Schema.Postgres): the same
// tables, columns, constraints and triggers as SQLite's after its migration 4, plus the
// journal's head (ledger_head). Amounts are BIGINT; times and hashes stay text, because
// entry hashes cover the time exactly as stored and the export publishes both as text.
//
// ledger_head is one row, the journal's last seq, time and hash. Every transaction that
// appends entries locks it (SELECT ... FOR UPDATE) after its checks and updates it with
// its last entry, so appends happen one at a time in the order their transactions
// commit: the next appender waits for the lock, then reads the head as committed. That
// keeps seqs gapless and each entry chained to the one committed before it, which
// neither a sequence (gaps on rollback, numbers handed out in another order than
// commits) nor "the largest seq" read without a lock (two transactions chaining to the
// same entry) would. The cost is that appends serialise, from the head's lock to commit.
var postgresMigrations = []string{`
CREATE TABLE accounts (
	id              TEXT COLLATE "C" PRIMARY KEY,
	type            TEXT COLLATE "C" NOT NULL CHECK (type IN ('wallet', 'merchant', 'agent', 'cash', 'fees', 'airtime_clearing', 'settlement')),
	currency        TEXT COLLATE "C" NOT NULL CHECK (length(currency) = 3),
	name            TEXT COLLATE "C" NOT NULL DEFAULT '',
	msisdn          TEXT COLLATE "C" UNIQUE,
	code            TEXT COLLATE "C" UNIQUE,
	status          TEXT COLLATE "C" NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'frozen', 'closed')),
	created_at      TEXT COLLATE "C" NOT NULL,
	debits_posted   BIGINT NOT NULL DEFAULT 0 CHECK (debits_posted >= 0),
	credits_posted  BIGINT NOT NULL DEFAULT 0 CHECK (credits_posted >= 0),
	debits_pending  BIGINT NOT NULL DEFAULT 0 CHECK (debits_pending >= 0),
	credits_pending BIGINT NOT NULL DEFAULT 0 CHECK (credits_pending >= 0),
	CHECK (type IN ('cash', 'fees', 'airtime_clearing', 'settlement')
		OR credits_posted - debits_posted - debits_pending >= 0),
	CHECK (type IN ('wallet', 'merchant', 'agent') OR status = 'active')
);

CREATE TABLE transfers (
	id         TEXT COLLATE "C" PRIMARY KEY,
	key        TEXT COLLATE "C" NOT NULL UNIQUE,
	debit      TEXT COLLATE "C" NOT NULL REFERENCES accounts (id),
	credit     TEXT COLLATE "C" NOT NULL REFERENCES accounts (id),
	amount     BIGINT NOT NULL CHECK (amount > 0),
	currency   TEXT COLLATE "C" NOT NULL,
	payment_id TEXT COLLATE "C" NOT NULL DEFAULT '',
	kind       TEXT COLLATE "C" NOT NULL,
	reverses   TEXT COLLATE "C" REFERENCES transfers (id),
	time       TEXT COLLATE "C" NOT NULL,
	CHECK (debit <> credit)
);
CREATE UNIQUE INDEX transfers_reverses ON transfers (reverses) WHERE reverses IS NOT NULL;
CREATE INDEX transfers_by_payment ON transfers (payment_id) WHERE payment_id <> '';

CREATE TABLE entries (
	seq           BIGINT PRIMARY KEY,
	time          TEXT COLLATE "C" NOT NULL,
	transfer_id   TEXT COLLATE "C" NOT NULL REFERENCES transfers (id),
	payment_id    TEXT COLLATE "C" NOT NULL,
	account_id    TEXT COLLATE "C" NOT NULL REFERENCES accounts (id),
	direction     TEXT COLLATE "C" NOT NULL CHECK (direction IN ('D', 'C')),
	amount        BIGINT NOT NULL CHECK (amount > 0),
	currency      TEXT COLLATE "C" NOT NULL,
	balance_after BIGINT NOT NULL,
	prev_hash     TEXT COLLATE "C" NOT NULL,
	hash          TEXT COLLATE "C" NOT NULL
);
CREATE INDEX entries_by_account ON entries (account_id, seq);
CREATE UNIQUE INDEX entries_one_per_side ON entries (transfer_id, direction);

CREATE TABLE holds (
	key         TEXT COLLATE "C" PRIMARY KEY,
	debit       TEXT COLLATE "C" NOT NULL REFERENCES accounts (id),
	credit      TEXT COLLATE "C" NOT NULL REFERENCES accounts (id),
	amount      BIGINT NOT NULL CHECK (amount > 0),
	currency    TEXT COLLATE "C" NOT NULL,
	payment_id  TEXT COLLATE "C" NOT NULL DEFAULT '',
	kind        TEXT COLLATE "C" NOT NULL,
	state       TEXT COLLATE "C" NOT NULL CHECK (state IN ('pending', 'posted', 'voided')),
	transfer_id TEXT COLLATE "C" REFERENCES transfers (id),
	created_at  TEXT COLLATE "C" NOT NULL,
	updated_at  TEXT COLLATE "C" NOT NULL,
	CHECK (debit <> credit),
	CHECK ((state = 'posted') = (transfer_id IS NOT NULL))
);
CREATE UNIQUE INDEX holds_transfer ON holds (transfer_id) WHERE transfer_id IS NOT NULL;
CREATE INDEX holds_pending ON holds (debit) WHERE state = 'pending';

CREATE TABLE ledger_head (
	one  BOOLEAN PRIMARY KEY DEFAULT TRUE CHECK (one),
	seq  BIGINT NOT NULL,
	time TEXT COLLATE "C" NOT NULL,
	hash TEXT COLLATE "C" NOT NULL
);
INSERT INTO ledger_head (seq, time, hash) VALUES (0, '', '` + GenesisHash + `');

CREATE FUNCTION ledger_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	RAISE EXCEPTION 'ledger: % are append-only', TG_TABLE_NAME;
END $$;
CREATE TRIGGER entries_no_update BEFORE UPDATE ON entries FOR EACH ROW EXECUTE FUNCTION ledger_append_only();
CREATE TRIGGER entries_no_delete BEFORE DELETE ON entries FOR EACH ROW EXECUTE FUNCTION ledger_append_only();
CREATE TRIGGER entries_no_truncate BEFORE TRUNCATE ON entries FOR EACH STATEMENT EXECUTE FUNCTION ledger_append_only();
CREATE TRIGGER transfers_no_update BEFORE UPDATE ON transfers FOR EACH ROW EXECUTE FUNCTION ledger_append_only();
CREATE TRIGGER transfers_no_delete BEFORE DELETE ON transfers FOR EACH ROW EXECUTE FUNCTION ledger_append_only();
CREATE TRIGGER transfers_no_truncate BEFORE TRUNCATE ON transfers FOR EACH STATEMENT EXECUTE FUNCTION ledger_append_only();

CREATE FUNCTION ledger_hold_settles_once() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	IF OLD.state <> 'pending' OR NEW.key <> OLD.key OR NEW.debit <> OLD.debit
		OR NEW.credit <> OLD.credit OR NEW.amount <> OLD.amount THEN
		RAISE EXCEPTION 'ledger: a hold is posted or voided once';
	END IF;
	RETURN NEW;
END $$;
CREATE TRIGGER holds_settle_once BEFORE UPDATE ON holds FOR EACH ROW EXECUTE FUNCTION ledger_hold_settles_once();
CREATE FUNCTION ledger_holds_kept() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	RAISE EXCEPTION 'ledger: holds are never deleted';
END $$;
CREATE TRIGGER holds_no_delete BEFORE DELETE ON holds FOR EACH ROW EXECUTE FUNCTION ledger_holds_kept();
CREATE TRIGGER holds_no_truncate BEFORE TRUNCATE ON holds FOR EACH STATEMENT EXECUTE FUNCTION ledger_holds_kept();
`, postgresMigrationEscrow, migrationNoPendingIndex}

// postgresMigrationEscrow admits the escrow account type, as SQLite's migrationEscrow
// does. The type CHECK was a column constraint without a name of its own, so PostgreSQL
// named it accounts_type_check; it is replaced by one that also allows escrow, under the
// same name. The other two CHECKs already hold escrow to what they should (never below
// zero, always active).
const postgresMigrationEscrow = `
ALTER TABLE accounts DROP CONSTRAINT accounts_type_check;
ALTER TABLE accounts ADD CONSTRAINT accounts_type_check
	CHECK (type IN ('wallet', 'merchant', 'agent', 'cash', 'fees', 'airtime_clearing', 'settlement', 'escrow'));
`
