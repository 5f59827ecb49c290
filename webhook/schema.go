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
// webhook_events_due serves the claim (pending events by due time); webhook_events_done
// lets the hourly sweep find finished events old enough to delete.
//
// webhook_deliveries: every attempt, kept per merchant up to Config.KeepDeliveries.
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
`}, Postgres: postgresMigrations}

// pending is the condition of the events in webhook_events_due, as its queries must
// write it for SQLite to use the index.
const pending = `state = 'pending'`
