// Package outbox is the durable queue of everything the switch sends: SMS, and requests
// for outbound voice calls.
//
// A message is written with Enqueue inside the same store transaction as the state change
// that causes it, so a committed payment always has its messages and a rolled-back one
// has none. A channel worker (the SMPP sender, the voice gateway client) then takes due
// messages with Claim, which leases them for a while, and reports back with MarkSent,
// Retry or Fail. A worker that dies holding a lease loses it when the lease runs out and
// the message is claimed again: delivery is at least once.
//
// States: queued -> sending -> sent -> delivered | undeliverable, with sending -> queued
// on Retry and queued|sending -> failed on Fail. While a message is sending,
// NextAttemptAt holds its lease deadline.
package outbox

import (
	"cmp"
	"context"
	"crypto/cipher"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"time"

	"github.com/payswitch/payswitch/store"
)

// Errors returned by outbox.
var (
	// ErrInvalid: Enqueue got a message without a valid kind, recipient or text.
	ErrInvalid = errors.New("outbox: invalid message")
	// ErrNotFound: no message has that ID.
	ErrNotFound = errors.New("outbox: no such message")
	// ErrState: Retry of a message that is not sending, or Fail of one already sent.
	ErrState = errors.New("outbox: message is not in a state that allows this")
)

// Message kinds.
const (
	KindSMS  = "sms"
	KindCall = "call"
)

// Message states.
const (
	StateQueued        = "queued"
	StateSending       = "sending"
	StateSent          = "sent"
	StateDelivered     = "delivered"
	StateUndeliverable = "undeliverable"
	StateFailed        = "failed"
)

// States lists every state, in lifecycle order; Stats reports each of them.
var States = []string{StateQueued, StateSending, StateSent, StateDelivered, StateUndeliverable, StateFailed}

