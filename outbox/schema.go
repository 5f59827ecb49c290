package outbox

import (
	"github.com/payswitch/payswitch/store"
)

// Schema holds the outbox's tables. Times are Unix microseconds (UTC); 0 in
// next_attempt_at means "due now", so a message is due whatever clock the worker uses.
//
// messages_due serves Claim: it holds the messages still to send (migration 4), queued
// ones waiting for next_attempt_at and sending ones for their lease deadline, which
// lives in the same column. message_parts maps each part's
// SMSC message ID on a link back to its message for delivery receipts, for the messages
// that can get them (see MarkSent); early_receipts keeps a receipt that overtook
// MarkSent (a deliver_sm can arrive before the worker has recorded the submit_sm_resp)
// until MarkSent applies it. sealed marks a text encrypted by Outbox.Enqueue (see
// NewSealed).
var Schema = store.Schema{Component: "outbox", Migrations: []string{`
CREATE TABLE messages (
	id              INTEGER PRIMARY KEY,
	kind            TEXT NOT NULL CHECK (kind IN ('sms', 'call')),
	to_addr         TEXT NOT NULL,
	from_addr       TEXT NOT NULL DEFAULT '',
	text            TEXT NOT NULL DEFAULT '',
	payment_id      TEXT NOT NULL DEFAULT '',
	purpose         TEXT NOT NULL DEFAULT '',
	meta            TEXT NOT NULL DEFAULT '',
	request_receipt INTEGER NOT NULL DEFAULT 0,
	state           TEXT NOT NULL CHECK (state IN ('queued', 'sending', 'sent', 'delivered', 'undeliverable', 'failed')),
	attempts        INTEGER NOT NULL DEFAULT 0,
	next_attempt_at INTEGER NOT NULL DEFAULT 0,
	created_at      INTEGER NOT NULL,
	updated_at      INTEGER NOT NULL,
	last_error      TEXT NOT NULL DEFAULT '',
	link            TEXT NOT NULL DEFAULT '',
	message_ids     TEXT NOT NULL DEFAULT '',
	sealed          INTEGER NOT NULL DEFAULT 0
) STRICT;
CREATE INDEX messages_due ON messages (state, next_attempt_at);
CREATE INDEX messages_by_to ON messages (to_addr, id);
CREATE INDEX messages_by_payment ON messages (payment_id) WHERE payment_id <> '';

CREATE TABLE message_parts (
	link       TEXT NOT NULL,
	message_id TEXT NOT NULL,
	outbox_id  INTEGER NOT NULL REFERENCES messages (id),
	part       INTEGER NOT NULL,
	status     TEXT NOT NULL DEFAULT '',
	PRIMARY KEY (link, message_id)
) STRICT, WITHOUT ROWID;
CREATE INDEX message_parts_by_outbox ON message_parts (outbox_id, part);

CREATE TABLE early_receipts (
	link        TEXT NOT NULL,
	message_id  TEXT NOT NULL,
	status      TEXT NOT NULL,
	received_at INTEGER NOT NULL,
	PRIMARY KEY (link, message_id)
) STRICT, WITHOUT ROWID;
`,
	// Migration 2 writes the state CHECK with OR instead of an IN list, which SQLite
	// evaluated by building a temporary B-tree every time a message changed state
	// (store.InAsOr says more), and drops messages_by_payment, which no query uses.
	store.EditTableSQL("messages",
		store.InAsOr(`state IN ('queued', 'sending', 'sent', 'delivered', 'undeliverable', 'failed')`)) + `
DROP INDEX messages_by_payment;`,
	// Migration 3 indexes early receipts by age: every unknown receipt first deletes
	// those older than a day, which read the whole table. Since MarkSent records no
	// parts for an SMS that asked for no receipt, an SMSC that sends receipts for every
	// message anyway fills the table with a day of them, and each one then scanned it.
	`CREATE INDEX early_receipts_by_age ON early_receipts (received_at);`,
	// Migration 4 keeps in messages_due only the messages still to send, queued or
	// sending (under a lease), which are all that Claim, readClaim and ReleaseClaims look
	// for. The index held an entry for every message ever sent, and every change of
	// state (sent, delivered, undeliverable) moved that entry on the store's writer; now
	// MarkSent takes a message out of it and receipts touch no index. Keyed on
	// next_attempt_at alone (the id follows), the index is in Claim's order, so a claim
	// reads the messages it takes and stops, where it read every due message of both
	// states and sorted them. messages_failed (by when they failed) lets Unsent count
	// the failed messages without reading the table; they are few, so it costs a write
	// only when Fail gives up on one. A query must write the condition as the index
	// does (due), or one that implies it (state = 'sending'), for SQLite to use it.
	`DROP INDEX messages_due;
CREATE INDEX messages_due ON messages (next_attempt_at) WHERE state = 'queued' OR state = 'sending';
CREATE INDEX messages_failed ON messages (updated_at) WHERE state = 'failed';`,
	// Migration 5 indexes recipients for calls only. Calls looks a number's calls up
	// (every callback of an outbound call does); nothing in the switch looks SMS up by
	// recipient, yet every SMS paid for an entry in messages_by_to, on a page of its
	// own for each number: a page more for the store's writer to change and write to
	// the WAL for every SMS sent.
	`DROP INDEX messages_by_to;
CREATE INDEX calls_by_to ON messages (to_addr, id) WHERE kind = 'call';`,
}, Postgres: postgresMigrations}

// due is the condition of the messages in messages_due (migration 4), as its queries
// must write it for SQLite to see that the index holds every row they look for.
const due = `(state = 'queued' OR state = 'sending')`
