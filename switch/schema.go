package payswitch

import "github.com/payswitch/payswitch/store"

// Schema holds the engine's tables. Times are Unix microseconds (UTC) so that expiry
// sweeps and day windows compare integers.
//
// one_pending_per_number makes "a number has at most one payment waiting for its code" a
// fact of the schema, not only of the code path that checks it first; and
// one_request_per_number (migration 5) the same of merchants' requests to pay.
var Schema = store.Schema{Component: "payments", Migrations: []string{`
CREATE TABLE payments (
	id            TEXT PRIMARY KEY,
	type          TEXT NOT NULL,
	channel       TEXT NOT NULL,
	state         TEXT NOT NULL,
	payer_msisdn  TEXT NOT NULL DEFAULT '',
	payer_account TEXT NOT NULL,
	payee_account TEXT NOT NULL,
	payee_name    TEXT NOT NULL DEFAULT '',
	payee_code    TEXT NOT NULL DEFAULT '',
	payee_msisdn  TEXT NOT NULL DEFAULT '',
	target_msisdn TEXT NOT NULL DEFAULT '',
	amount        INTEGER NOT NULL CHECK (amount > 0),
	currency      TEXT NOT NULL,
	reference     TEXT NOT NULL DEFAULT '',
	request_key   TEXT UNIQUE,
	reason        TEXT NOT NULL DEFAULT '',
	carrier       TEXT NOT NULL DEFAULT '',   -- airtime: the carrier crediting it
	transfer_id   TEXT NOT NULL DEFAULT '',   -- the ledger transfer that moved the money
	reversal_ref  TEXT UNIQUE,                -- the operator's reference of its reversal
	attempts      INTEGER NOT NULL DEFAULT 0, -- airtime: carrier calls made
	next_attempt_at INTEGER NOT NULL DEFAULT 0,
	expires_at    INTEGER NOT NULL DEFAULT 0,
	created_at    INTEGER NOT NULL,
	updated_at    INTEGER NOT NULL
) STRICT;
CREATE UNIQUE INDEX one_pending_per_number ON payments (payer_msisdn) WHERE state = 'pending_otp';
CREATE INDEX payments_pending_expiry ON payments (expires_at) WHERE state = 'pending_otp';
CREATE INDEX payments_by_payer ON payments (payer_msisdn, created_at);
CREATE INDEX payments_by_payee ON payments (payee_msisdn, created_at) WHERE payee_msisdn <> '';
CREATE INDEX payments_topup_due ON payments (next_attempt_at) WHERE state = 'topup_pending';

CREATE TABLE payment_events (
	seq        INTEGER PRIMARY KEY,
	payment_id TEXT NOT NULL REFERENCES payments (id),
	time       INTEGER NOT NULL,
	event      TEXT NOT NULL,
	from_state TEXT NOT NULL,
	to_state   TEXT NOT NULL,
	detail     TEXT NOT NULL DEFAULT ''
) STRICT;
CREATE INDEX payment_events_by_payment ON payment_events (payment_id, seq);

-- What each number has committed today (pending, topping up or completed), so that the
-- daily limit costs one lookup however many payments a number makes.
CREATE TABLE daily_totals (
	msisdn TEXT NOT NULL,
	day    INTEGER NOT NULL, -- Unix microseconds of the business day's midnight
	amount INTEGER NOT NULL CHECK (amount >= 0),
	PRIMARY KEY (msisdn, day)
) STRICT, WITHOUT ROWID;

-- Numbers locked after repeated wrong codes across payments. A lock ends by itself when
-- locked_until passes; wrong_codes counts within the window that started at window_start.
CREATE TABLE number_locks (
	msisdn       TEXT PRIMARY KEY,
	window_start INTEGER NOT NULL,
	wrong_codes  INTEGER NOT NULL,
	locked_until INTEGER NOT NULL
) STRICT, WITHOUT ROWID;
`, migration2, migration3, migration4, migration5, migration6,
	migrationRefunds, migrationKYC, migrationLock, migrationDecided}, Postgres: postgresMigrations}