// Schema holds the outbox's tables. Times are Unix microseconds (UTC); 0 in
// next_attempt_at means "due now", so a message is due whatever clock the worker uses.
//
// messages_due serves Claim: queued messages wait for next_attempt_at, sending ones for
// their lease deadline, which lives in the same column. message_parts maps each part's
// SMSC message ID on a link back to its message for delivery receipts; early_receipts
// keeps a receipt that overtook MarkSent (a deliver_sm can arrive before the worker has
// recorded the submit_sm_resp) until MarkSent applies it. sealed marks a text encrypted
// by Outbox.Enqueue (see NewSealed).
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
`}}

// Message is one thing to send. Fields after Meta are the outbox's bookkeeping: Enqueue
// ignores them except CreatedAt and NextAttemptAt (zero: now).
type Message struct {
	ID   int64
	Kind string // KindSMS or KindCall; "" means KindSMS
	// To is the recipient's number; From the sender (empty: the channel's default, the
	// shortcode for SMS). Text is the message (SMS) or the script hint (call).
	To, From, Text string
	// PaymentID links the message to a payment; Purpose says why it is sent: "otp",
	// "receipt", "notice", "reply", "reversal", ...
	PaymentID, Purpose string
	// Meta carries channel details, e.g. USSD session information. It is stored as JSON;
	// nil and an empty map both read back as nil.
	Meta map[string]string

	State    string
	Attempts int // claims so far, counting the current one
	// NextAttemptAt is when a queued message is due (zero: now) or, while sending, when
	// its lease runs out.
	NextAttemptAt, CreatedAt time.Time
	LastError                string
	// Link is the SMPP link (or gateway) it went out on; MessageIDs are the SMSC's IDs of
	// its parts, in order.
	Link       string
	MessageIDs []string
	// RequestReceipt asks the worker to request a delivery receipt for each part.
	RequestReceipt bool
}

// Enqueue adds m as a queued message inside tx, the caller's store.Write, and returns its
// ID. Call Kick on the Outbox after the Write returns so a waiting worker wakes up.
// It checks that Kind is sms or call, To is a phone number (digits, optional leading
// '+') and an SMS has text. The text is stored as given; Outbox.Enqueue can seal it.
func Enqueue(ctx context.Context, tx *sql.Tx, m Message) (int64, error) {
	return enqueue(ctx, tx, m, nil)
}

// Enqueue is the package's Enqueue, except that an Outbox made by NewSealed stores the
// text of a one-time-code message (Purpose "otp") encrypted, so the code is never in
// the database in clear.
func (o *Outbox) Enqueue(ctx context.Context, tx *sql.Tx, m Message) (int64, error) {
	if o.aead == nil {
		return enqueue(ctx, tx, m, nil)
	}
	return enqueue(ctx, tx, m, o.sealText)
}

func enqueue(ctx context.Context, tx *sql.Tx, m Message, seal func(Message) (string, error)) (int64, error) {
	if m.Kind == "" {
		m.Kind = KindSMS
	}
	if err := validate(m); err != nil {
		return 0, err
	}
	meta := ""
	if len(m.Meta) > 0 {
		b, err := json.Marshal(m.Meta)
		if err != nil {
			return 0, fmt.Errorf("outbox: meta: %w", err)
		}
		meta = string(b)
	}
	text, sealed := m.Text, false
	if seal != nil && sealable(m) {
		var err error
		if text, err = seal(m); err != nil {
			return 0, err
		}
		sealed = true
	}
	created := m.CreatedAt
	if created.IsZero() {
		created = time.Now()
	}
	res, err := tx.ExecContext(ctx, `INSERT INTO messages (kind, to_addr, from_addr, text, payment_id, purpose,
		meta, request_receipt, state, next_attempt_at, created_at, updated_at, sealed)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'queued', ?, ?, ?, ?)`,
		m.Kind, m.To, m.From, text, m.PaymentID, m.Purpose, meta, m.RequestReceipt,
		micros(m.NextAttemptAt), micros(created), micros(created), sealed)
	if err != nil {
		return 0, fmt.Errorf("outbox: enqueue %s to %s: %w", m.Kind, mask(m.To), err)
	}
	return res.LastInsertId()
}

func validate(m Message) error {
	if m.Kind != KindSMS && m.Kind != KindCall {
		return fmt.Errorf("%w: kind %q: want sms or call", ErrInvalid, m.Kind)
	}
	to := strings.TrimPrefix(m.To, "+")
	if len(to) < 3 || len(to) > 20 || strings.Trim(to, "0123456789") != "" {
		return fmt.Errorf("%w: recipient %q is not a phone number", ErrInvalid, mask(m.To))
	}
	if m.Kind == KindSMS && m.Text == "" {
		return fmt.Errorf("%w: sms to %s has no text", ErrInvalid, mask(m.To))
	}
	return nil
}

// Outbox is the worker side of the queue. It is safe for concurrent use.
type Outbox struct {
	db   *store.DB
	w    batcher // every write of the worker side goes through it
	now  func() time.Time
	wake chan struct{} // buffered 1: Kicks between two Waits coalesce
	aead cipher.AEAD   // seals one-time-code texts; nil: texts are stored as given
}

// New returns the Outbox over db; now is the clock for due times and leases (nil:
// time.Now). Its Enqueue stores texts as given; see NewSealed.
func New(db *store.DB, now func() time.Time) *Outbox {
	if now == nil {
		now = time.Now
	}
	return &Outbox{db: db, w: batcher{db: db}, now: now, wake: make(chan struct{}, 1)}
}

// Kick tells workers there is something new. It never blocks; Kicks that nobody has
// received yet collapse into one.
func (o *Outbox) Kick() {
	select {
	case o.wake <- struct{}{}:
	default:
	}
}

// Wait is signalled after Kick. Workers select on it together with a timer for retries
// whose time has come, since Retry does not Kick.
func (o *Outbox) Wait() <-chan struct{} { return o.wake }

// messageCols lists the columns scanMessage reads, in order.
const messageCols = `id, kind, to_addr, from_addr, text, payment_id, purpose, meta, request_receipt, state,
	attempts, next_attempt_at, created_at, last_error, link, message_ids, sealed`

type scanner interface{ Scan(dest ...any) error }

// scanMessage reads a row of messageCols. A sealed text stays sealed: see reveal.
func scanMessage(s scanner) (m Message, sealed bool, err error) {
	var meta, ids string
	var next, created int64
	err = s.Scan(&m.ID, &m.Kind, &m.To, &m.From, &m.Text, &m.PaymentID, &m.Purpose, &meta, &m.RequestReceipt,
		&m.State, &m.Attempts, &next, &created, &m.LastError, &m.Link, &ids, &sealed)
	if err != nil {
		return Message{}, false, err
	}
	m.NextAttemptAt, m.CreatedAt = fromMicros(next), fromMicros(created)
	if meta != "" {
		if err := json.Unmarshal([]byte(meta), &m.Meta); err != nil {
			return Message{}, false, fmt.Errorf("outbox: message %d meta: %w", m.ID, err)
		}
	}
	if ids != "" {
		if err := json.Unmarshal([]byte(ids), &m.MessageIDs); err != nil {
			return Message{}, false, fmt.Errorf("outbox: message %d ids: %w", m.ID, err)
		}
	}
	return m, sealed, nil
}

// reveal opens m's text if it was stored sealed. If it cannot, the text reads
// "[sealed]" and the error wraps ErrSealed.
func (o *Outbox) reveal(m *Message, sealed bool) error {
	if !sealed {
		return nil
	}
	return o.openText(m)
}

// ReleaseClaims hands back, due now, every message a worker had claimed (state sending).
// A switch calls it as it starts, before its workers run: the claims it finds were made
// by a process that died, and their leases would otherwise hold those messages (codes,
// receipts) back until they ran out. Only one process may deliver from a database at a
// time for this to be right; serve makes sure of that with a lock.
func (o *Outbox) ReleaseClaims(ctx context.Context) (int64, error) {
	var n int64
	now := micros(o.now())
	err := o.db.Write(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE messages SET state = 'queued', next_attempt_at = ?, updated_at = ?
			WHERE state = 'sending'`, now, now)
		if err != nil {
			return fmt.Errorf("outbox: release claims: %w", err)
		}
		n, err = res.RowsAffected()
		return err
	})
	return n, err
}

