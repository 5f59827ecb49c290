package payswitch

import "github.com/payswitch/payswitch/store"

// Schema holds the engine's tables. Times are Unix microseconds (UTC) so that expiry
// sweeps and day windows compare integers.
//
// one_pending_per_number makes "a number has at most one payment waiting for its code" a
// fact of the schema, not only of the code path that checks it first.
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
`}}
