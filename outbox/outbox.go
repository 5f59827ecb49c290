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
	return &Outbox{db: db, now: now, wake: make(chan struct{}, 1)}
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
	err := o.db.Write(ctx, func(tx *sql.Tx) error {
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
func (o *Outbox) MarkSent(ctx context.Context, id int64, link string, messageIDs []string) error {
	now := micros(o.now())
	err := o.db.Write(ctx, func(tx *sql.Tx) error {
		m, _, err := getTx(ctx, tx, id)
		if err != nil {
			return err
		}
		ids := m.MessageIDs
		for _, mid := range messageIDs {
			if mid == "" || slices.Contains(ids, mid) {
				continue
			}
			ids = append(ids, mid)
			// A reused SMSC ID (counters wrap) now belongs to this message.
			if _, err := tx.ExecContext(ctx, `INSERT INTO message_parts (link, message_id, outbox_id, part)
				VALUES (?, ?, ?, ?) ON CONFLICT (link, message_id) DO UPDATE
				SET outbox_id = excluded.outbox_id, part = excluded.part, status = ''`,
				link, mid, id, len(ids)-1); err != nil {
				return err
			}
		}
		state := m.State
		if state != StateDelivered && state != StateUndeliverable {
			state = StateSent
		}
		idsJSON := ""
		if len(ids) > 0 {
			b, _ := json.Marshal(ids)
			idsJSON = string(b)
		}
		if _, err := tx.ExecContext(ctx, `UPDATE messages SET state = ?, link = ?, message_ids = ?,
			next_attempt_at = 0, updated_at = ? WHERE id = ?`, state, link, idsJSON, now, id); err != nil {
			return err
		}
		// Receipts that overtook us.
		var early bool
		for _, mid := range messageIDs {
			var status string
			err := tx.QueryRowContext(ctx, `DELETE FROM early_receipts WHERE link = ? AND message_id = ?
				RETURNING status`, link, mid).Scan(&status)
			if errors.Is(err, sql.ErrNoRows) {
				continue
			}
			if err != nil {
				return err
			}
			if _, err := tx.ExecContext(ctx, `UPDATE message_parts SET status = ? WHERE link = ? AND message_id = ?`,
				status, link, mid); err != nil {
				return err
			}
			early = true
		}
		if early {
			_, _, err = settle(ctx, tx, id, now)
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("outbox: mark %d sent: %w", id, err)
	}
	return nil
}

// Retry puts a message that is sending back in the queue, due at next (zero: now plus
// Backoff of its attempts so far), remembering why it failed. Deciding when to give up
// (Fail) is the worker's policy.
func (o *Outbox) Retry(ctx context.Context, id int64, errText string, next time.Time) error {
	now := o.now()
	err := o.db.Write(ctx, func(tx *sql.Tx) error {
		m, _, err := getTx(ctx, tx, id)
		if err != nil {
			return err
		}
		if m.State != StateSending {
			return fmt.Errorf("%w: message %d is %s", ErrState, id, m.State)
		}
		if next.IsZero() {
			next = now.Add(Backoff(m.Attempts))
		}
		_, err = tx.ExecContext(ctx, `UPDATE messages SET state = 'queued', next_attempt_at = ?, last_error = ?,
			updated_at = ? WHERE id = ?`, micros(next), errText, micros(now), id)
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
	err := o.db.Write(ctx, func(tx *sql.Tx) error {
		m, _, err := getTx(ctx, tx, id)
		if err != nil {
			return err
		}
		if m.State != StateQueued && m.State != StateSending {
			return fmt.Errorf("%w: message %d is %s", ErrState, id, m.State)
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

// Receipt applies a delivery receipt for one part, found by the link it went out on and
// the SMSC's messageID, and returns the message as it now stands. status is the SMPP
// receipt's stat: DELIVRD marks the part delivered; UNDELIV, REJECTD, EXPIRED and DELETED
// mark it failed; anything else (ENROUTE, ACCEPTD, UNKNOWN) is recorded and changes
// nothing. A message is delivered once every part is delivered, and undeliverable as
// soon as any part failed.
//
// An unknown part gives false. Its receipt is kept for a day, because it may have
// overtaken the MarkSent that records the part; MarkSent then applies it.
func (o *Outbox) Receipt(ctx context.Context, link, messageID, status string) (Message, bool, error) {
	now := o.now()
	status = strings.ToUpper(strings.TrimSpace(status))
	var (
		m             Message
		found, sealed bool
	)
	err := o.db.Write(ctx, func(tx *sql.Tx) error {
		found = false
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
		return nil
	})
	if err != nil {
		return Message{}, false, fmt.Errorf("outbox: receipt %s/%s: %w", link, messageID, err)
	}
	o.reveal(&m, sealed) // a text that cannot be opened reads "[sealed]"; the receipt still counts
	return m, found, nil
}

// settle sets a sent message's state from its parts' receipts and returns it, as getTx.
func settle(ctx context.Context, tx *sql.Tx, id int64, now int64) (Message, bool, error) {
	var parts, delivered, failed int
	err := tx.QueryRowContext(ctx, `SELECT count(*),
		count(*) FILTER (WHERE status = 'DELIVRD'),
		count(*) FILTER (WHERE status IN ('UNDELIV', 'REJECTD', 'EXPIRED', 'DELETED'))
		FROM message_parts WHERE outbox_id = ?`, id).Scan(&parts, &delivered, &failed)
	if err != nil {
		return Message{}, false, err
	}
	state := ""
	switch {
	case failed > 0:
		state = StateUndeliverable
	case parts > 0 && delivered == parts:
		state = StateDelivered
	}
	if state != "" {
		if _, err := tx.ExecContext(ctx, `UPDATE messages SET state = ?, updated_at = ?
			WHERE id = ? AND state IN ('sent', 'delivered', 'undeliverable')`, state, now, id); err != nil {
			return Message{}, false, err
		}
	}
	return getTx(ctx, tx, id)
}

// getTx reads message id inside tx; sealed says whether its text is still sealed.
func getTx(ctx context.Context, tx *sql.Tx, id int64) (m Message, sealed bool, err error) {
	m, sealed, err = scanMessage(tx.QueryRowContext(ctx, `SELECT `+messageCols+` FROM messages WHERE id = ?`, id))
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
