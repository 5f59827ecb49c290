package webhook

import "github.com/payswitch/payswitch/store"

// Schema holds the webhook tables. Times are Unix microseconds (UTC).
//
// webhook_endpoints: one per merchant; secret is sealed (seal.go), never in clear.
//
// webhook_events: the queue. An event is pending until a 2xx answers (delivered) or it
// is given up (failed). next_at is when a pending event is due (0: now); while a worker
// delivers it, lease holds the claim's deadline, which next_at repeats, so that an event
// whose worker died is due again when the lease runs out. UNIQUE (merchant_id, type,
// subject) is the idempotency key of Enqueue. seq is the row's key (events are inserted
// at the end of the table); id is the event ID merchants see.
//
// webhook_events_due serves the claim (pending events by due time). Migration 2 (below)
// gives the table its present form.
//
// webhook_deliveries: every failed attempt (and, before migration 2, every attempt),
// kept per merchant up to Config.KeepDeliveries.
var Schema = store.Schema{Component: "webhook", Migrations: []string{`
CREATE TABLE webhook_endpoints (
	merchant_id TEXT PRIMARY KEY,
	url         TEXT NOT NULL,
	secret      TEXT NOT NULL,
	updated_at  INTEGER NOT NULL
) STRICT;

CREATE TABLE webhook_events (
	seq         INTEGER PRIMARY KEY,
	id          TEXT NOT NULL UNIQUE,
	merchant_id TEXT NOT NULL,
	type        TEXT NOT NULL,
	subject     TEXT NOT NULL,
	body        TEXT NOT NULL,
	created_at  INTEGER NOT NULL,
	state       TEXT NOT NULL CHECK (state = 'pending' OR state = 'delivered' OR state = 'failed'),
	attempts    INTEGER NOT NULL DEFAULT 0,
	next_at     INTEGER NOT NULL DEFAULT 0,
	lease       INTEGER NOT NULL DEFAULT 0,
	last_status INTEGER NOT NULL DEFAULT 0,
	last_error  TEXT NOT NULL DEFAULT '',
	updated_at  INTEGER NOT NULL,
	UNIQUE (merchant_id, type, subject)
) STRICT;
CREATE INDEX webhook_events_due ON webhook_events (next_at) WHERE state = 'pending';
CREATE INDEX webhook_events_done ON webhook_events (updated_at) WHERE state <> 'pending';

CREATE TABLE webhook_deliveries (
	id          INTEGER PRIMARY KEY,
	merchant_id TEXT NOT NULL,
	event_id    TEXT NOT NULL,
	event_type  TEXT NOT NULL,
	attempt     INTEGER NOT NULL,
	at          INTEGER NOT NULL,
	status      INTEGER NOT NULL,
	error       TEXT NOT NULL DEFAULT '',
	duration    INTEGER NOT NULL
) STRICT;
CREATE INDEX webhook_deliveries_by_merchant ON webhook_deliveries (merchant_id, id);
`, migrationNarrowEvents}, Postgres: postgresMigrations}

// migrationNarrowEvents makes an event's life touch fewer B-tree pages on the store's one
// writer, which every payment shares: each page a commit dirties is written whole to the
// write-ahead log and again to the database at the checkpoint.
//
//   - An event's successful attempt is kept on the event's row (last_at, last_duration
//     beside last_status and attempts), not logged in webhook_deliveries: the log's
//     index by merchant put each delivery on another page. Deliveries reads both.
//   - The idempotency key is UNIQUE (subject, type, merchant_id): the subject (a payment
//     ID) sorts by time, so new keys land on the index's last page instead of on one
//     page per merchant. webhook_events_by_merchant (merchant_id, seq) is then the one
//     index by merchant, which a merchant's events and delivery log are read through.
//   - webhook_events_done is gone: the sweep finds old events by their ID, which sorts
//     by the time the event was made, so a delivered mark no longer moves the row into
//     an index.
//
// SQLite cannot change a table's UNIQUE constraint in place: the table is built again
// and its rows copied, once, at the upgrade.
const migrationNarrowEvents = `
CREATE TABLE webhook_events_new (
	seq           INTEGER PRIMARY KEY,
	id            TEXT NOT NULL UNIQUE,
	merchant_id   TEXT NOT NULL,
	type          TEXT NOT NULL,
	subject       TEXT NOT NULL,
	body          TEXT NOT NULL,
	created_at    INTEGER NOT NULL,
	state         TEXT NOT NULL CHECK (state = 'pending' OR state = 'delivered' OR state = 'failed'),
	attempts      INTEGER NOT NULL DEFAULT 0,
	next_at       INTEGER NOT NULL DEFAULT 0,
	lease         INTEGER NOT NULL DEFAULT 0,
	last_status   INTEGER NOT NULL DEFAULT 0,
	last_error    TEXT NOT NULL DEFAULT '',
	last_at       INTEGER NOT NULL DEFAULT 0,
	last_duration INTEGER NOT NULL DEFAULT 0,
	updated_at    INTEGER NOT NULL,
	UNIQUE (subject, type, merchant_id)
) STRICT;
INSERT INTO webhook_events_new (seq, id, merchant_id, type, subject, body, created_at, state, attempts, next_at,
	lease, last_status, last_error, updated_at)
	SELECT seq, id, merchant_id, type, subject, body, created_at, state, attempts, next_at,
	lease, last_status, last_error, updated_at FROM webhook_events;
DROP TABLE webhook_events;
ALTER TABLE webhook_events_new RENAME TO webhook_events;
CREATE INDEX webhook_events_due ON webhook_events (next_at) WHERE state = 'pending';
CREATE INDEX webhook_events_by_merchant ON webhook_events (merchant_id, seq);
`

// pending is the condition of the events in webhook_events_due, as its queries must
// write it for SQLite to use the index; finished is its converse.
const (
	pending  = `state = 'pending'`
	finished = `state <> 'pending'`
)