// Migration 2 makes request_key and reversal_ref unique through partial indexes over the
// payments that have one, instead of UNIQUE columns: almost no payment has either, yet
// each UNIQUE column indexed a NULL for every payment, two B-tree inserts per payment on
// the store's one writer for nothing. A partial unique index over the non-NULL values
// allows exactly what the UNIQUE column allowed (any number of NULLs, each other value
// once), and a lookup by value (WHERE request_key = ?) uses it. The table stays a rowid
// table: as WITHOUT ROWID keyed by id it cost more than it saved (every read through
// another index then seeks the id as text, and each update rewrites the whole row).
//
// The table is rebuilt inside the migration's transaction, where foreign_keys cannot be
// turned off: copied to a scratch table with its rowids, dropped (which deletes its rows
// first, leaving payment_events without their payments: defer_foreign_keys lets that
// wait until commit), created anew and filled again from the copy, which finds every
// event's payment again. The indexes are dropped before, so that the drop does not
// update them row by row, and made again after. The copy is read in its own rowid
// order, which is the table's: ordering by rebuild_rowid would sort the whole table in
// memory (temp_store is MEMORY).
const migration2 = `
PRAGMA defer_foreign_keys = ON;

DROP INDEX one_pending_per_number;
DROP INDEX payments_pending_expiry;
DROP INDEX payments_by_payer;
DROP INDEX payments_by_payee;
DROP INDEX payments_topup_due;
CREATE TABLE payments_rebuild AS SELECT rowid AS rebuild_rowid, * FROM payments;
DROP TABLE payments;

CREATE TABLE payments (
	id            TEXT PRIMARY KEY,
	type          TEXT NOT NULL,
	channel       TEXT NOT NULL,
	state         TEXT NOT NULL,
	payer_msisdn  TEXT NOT NULL DEFAULT '',
	payer_account TEXT NOT NULL,
	payee_account TEXT NOT NULL,
	payee_name    TEXT NOT NULL DEFAULT '',
	payee_code    TEXT NOT NULL DEFAULT '',
	payee_msisdn  TEXT NOT NULL DEFAULT '',
	target_msisdn TEXT NOT NULL DEFAULT '',
	amount        INTEGER NOT NULL CHECK (amount > 0),
	currency      TEXT NOT NULL,
	reference     TEXT NOT NULL DEFAULT '',
	request_key   TEXT,                       -- unique: payments_request_key
	reason        TEXT NOT NULL DEFAULT '',
	carrier       TEXT NOT NULL DEFAULT '',   -- airtime: the carrier crediting it
	transfer_id   TEXT NOT NULL DEFAULT '',   -- the ledger transfer that moved the money
	reversal_ref  TEXT,                       -- the operator's reference of its reversal; unique: payments_reversal_ref
	attempts      INTEGER NOT NULL DEFAULT 0, -- airtime: carrier calls made
	next_attempt_at INTEGER NOT NULL DEFAULT 0,
	expires_at    INTEGER NOT NULL DEFAULT 0,
	created_at    INTEGER NOT NULL,
	updated_at    INTEGER NOT NULL
) STRICT;
INSERT INTO payments (rowid, id, type, channel, state, payer_msisdn, payer_account, payee_account, payee_name,
		payee_code, payee_msisdn, target_msisdn, amount, currency, reference, request_key, reason, carrier,
		transfer_id, reversal_ref, attempts, next_attempt_at, expires_at, created_at, updated_at)
	SELECT rebuild_rowid, id, type, channel, state, payer_msisdn, payer_account, payee_account, payee_name,
		payee_code, payee_msisdn, target_msisdn, amount, currency, reference, request_key, reason, carrier,
		transfer_id, reversal_ref, attempts, next_attempt_at, expires_at, created_at, updated_at
	FROM payments_rebuild ORDER BY rowid;
DROP TABLE payments_rebuild;

CREATE UNIQUE INDEX payments_request_key ON payments (request_key) WHERE request_key IS NOT NULL;
CREATE UNIQUE INDEX payments_reversal_ref ON payments (reversal_ref) WHERE reversal_ref IS NOT NULL;
CREATE UNIQUE INDEX one_pending_per_number ON payments (payer_msisdn) WHERE state = 'pending_otp';
CREATE INDEX payments_pending_expiry ON payments (expires_at) WHERE state = 'pending_otp';
CREATE INDEX payments_by_payer ON payments (payer_msisdn, created_at);
CREATE INDEX payments_by_payee ON payments (payee_msisdn, created_at) WHERE payee_msisdn <> '';
CREATE INDEX payments_topup_due ON payments (next_attempt_at) WHERE state = 'topup_pending';
`