// Claim leases up to limit due messages of kind ("" = any kind) for lease: queued ones
// whose NextAttemptAt has come and sending ones whose lease has run out (their worker
// died). They come back marked sending, with Attempts counting this claim and
// NextAttemptAt the lease deadline, oldest first. Claims are serialized by the store's
// single writer, so two workers never get the same message while its lease holds.
func (o *Outbox) Claim(ctx context.Context, kind string, limit int, lease time.Duration) ([]Message, error) {
	if lease <= 0 {
		return nil, fmt.Errorf("outbox: claim: lease %v: want > 0", lease)
	}
	limit = max(limit, 1)
	now := o.now()
	var claimed []Message
	err := o.w.do(ctx, func(tx *sql.Tx) error {
		claimed = nil
		rows, err := tx.QueryContext(ctx, `UPDATE messages
			SET state = 'sending', attempts = attempts + 1, next_attempt_at = ?, updated_at = ?
			WHERE id IN (SELECT id FROM messages
				WHERE state IN ('queued', 'sending') AND next_attempt_at <= ? AND (? = '' OR kind = ?)
				ORDER BY next_attempt_at, id LIMIT ?)
			RETURNING `+messageCols,
			micros(now.Add(lease)), micros(now), micros(now), kind, kind, limit)
		if err != nil {
			return err
		}
		var broken []Message
		for rows.Next() {
			m, sealed, err := scanMessage(rows)
			if err != nil {
				rows.Close()
				return err
			}
			if err := o.reveal(&m, sealed); err != nil {
				m.LastError = err.Error()
				broken = append(broken, m)
				continue
			}
			claimed = append(claimed, m)
		}
		if err := rows.Close(); err != nil {
			return err
		}
		if err := rows.Err(); err != nil {
			return err
		}
		// A text nobody can open will never be sent; retrying it would only block others.
		for _, m := range broken {
			if _, err := tx.ExecContext(ctx, `UPDATE messages SET state = 'failed', next_attempt_at = 0,
				last_error = ? WHERE id = ?`, m.LastError, m.ID); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("outbox: claim %s: %w", kind, err)
	}
	slices.SortFunc(claimed, func(a, b Message) int { return cmp.Compare(a.ID, b.ID) })
	return claimed, nil
}

// MarkSent records that message id went out on link with the SMSC's messageIDs, one per
// part, so that delivery receipts find it. It is accepted from any state: a worker whose
// lease ran out may still have sent the message, and then it was sent. IDs from a second
// MarkSent are added to the first's; a message already delivered or undeliverable keeps
// that state.
//
// Concurrent MarkSent, Receipt, Claim, Retry and Fail calls share store operations (see
// batcher); each still returns only once its own result is durable, with its own error.
func (o *Outbox) MarkSent(ctx context.Context, id int64, link string, messageIDs []string) error {
	now := micros(o.now())
	parts := partIDs(messageIDs)
	if err := o.w.do(ctx, func(tx *sql.Tx) error { return markSent(ctx, tx, id, link, parts, now) }); err != nil {
		return fmt.Errorf("outbox: mark %d sent: %w", id, err)
	}
	return nil
}

// partIDs returns ids without empty and repeated ones, in order.
func partIDs(ids []string) []string {
	out := make([]string, 0, len(ids))
	for _, id := range ids {
		if id != "" && !slices.Contains(out, id) {
			out = append(out, id)
		}
	}
	return out
}

// idsText is how message_ids stores ids: JSON, or "" for none.
func idsText(ids []string) string {
	if len(ids) == 0 {
		return ""
	}
	b, _ := json.Marshal(ids)
	return string(b)
}

// markSent is MarkSent's write; parts are the new IDs, as partIDs returns them.
func markSent(ctx context.Context, tx *sql.Tx, id int64, link string, parts []string, now int64) error {
	// The first MarkSent of a message, by far the most common, records it in one
	// statement; a second one (or an unknown ID) finds message_ids taken.
	res, err := tx.ExecContext(ctx, `UPDATE messages
		SET state = CASE WHEN state IN ('delivered', 'undeliverable') THEN state ELSE 'sent' END,
			link = ?, message_ids = ?, next_attempt_at = 0, updated_at = ?
		WHERE id = ? AND message_ids = ''`, link, idsText(parts), now, id)
	if err != nil {
		return err
	}
	first := 0 // the part number of parts[0]
	if n, err := res.RowsAffected(); err != nil {
		return err
	} else if n == 0 {
		var state, text string
		err := tx.QueryRowContext(ctx, `SELECT state, message_ids FROM messages WHERE id = ?`, id).Scan(&state, &text)
		if errors.Is(err, sql.ErrNoRows) {
			return refuse(fmt.Errorf("%w: %d", ErrNotFound, id))
		}
		if err != nil {
			return err
		}
		var ids []string
		if err := json.Unmarshal([]byte(text), &ids); err != nil {
			return fmt.Errorf("message %d ids: %w", id, err)
		}
		parts = slices.DeleteFunc(slices.Clone(parts), func(mid string) bool { return slices.Contains(ids, mid) })
		first = len(ids)
		if state != StateDelivered && state != StateUndeliverable {
			state = StateSent
		}
		if _, err := tx.ExecContext(ctx, `UPDATE messages SET state = ?, link = ?, message_ids = ?,
			next_attempt_at = 0, updated_at = ? WHERE id = ?`,
			state, link, idsText(append(ids, parts...)), now, id); err != nil {
			return err
		}
	}
	early := false
	for i, mid := range parts {
		// A reused SMSC ID (counters wrap) now belongs to this message. A receipt that
		// overtook us (a deliver_sm can come before the submit_sm_resp is recorded)
		// waits in early_receipts, and its status goes straight into the part.
		var status string
		if err := tx.QueryRowContext(ctx, `INSERT INTO message_parts (link, message_id, outbox_id, part, status)
			VALUES (?1, ?2, ?3, ?4, coalesce((SELECT status FROM early_receipts WHERE link = ?1 AND message_id = ?2), ''))
			ON CONFLICT (link, message_id) DO UPDATE
			SET outbox_id = excluded.outbox_id, part = excluded.part, status = excluded.status
			RETURNING status`, link, mid, id, first+i).Scan(&status); err != nil {
			return err
		}
		if status == "" {
			continue
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM early_receipts WHERE link = ? AND message_id = ?`,
			link, mid); err != nil {
			return err
		}
		early = true
	}
	if early {
		_, _, err = settle(ctx, tx, id, now)
	}
	return err
}

// Retry puts a message that is sending back in the queue, due at next (zero: now plus
// Backoff of its attempts so far), remembering why it failed. Deciding when to give up
// (Fail) is the worker's policy.
func (o *Outbox) Retry(ctx context.Context, id int64, errText string, next time.Time) error {
	now := o.now()
	err := o.w.do(ctx, func(tx *sql.Tx) error {
		state, attempts, err := stateTx(ctx, tx, id)
		if err != nil {
			return err
		}
		if state != StateSending {
			return refuse(fmt.Errorf("%w: message %d is %s", ErrState, id, state))
		}
		due := next
		if due.IsZero() {
			due = now.Add(Backoff(attempts))
		}
		_, err = tx.ExecContext(ctx, `UPDATE messages SET state = 'queued', next_attempt_at = ?, last_error = ?,
			updated_at = ? WHERE id = ?`, micros(due), errText, micros(now), id)
		return err
	})
	if err != nil {
		return fmt.Errorf("outbox: retry %d: %w", id, err)
	}
	return nil
}

// Fail gives up on a message that is queued or sending, for good.
func (o *Outbox) Fail(ctx context.Context, id int64, errText string) error {
	now := micros(o.now())
	err := o.w.do(ctx, func(tx *sql.Tx) error {
		state, _, err := stateTx(ctx, tx, id)
		if err != nil {
			return err
		}
		if state != StateQueued && state != StateSending {
			return refuse(fmt.Errorf("%w: message %d is %s", ErrState, id, state))
		}
		_, err = tx.ExecContext(ctx, `UPDATE messages SET state = 'failed', next_attempt_at = 0, last_error = ?,
			updated_at = ? WHERE id = ?`, errText, now, id)
		return err
	})
	if err != nil {
		return fmt.Errorf("outbox: fail %d: %w", id, err)
	}
	return nil
}

// stateTx reads message id's state and attempts inside tx; an unknown id is refused
// with ErrNotFound.
func stateTx(ctx context.Context, tx *sql.Tx, id int64) (state string, attempts int, err error) {
	err = tx.QueryRowContext(ctx, `SELECT state, attempts FROM messages WHERE id = ?`, id).Scan(&state, &attempts)
	if errors.Is(err, sql.ErrNoRows) {
		return "", 0, refuse(fmt.Errorf("%w: %d", ErrNotFound, id))
	}
	return state, attempts, err
}

// Receipt applies a delivery receipt for one part, found by the link it went out on and
// the SMSC's messageID, and returns the message as it now stands. status is the SMPP
// receipt's stat: DELIVRD marks the part delivered; UNDELIV, REJECTD, EXPIRED and DELETED
// mark it failed; anything else (ENROUTE, ACCEPTD, UNKNOWN) is recorded and changes
// nothing. A message is delivered once every part is delivered, and undeliverable as
// soon as any part failed.
//
// An unknown part gives false. Its receipt is kept for a day, because it may have
// overtaken the MarkSent that records the part; MarkSent then applies it.
//
// Receipt returns once the receipt is durable. Concurrent calls share store operations
// (see MarkSent), and each returns its own message.
func (o *Outbox) Receipt(ctx context.Context, link, messageID, status string) (Message, bool, error) {
	return o.ReceiptWith(ctx, link, messageID, status, nil)
}

// ReceiptWith is Receipt with more work in the same store transaction: when the part is
// known, with runs right after the receipt is applied, with the message as it now
// stands, and its error undoes the receipt and is returned. It runs on the store's
// writer goroutine and, like a store.Write function, may run twice and must not change
// memory that outlives it before ReceiptWith returns nil. serve records a code SMS's
// delivery in the authentication history this way, in one write with its receipt.
func (o *Outbox) ReceiptWith(ctx context.Context, link, messageID, status string,
	with func(tx *sql.Tx, m Message) error) (Message, bool, error) {
	now := o.now()
	status = strings.ToUpper(strings.TrimSpace(status))
	var (
		m             Message
		found, sealed bool
	)
	err := o.w.do(ctx, func(tx *sql.Tx) error {
		m, found, sealed = Message{}, false, false
		var id int64
		err := tx.QueryRowContext(ctx, `UPDATE message_parts SET status = ? WHERE link = ? AND message_id = ?
			RETURNING outbox_id`, status, link, messageID).Scan(&id)
		if errors.Is(err, sql.ErrNoRows) {
			if _, err := tx.ExecContext(ctx, `DELETE FROM early_receipts WHERE received_at < ?`,
				micros(now.Add(-24*time.Hour))); err != nil {
				return err
			}
			_, err := tx.ExecContext(ctx, `INSERT INTO early_receipts (link, message_id, status, received_at)
				VALUES (?, ?, ?, ?) ON CONFLICT (link, message_id) DO UPDATE
				SET status = excluded.status, received_at = excluded.received_at`,
				link, messageID, status, micros(now))
			return err
		}
		if err != nil {
			return err
		}
		if m, sealed, err = settle(ctx, tx, id, micros(now)); err != nil {
			return err
		}
		found = true
		if with == nil {
			return nil
		}
		if sealed {
			o.reveal(&m, sealed) // a text that cannot be opened reads "[sealed]"; the receipt still counts
			sealed = false
		}
		return with(tx, m)
	})
	if err != nil {
		return Message{}, false, fmt.Errorf("outbox: receipt %s/%s: %w", link, messageID, err)
	}
	o.reveal(&m, sealed) // a text that cannot be opened reads "[sealed]"; the receipt still counts
	return m, found, nil
}

// settle sets a sent message's state from its parts' receipts and returns it (sealed
// says whether its text is still sealed): undeliverable once a part failed, delivered once every part is, and otherwise as it
// was. It writes the message even when nothing changes, which costs less than a
// statement to find out first.
func settle(ctx context.Context, tx *sql.Tx, id int64, now int64) (Message, bool, error) {
	m, sealed, err := scanMessage(tx.QueryRowContext(ctx, `UPDATE messages
		SET state = coalesce(CASE WHEN messages.state IN ('sent', 'delivered', 'undeliverable') THEN v.verdict END,
				messages.state),
			updated_at = CASE WHEN messages.state IN ('sent', 'delivered', 'undeliverable') AND v.verdict IS NOT NULL
				THEN ? ELSE messages.updated_at END
		FROM (SELECT CASE
				WHEN count(*) FILTER (WHERE status IN ('UNDELIV', 'REJECTD', 'EXPIRED', 'DELETED')) > 0 THEN 'undeliverable'
				WHEN count(*) > 0 AND count(*) FILTER (WHERE status = 'DELIVRD') = count(*) THEN 'delivered'
			END AS verdict
			FROM message_parts WHERE outbox_id = ?) AS v
		WHERE messages.id = ?
		RETURNING `+messageCols, now, id, id))
	if errors.Is(err, sql.ErrNoRows) {
		return Message{}, false, fmt.Errorf("%w: %d", ErrNotFound, id)
	}
	return m, sealed, err
}

// Get returns message id as last committed. A sealed text that this Outbox cannot open
// reads "[sealed]".
func (o *Outbox) Get(ctx context.Context, id int64) (Message, error) {
	m, sealed, err := scanMessage(o.db.Reader().QueryRowContext(ctx, `SELECT `+messageCols+` FROM messages WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return Message{}, fmt.Errorf("%w: %d", ErrNotFound, id)
	}
	if err != nil {
		return Message{}, fmt.Errorf("outbox: get %d: %w", id, err)
	}
	o.reveal(&m, sealed) // a text that cannot be opened reads "[sealed]"
	return m, nil
}

// List returns up to limit messages to the number to (every message when to is empty),
// newest first, for tests and operators. limit < 1 means 100.
func (o *Outbox) List(ctx context.Context, to string, limit int) ([]Message, error) {
	if limit < 1 {
		limit = 100
	}
	// Two queries, not one with "? = '' OR to_addr = ?": that OR hides the index on
	// (to_addr, id) from SQLite's planner, and a number's messages were then found by
	// walking the whole table backwards (the IVR looks calls up this way on every callback).
	q, args := `SELECT `+messageCols+` FROM messages ORDER BY id DESC LIMIT ?`, []any{limit}
	if to != "" {
		q, args = `SELECT `+messageCols+` FROM messages WHERE to_addr = ? ORDER BY id DESC LIMIT ?`, []any{to, limit}
	}
	rows, err := o.db.Reader().QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("outbox: list: %w", err)
	}
	defer rows.Close()
	var ms []Message
	for rows.Next() {
		m, sealed, err := scanMessage(rows)
		if err != nil {
			return nil, fmt.Errorf("outbox: list: %w", err)
		}
		o.reveal(&m, sealed) // a text that cannot be opened reads "[sealed]"
		ms = append(ms, m)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("outbox: list: %w", err)
	}
	return ms, nil
}

// Stats counts messages by state, with every state in States present (zero or not), for
// /healthz and metrics.
func (o *Outbox) Stats(ctx context.Context) (map[string]int64, error) {
	stats := make(map[string]int64, len(States))
	for _, s := range States {
		stats[s] = 0
	}
	rows, err := o.db.Reader().QueryContext(ctx, `SELECT state, count(*) FROM messages GROUP BY state`)
	if err != nil {
		return nil, fmt.Errorf("outbox: stats: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var state string
		var n int64
		if err := rows.Scan(&state, &n); err != nil {
			return nil, fmt.Errorf("outbox: stats: %w", err)
		}
		stats[state] = n
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("outbox: stats: %w", err)
	}
	return stats, nil
}

// Backoff is how long to wait before attempt number attempt+1 after attempt failed:
// 1s doubling per attempt up to 5m, with "equal jitter" (a random point in the upper
// half) so that messages that failed together do not retry together.
func Backoff(attempt int) time.Duration {
	const base, ceiling = time.Second, 5 * time.Minute
	d := ceiling
	if attempt < 1 {
		attempt = 1
	}
	if attempt <= 10 { // 1s<<9 = 512s is already past the ceiling
		d = min(base<<(attempt-1), ceiling)
	}
	return d/2 + rand.N(d/2+1)
}

func micros(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMicro()
}

func fromMicros(v int64) time.Time {
	if v == 0 {
		return time.Time{}
	}
	return time.UnixMicro(v).UTC()
}

// mask hides the middle of a number in error messages, as otp.Mask does; outbox does not
// import otp for one line.
func mask(msisdn string) string {
	if len(msisdn) < 8 {
		return "****"
	}
	return msisdn[:4] + "****" + msisdn[len(msisdn)-3:]
}