// Migration 3 counts the wrong codes that each callback origin (a USSD or IVR gateway's
// address, see WithOrigin) delivered for a number within the lock window that started
// at window_start: an origin may count only so many against the number's lock
// (Fraud.WrongCodesPerOrigin).
const migration3 = `
CREATE TABLE origin_wrong_codes (
	msisdn       TEXT NOT NULL,
	origin       TEXT NOT NULL,
	window_start INTEGER NOT NULL,
	wrong_codes  INTEGER NOT NULL,
	PRIMARY KEY (msisdn, origin)
) STRICT, WITHOUT ROWID;
`

// Migration 4 keeps the history of operators' changes of accounts (a freeze, a
// reactivation): who, why, from what to what and when, written in the same transaction
// as the change itself. The ledger keeps only an account's present status.
const migration4 = `
CREATE TABLE account_changes (
	id         INTEGER PRIMARY KEY,
	account_id TEXT NOT NULL,
	field      TEXT NOT NULL,  -- 'status'
	old_value  TEXT NOT NULL,
	new_value  TEXT NOT NULL,
	reason     TEXT NOT NULL,
	actor      TEXT NOT NULL,  -- the operator's token name
	at         INTEGER NOT NULL
) STRICT;
CREATE INDEX account_changes_by_account ON account_changes (account_id, id);
`

// Migration 5 is contract section 10, merchants' requests to pay and products:
//   - payments.description, the merchant's words about a request;
//   - one_request_per_number: a number has at most one request waiting for its code
//     (state requested), beside its own payment (one_pending_per_number), and the
//     requests' expiry index for the sweeper;
//   - payment_items: what a payment bought (a BUY, a request with items), with the name
//     and unit price when bought, so that a later change of the catalogue changes no
//     past payment;
//   - request_stops: the merchants a number refused all further requests from (STOP),
//     at most maxStopsPerNumber a number;
//   - request_counts: the requests a merchant sent in its current minute, and a number
//     received in its current business day (subject 'merchant:<account id>' or
//     'number:<msisdn>'), one row a subject overwritten when its window moves on, so
//     that the rate limits hold across restarts (and several nodes) and the table holds
//     no more rows than there are accounts.
const migration5 = `
ALTER TABLE payments ADD COLUMN description TEXT NOT NULL DEFAULT '';
CREATE UNIQUE INDEX one_request_per_number ON payments (payer_msisdn) WHERE state = 'requested';
CREATE INDEX payments_requested_expiry ON payments (expires_at) WHERE state = 'requested';
-- A merchant's payments, newest first in keyset pages (Engine.MerchantPayments).
CREATE INDEX payments_by_payee_account ON payments (payee_account, created_at, id);

CREATE TABLE payment_items (
	payment_id TEXT NOT NULL REFERENCES payments (id),
	line       INTEGER NOT NULL,  -- 0, 1, ... in the order asked for
	product    TEXT NOT NULL,     -- the merchant's product code
	name       TEXT NOT NULL,
	quantity   INTEGER NOT NULL CHECK (quantity > 0),
	price      INTEGER NOT NULL CHECK (price > 0), -- unit price, minor units
	PRIMARY KEY (payment_id, line)
) STRICT, WITHOUT ROWID;

CREATE TABLE request_stops (
	msisdn   TEXT NOT NULL,
	merchant TEXT NOT NULL,       -- the merchant's account id
	at       INTEGER NOT NULL,
	PRIMARY KEY (msisdn, merchant)
) STRICT, WITHOUT ROWID;

CREATE TABLE request_counts (
	subject      TEXT PRIMARY KEY,
	window_start INTEGER NOT NULL, -- Unix µs: the minute's or the business day's start
	count        INTEGER NOT NULL CHECK (count >= 0)
) STRICT, WITHOUT ROWID;
`

// Migration 6 is contract section 11, merchants' stores, refunds and guaranteed payments,
// on the payment itself:
//   - store: the store whose till was paid (” for the merchant's own code);
//   - refunded: what refunds gave back so far, never more than amount (the CHECK is the
//     schema's last word on it; the refunds themselves are in the refunds table);
//   - escrow, release_at: a guaranteed payment, and when one in escrow is released by
//     itself (payments_escrow_due is the release sweeper's index).
const migration6 = `
ALTER TABLE payments ADD COLUMN store TEXT NOT NULL DEFAULT '';
ALTER TABLE payments ADD COLUMN refunded INTEGER NOT NULL DEFAULT 0 CHECK (refunded >= 0 AND refunded <= amount);
ALTER TABLE payments ADD COLUMN escrow INTEGER NOT NULL DEFAULT 0 CHECK (escrow IN (0, 1));
ALTER TABLE payments ADD COLUMN release_at INTEGER NOT NULL DEFAULT 0;
CREATE INDEX payments_escrow_due ON payments (release_at) WHERE state = 'in_escrow';
`

// migrationKYC is contract section 14 (tiers, fees, risk):
//   - wallet_kyc: a wallet's tier and the keyed digest of its id number (recorded at
//     tier 2, never the number itself); a wallet without a row is at DefaultTier;
//   - payments.fee: what the payer pays on top of amount, fixed when requested;
//   - payments.risk, risk_rules: the request's risk grade and the rules that fired.
const migrationKYC = `
CREATE TABLE wallet_kyc (
	account_id TEXT PRIMARY KEY,
	tier       INTEGER NOT NULL CHECK (tier IN (0, 1, 2)),
	id_digest  TEXT NOT NULL DEFAULT '',
	updated_at INTEGER NOT NULL
) STRICT, WITHOUT ROWID;
ALTER TABLE payments ADD COLUMN fee INTEGER NOT NULL DEFAULT 0 CHECK (fee >= 0);
ALTER TABLE payments ADD COLUMN risk TEXT NOT NULL DEFAULT '';
ALTER TABLE payments ADD COLUMN risk_rules TEXT NOT NULL DEFAULT '';
`

// migrationLock is contract section 14's LOCK: lock_attempts counts LOCK attempts in a
// window that starts at the first one, one row a subject ('sender:<msisdn>' for every
// attempt a number sends, 'wallet:<msisdn>' for the wrong id numbers given for a wallet
// that exists, 'senders' for the senders new in the window, which caps the rows), each
// overwritten when its window has passed and deleted by the next LOCK after that
// (lock_attempts_expiry).
const migrationLock = `
CREATE TABLE lock_attempts (
	subject      TEXT PRIMARY KEY,
	window_start INTEGER NOT NULL, -- Unix µs of the window's first attempt
	count        INTEGER NOT NULL CHECK (count >= 0)
) STRICT, WITHOUT ROWID;
CREATE INDEX lock_attempts_expiry ON lock_attempts (window_start);
`
