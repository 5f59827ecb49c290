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
//
// The worker side's writes (Claim, MarkSent, Retry, Fail, Receipt) are small and many,
// and the store's single writer is the switch's bottleneck, so the Outbox combines the
// ones that wait for the writer at the same time into one store operation (batch.go);
// each call still returns only once its own work is durable, with its own result.
package outbox

import (
	"context"
	"crypto/cipher"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/payswitch/payswitch/store"

	"github.com/payswitch/payswitch/internal/mask"
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
}}

// due is the condition of the messages in messages_due (migration 4), as its queries
// must write it for SQLite to see that the index holds every row they look for.
const due = `(state = 'queued' OR state = 'sending')`

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
func Enqueue(ctx context.Context, tx store.Tx, m Message) (int64, error) {
	return enqueue(ctx, tx, m, nil)
}

// Enqueue is the package's Enqueue, except that an Outbox made by NewSealed stores the
// text of a one-time-code message (Purpose "otp") encrypted, so the code is never in
// the database in clear.
func (o *Outbox) Enqueue(ctx context.Context, tx store.Tx, m Message) (int64, error) {
	if o.aead == nil {
		return enqueue(ctx, tx, m, nil)
	}
	return enqueue(ctx, tx, m, o.sealText)
}

func enqueue(ctx context.Context, tx store.Tx, m Message, seal func(Message) (string, error)) (int64, error) {
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
		return 0, fmt.Errorf("outbox: enqueue %s to %s: %w", m.Kind, mask.MSISDN(m.To), err)
	}
	return res.LastInsertId()
}

func validate(m Message) error {
	if m.Kind != KindSMS && m.Kind != KindCall {
		return fmt.Errorf("%w: kind %q: want sms or call", ErrInvalid, m.Kind)
	}
	to := strings.TrimPrefix(m.To, "+")
	if len(to) < 3 || len(to) > 20 || strings.Trim(to, "0123456789") != "" {
		return fmt.Errorf("%w: recipient %q is not a phone number", ErrInvalid, mask.MSISDN(m.To))
	}
	if m.Kind == KindSMS && m.Text == "" {
		return fmt.Errorf("%w: sms to %s has no text", ErrInvalid, mask.MSISDN(m.To))
	}
	return nil
}

// Outbox is the worker side of the queue. It is safe for concurrent use.
type Outbox struct {
	db   *store.DB
	w    batcher // every write of the worker side goes through it
	now  func() time.Time
	wake chan struct{} // buffered 1: Kicks between two Waits coalesce
	// lastLease is the latest lease deadline given (micros), so that no two claims
	// share one.
	lastLease atomic.Int64
	aead      cipher.AEAD // seals one-time-code texts; nil: texts are stored as given
	onReceipt ReceiptHook // set by OnReceipt before use; nil: none
}

// ReceiptHook is the owner's work in the store transaction that applies a delivery
// receipt to its message (r.State is the message's state after it; r.Status the
// receipt's stat): at Receipt when the message's part is known, or at the MarkSent that
// records the part when the receipt came first (it waited in early_receipts). Either
// way the receipt and what the owner makes of it commit together. The hook runs on the
// store's writer and, like a store.Write function, may run twice and must not change
// memory that outlives it; after, when not nil, runs once the transaction is durable.
// Its error undoes the receipt (or the MarkSent) and is returned by that call.
type ReceiptHook func(ctx context.Context, tx store.Tx, r Receipted) (after func(), err error)

// OnReceipt sets the hook run for every receipt applied to its message (ReceiptHook).
// Call it before the outbox is used.
func (o *Outbox) OnReceipt(h ReceiptHook) { o.onReceipt = h }

// hooked collects the after-effects of the receipt hook's runs in one store operation.
// The operation may run twice, so it starts from reset each time.
type hooked struct{ afters []func() }

func (h *hooked) reset() { h.afters = h.afters[:0] }

// run runs hook (if any) on r in tx and keeps its after-effect.
func (h *hooked) run(ctx context.Context, tx store.Tx, hook ReceiptHook, r Receipted) error {
	if hook == nil {
		return nil
	}
	after, err := hook(ctx, tx, r)
	if err == nil && after != nil {
		h.afters = append(h.afters, after)
	}
	return err
}

// done runs the after-effects, once the operation is durable.
func (h *hooked) done() {
	for _, f := range h.afters {
		f()
	}
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
	err := o.db.Write(ctx, func(tx store.Tx) error {
		res, err := tx.ExecContext(ctx, releaseSQL, now, now)
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
	deadline := o.leaseUntil(now.Add(lease))
	chunks := claimChunks(limit)
	stmts := make([]string, len(chunks)) // here, not on the store's writer
	for i, c := range chunks {
		stmts[i] = claimSQL(c)
	}
	var ids []int64
	err := o.w.do(ctx, func(tx store.Tx) error {
		ids = ids[:0]
		for i, chunk := range chunks {
			// The limit is part of the statement's text, never a bound parameter: SQLite
			// plans with a LIMIT's value, and a statement whose bound LIMIT changed was
			// compiled again on its next run, which cost more than the claim.
			//
			// Only the IDs come back here: the writer is the switch's bottleneck, and
			// RETURNING every column cost it as much again as the update (SQLite buffers
			// RETURNING rows in a temporary table). The rows are read once committed.
			rows, err := tx.QueryContext(ctx, stmts[i], deadline, micros(now), micros(now), kind, kind)
			if err != nil {
				return err
			}
			got := 0
			for rows.Next() {
				var id int64
				if err := rows.Scan(&id); err != nil {
					rows.Close()
					return err
				}
				ids = append(ids, id)
				got++
			}
			if err := rows.Close(); err != nil {
				return err
			}
			if err := rows.Err(); err != nil {
				return err
			}
			if got < chunk {
				break // nothing more is due
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("outbox: claim %s: %w", kind, err)
	}
	if len(ids) == 0 {
		return nil, nil
	}
	// The claim is ours now, whatever ctx says: reading it must not fail because the
	// caller is stopping, or the messages would wait out their lease.
	claimed, broken, err := o.readClaim(context.WithoutCancel(ctx), ids, deadline)
	if err != nil {
		return nil, fmt.Errorf("outbox: claim %s: %w", kind, err)
	}
	// A text nobody can open will never be sent; retrying it would only block others.
	// If this fails, the message is claimed again when its lease runs out, and fails then.
	for _, m := range broken {
		o.Fail(context.WithoutCancel(ctx), m.ID, m.LastError)
	}
	return claimed, nil
}

// The statements that find messages through messages_due (TestDueQueriesUseTheIndex).
const (
	// releaseSQL gives back every claim: args now, now.
	releaseSQL = `UPDATE messages SET state = 'queued', next_attempt_at = ?, updated_at = ?
		WHERE state = 'sending'`
	// readClaimSQL reads the messages leased until a deadline, a claim's (readClaim).
	readClaimSQL = `SELECT ` + messageCols + ` FROM messages
		WHERE state = 'sending' AND next_attempt_at = ? ORDER BY id`
	// unsentSQL counts the queued, sending and failed messages (Unsent).
	unsentSQL = `SELECT count(*) FILTER (WHERE state = 'queued'), count(*) FILTER (WHERE state = 'sending'),
			(SELECT count(*) FROM messages WHERE state = 'failed')
		FROM messages WHERE ` + due
)

// claimSQL is Claim's statement for a chunk of limit messages: args deadline, now, now,
// kind, kind. The subquery walks messages_due in its order (next_attempt_at, then id)
// and stops after limit rows.
func claimSQL(limit int) string {
	return `UPDATE messages
		SET state = 'sending', attempts = attempts + 1, next_attempt_at = ?, updated_at = ?
		WHERE id IN (SELECT id FROM messages
			WHERE ` + due + ` AND next_attempt_at <= ? AND (? = '' OR kind = ?)
			ORDER BY next_attempt_at, id LIMIT ` + strconv.Itoa(limit) + `)
		RETURNING id`
}

// claimChunks splits a claim's limit into the LIMITs of its statements, largest first:
// powers of two up to 1024, so that a handful of statements serve every limit.
func claimChunks(limit int) []int {
	var chunks []int
	for ; limit > 1024; limit -= 1024 {
		chunks = append(chunks, 1024)
	}
	for c := 1024; c > 0; c /= 2 {
		if limit&c != 0 {
			chunks = append(chunks, c)
		}
	}
	return chunks
}

// leaseUntil returns the lease deadline t for a claim, in micros, moved on by as many
// microseconds as it takes to be unlike any other claim's of o: a claim finds its rows
// by their deadline (readClaim).
func (o *Outbox) leaseUntil(t time.Time) int64 {
	d := micros(t)
	for {
		last := o.lastLease.Load()
		next := max(d, last+1)
		if o.lastLease.CompareAndSwap(last, next) {
			return next
		}
	}
}

// readClaim reads the messages ids that a claim leased until deadline, oldest first,
// with their texts opened; those whose text cannot be opened come apart in broken,
// with LastError saying why. A message no longer leased until deadline is left out:
// meanwhile it was recorded as sent (a late acceptance of an earlier attempt).
func (o *Outbox) readClaim(ctx context.Context, ids []int64, deadline int64) (ms, broken []Message, err error) {
	// The claim's rows are found by their lease deadline (messages_due), not by an ID
	// list: json_each(?) made SQLite compile the statement again on every run.
	rows, err := o.db.Reader().QueryContext(ctx, readClaimSQL, deadline)
	if err != nil {
		return nil, nil, err
	}
	defer rows.Close()
	ms = make([]Message, 0, len(ids))
	for rows.Next() {
		m, sealed, err := scanMessage(rows)
		if err != nil {
			return nil, nil, err
		}
		if !slices.Contains(ids, m.ID) { // another claim's, with the same deadline
			continue
		}
		if err := o.reveal(&m, sealed); err != nil {
			m.LastError = err.Error()
			broken = append(broken, m)
			continue
		}
		ms = append(ms, m)
	}
	return ms, broken, rows.Err()
}

// MarkSent records that message m went out on link with the SMSC's messageIDs, one per
// part. It is accepted from any state: a worker whose lease ran out may still have sent
// the message, and then it was sent. IDs from a second MarkSent are added to the first's;
// a message already delivered or undeliverable keeps that state.
//
// Every message's IDs are kept (Message.MessageIDs), but only a message that can get
// delivery receipts, a call or an SMS that asked for them (RequestReceipt), has its parts
// recorded for Receipt to find, and takes the receipts that overtook this MarkSent
// (early ones). Most SMS ask for none, and recording their parts cost the store's writer
// more than the rest of MarkSent. So a receipt that an SMSC sends for such an SMS
// anyway finds no part: Receipt reports it unknown and keeps it for a day like an early
// one, and the message stays sent.
//
// MarkSent reads m's ID, Kind and RequestReceipt; pass the message as Claim returned it.
// The last two spare the write a statement reading them. The message as queued still
// decides: an m that says otherwise (a Message with its ID alone) is recorded right, at
// two statements more.
//
// Concurrent MarkSent, Receipt, Claim, Retry and Fail calls share store operations (see
// batcher); each still returns only once its own result is durable, with its own error.
func (o *Outbox) MarkSent(ctx context.Context, m Message, link string, messageIDs []string) error {
	now := micros(o.now())
	parts := partIDs(messageIDs)
	receipts := m.Kind == KindCall || m.RequestReceipt
	text := idsText(parts) // here, not on the store's writer
	var h hooked
	if err := o.w.do(ctx, func(tx store.Tx) error {
		h.reset()
		return markSent(ctx, tx, m.ID, link, parts, text, receipts, now, func(r Receipted) error {
			return h.run(ctx, tx, o.onReceipt, r)
		})
	}); err != nil {
		return fmt.Errorf("outbox: mark %d sent: %w", m.ID, err)
	}
	h.done()
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

// getsReceipts is true in SQL for a message that can get delivery receipts: an SMS that
// asked for them, or a call. Only their parts go into message_parts. Calls keep theirs
// as before; they are few (the IVR finds a call by its message_ids, not its parts).
const getsReceipts = `(request_receipt <> 0 OR kind = 'call')`

// markSent is MarkSent's write; parts are the new IDs, as partIDs returns them, text is
// idsText(parts), and receipts says whether the message can get delivery receipts
// (getsReceipts), as the caller believes. applied is told of the message when receipts
// that came before this MarkSent were applied to it (the receipt hook's turn).
func markSent(ctx context.Context, tx store.Tx, id int64, link string, parts []string, text string, receipts bool, now int64,
	applied func(Receipted) error) error {
	// The first MarkSent of a message, by far the most common, records it in one
	// statement; a second one (or an unknown ID, or receipts wrong) finds the WHERE false.
	// Checking receipts here costs a few instructions on a row read anyway.
	res, err := tx.ExecContext(ctx, `UPDATE messages
		SET state = CASE WHEN state = 'delivered' OR state = 'undeliverable' THEN state ELSE 'sent' END,
			link = ?, message_ids = ?, next_attempt_at = 0, updated_at = ?
		WHERE id = ? AND message_ids = '' AND `+getsReceipts+` = ?`, link, text, now, id, receipts)
	if err != nil {
		return err
	}
	first := 0 // the part number of parts[0]
	if n, err := res.RowsAffected(); err != nil {
		return err
	} else if n == 0 {
		var state, text string
		err := tx.QueryRowContext(ctx, `SELECT state, message_ids, `+getsReceipts+` FROM messages WHERE id = ?`,
			id).Scan(&state, &text, &receipts)
		if errors.Is(err, sql.ErrNoRows) {
			return refuse(fmt.Errorf("%w: %d", ErrNotFound, id))
		}
		if err != nil {
			return err
		}
		var ids []string
		if text != "" { // a first MarkSent whose receipts was wrong
			if err := json.Unmarshal([]byte(text), &ids); err != nil {
				return fmt.Errorf("message %d ids: %w", id, err)
			}
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
	if !receipts {
		return nil // no receipt will come for its parts: see MarkSent
	}
	early := "" // the last part with an early receipt
	for i, mid := range parts {
		// A receipt that overtook us (a deliver_sm can come before the submit_sm_resp
		// is recorded) waits in early_receipts: the part takes its status, and the
		// DELETE that removes it says whether there was one. There almost never is,
		// and reading it first with a SELECT cost the writer a query's bookkeeping in
		// database/sql for nothing (2-4% of a MarkSent that records a part).
		// A reused SMSC ID (counters wrap) now belongs to this message.
		if _, err := tx.ExecContext(ctx, `INSERT INTO message_parts (link, message_id, outbox_id, part, status)
			VALUES (?1, ?2, ?3, ?4,
				coalesce((SELECT status FROM early_receipts WHERE link = ?1 AND message_id = ?2), ''))
			ON CONFLICT (link, message_id) DO UPDATE
			SET outbox_id = excluded.outbox_id, part = excluded.part, status = excluded.status`,
			link, mid, id, first+i); err != nil {
			return err
		}
		res, err := tx.ExecContext(ctx, `DELETE FROM early_receipts WHERE link = ? AND message_id = ?`, link, mid)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil {
			return err
		} else if n > 0 {
			early = mid
		}
	}
	if early == "" {
		return nil
	}
	// As a receipt settles its message (readPart); receipts that overtake their
	// submit_sm_resp are few. The owner then hears of it as it would have at Receipt.
	r := Receipted{ID: id}
	var v sql.NullString
	if err := tx.QueryRowContext(ctx, `SELECT m.kind, m.to_addr, m.payment_id, m.purpose, m.state, p.status,
			`+verdictOf("m.id")+`
		FROM messages AS m JOIN message_parts AS p ON p.outbox_id = m.id
		WHERE m.id = ? AND p.link = ? AND p.message_id = ?`, id, link, early).Scan(
		&r.Kind, &r.To, &r.PaymentID, &r.Purpose, &r.State, &r.Status, &v); err != nil {
		return err
	}
	if r.State, err = settle(ctx, tx, id, r.State, v, now); err != nil {
		return err
	}
	return applied(r)
}

// Retry puts a message that is sending back in the queue, due at next (zero: now plus
// Backoff of its attempts so far), remembering why it failed. Deciding when to give up
// (Fail) is the worker's policy.
func (o *Outbox) Retry(ctx context.Context, id int64, errText string, next time.Time) error {
	now := o.now()
	err := o.w.do(ctx, func(tx store.Tx) error {
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
	err := o.w.do(ctx, func(tx store.Tx) error {
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
func stateTx(ctx context.Context, tx store.Tx, id int64) (state string, attempts int, err error) {
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
// overtaken the MarkSent that records the part; MarkSent then applies it. (Or it is for
// an SMS that asked for no receipt, whose parts MarkSent does not record.)
//
// Receipt returns once the receipt is durable. Concurrent calls share store operations
// (see MarkSent), and each returns its own message, read once the receipt is committed.
func (o *Outbox) Receipt(ctx context.Context, link, messageID, status string) (Message, bool, error) {
	r, found, err := o.receipt(ctx, link, messageID, status, nil)
	if err != nil || !found {
		return Message{}, found, err
	}
	// Read from the pool, off the writer. The receipt is durable: ctx ending now must
	// not make a recorded receipt look failed.
	m, err := o.Get(context.WithoutCancel(ctx), r.ID)
	if err != nil {
		return Message{}, false, fmt.Errorf("outbox: receipt %s/%s: %w", link, messageID, err)
	}
	return m, true, nil
}

// Receipted is the message a delivery receipt reports on as ReceiptWith sees it inside
// the receipt's transaction: the columns a caller acts on, not the text.
type Receipted struct {
	ID                 int64
	Kind, To           string
	PaymentID, Purpose string
	State              string // after the receipt
	Status             string // the receipt's stat (DELIVRD, UNDELIV, ENROUTE, ...), normalised
}

// ReceiptWith is Receipt with the caller's own work in the receipt's store transaction:
// when the part is known, with runs right after the receipt is applied (and after the
// hook, see OnReceipt), and its error undoes the receipt and is returned. It runs on the
// store's writer goroutine and, like a store.Write function, may run twice and must not
// change memory that outlives it before ReceiptWith returns nil. with may be nil; it
// does not run for a receipt that comes before its MarkSent (the hook does, then).
// ReceiptWith does not read the message back, as Receipt does.
func (o *Outbox) ReceiptWith(ctx context.Context, link, messageID, status string,
	with func(tx store.Tx, r Receipted) error) (Receipted, bool, error) {
	return o.receipt(ctx, link, messageID, status, with)
}

// readPart reads, inside a receipt's write and once the part's status is recorded, the
// message that part (link, message_id) belongs to, with its verdict. A receipt so takes
// three statements (the part's status, this, the message's new state), or two when its
// message's state does not change (ENROUTE, one part of several, a message claimed
// again). It took four: find the part, record its status, settle in an UPDATE that
// evaluated the verdict twice (in SET and in WHERE), read the message for ReceiptWith;
// the writer's CPU per receipt fell by 15-20% (BenchmarkReceiptWriter). UPDATE ...
// RETURNING, for the part's outbox_id or the settled message, saved no statement's
// worth: SQLite builds a temporary table for RETURNING rows on every run, which cost as
// much as the statement it replaced (measured again: RETURNING one column added 5.5 µs
// to a 4 µs UPDATE).
//
// A message of one part, most of them, gets its verdict from the part's own status:
// only a message with two IDs or more (a comma in message_ids) reads its parts through
// message_parts_by_outbox. Every part recorded for a message has its ID in the
// message's message_ids (MarkSent), so a message with one ID there has no other part.
var readPart = `SELECT m.id, m.kind, m.to_addr, m.payment_id, m.purpose, m.state,
		CASE WHEN instr(m.message_ids, ',') = 0 THEN ` + verdictOfStatus("p.status") + `
		ELSE ` + verdictOf("p.outbox_id") + ` END
	FROM message_parts AS p JOIN messages AS m ON m.id = p.outbox_id
	WHERE p.link = ? AND p.message_id = ?`

// receipt is the write of Receipt and ReceiptWith.
func (o *Outbox) receipt(ctx context.Context, link, messageID, status string,
	with func(tx store.Tx, r Receipted) error) (Receipted, bool, error) {
	now := micros(o.now())
	status = strings.ToUpper(strings.TrimSpace(status))
	var (
		r     Receipted
		found bool
		h     hooked
	)
	err := o.w.do(ctx, func(tx store.Tx) (err error) {
		h.reset()
		r, found, err = receiptTx(ctx, tx, link, messageID, status, now, func(r Receipted) error {
			if err := h.run(ctx, tx, o.onReceipt, r); err != nil {
				return err
			}
			if with != nil {
				return with(tx, r)
			}
			return nil
		})
		return err
	})
	if err != nil {
		return Receipted{}, false, fmt.Errorf("outbox: receipt %s/%s: %w", link, messageID, err)
	}
	h.done()
	return r, found, nil
}

// receiptTx applies a receipt inside tx; status is normalised (upper case, trimmed).
// An unknown part gives false and its receipt waits in early_receipts; a known one's
// message is then passed to applied.
func receiptTx(ctx context.Context, tx store.Tx, link, messageID, status string, now int64,
	applied func(Receipted) error) (Receipted, bool, error) {
	res, err := tx.ExecContext(ctx, `UPDATE message_parts SET status = ? WHERE link = ? AND message_id = ?`,
		status, link, messageID)
	if err != nil {
		return Receipted{}, false, err
	}
	if n, err := res.RowsAffected(); err != nil {
		return Receipted{}, false, err
	} else if n == 0 {
		if _, err := tx.ExecContext(ctx, `DELETE FROM early_receipts WHERE received_at < ?`,
			now-(24*time.Hour).Microseconds()); err != nil {
			return Receipted{}, false, err
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO early_receipts (link, message_id, status, received_at)
			VALUES (?, ?, ?, ?) ON CONFLICT (link, message_id) DO UPDATE
			SET status = excluded.status, received_at = excluded.received_at`,
			link, messageID, status, now)
		return Receipted{}, false, err
	}
	r := Receipted{Status: status}
	var v sql.NullString
	if err := tx.QueryRowContext(ctx, readPart, link, messageID).Scan(
		&r.ID, &r.Kind, &r.To, &r.PaymentID, &r.Purpose, &r.State, &v); err != nil {
		return Receipted{}, false, err
	}
	if r.State, err = settle(ctx, tx, r.ID, r.State, v, now); err != nil {
		return Receipted{}, false, err
	}
	if err := applied(r); err != nil {
		return Receipted{}, false, err
	}
	return r, true, nil
}

// verdict is what a message's parts' receipts say of the message, as the result of a
// SELECT over its rows of message_parts: undeliverable once a part failed, delivered
// once every part is, and NULL while that is not known.
//
// Lists of values are spelled out with OR here and in the other statements the writer
// runs per message: SQLite builds a temporary b-tree for an IN list on every run of the
// statement, which cost about as much as the rest of a one-row statement.
const verdict = `CASE
		WHEN count(*) FILTER (WHERE status = 'UNDELIV' OR status = 'REJECTD' OR status = 'EXPIRED'
			OR status = 'DELETED') > 0 THEN 'undeliverable'
		WHEN count(*) > 0 AND count(*) FILTER (WHERE status <> 'DELIVRD') = 0 THEN 'delivered'
	END`

// verdictOf is verdict as a subquery over the parts of the message whose id is the
// column outboxID of the enclosing statement.
func verdictOf(outboxID string) string {
	return `(SELECT ` + verdict + ` FROM message_parts WHERE outbox_id = ` + outboxID + `)`
}

// verdictOfStatus is verdict for a message of one part, whose status is the column
// status of the enclosing statement.
func verdictOfStatus(status string) string {
	return `CASE
		WHEN ` + status + ` = 'UNDELIV' OR ` + status + ` = 'REJECTD' OR ` + status + ` = 'EXPIRED'
			OR ` + status + ` = 'DELETED' THEN 'undeliverable'
		WHEN ` + status + ` = 'DELIVRD' THEN 'delivered'
	END`
}

// settle sets message id, read in state inside tx, to its verdict v (see verdict), and
// returns the state it is in now. A message that is not sent, delivered or undeliverable
// (claimed again meanwhile) keeps its state, and so does one whose verdict is not known
// yet (NULL); neither costs a statement.
func settle(ctx context.Context, tx store.Tx, id int64, state string, v sql.NullString, now int64) (string, error) {
	if !v.Valid || (state != StateSent && state != StateDelivered && state != StateUndeliverable) {
		return state, nil
	}
	if _, err := tx.ExecContext(ctx, `UPDATE messages SET state = ?, updated_at = ? WHERE id = ?`,
		v.String, now, id); err != nil {
		return "", err
	}
	return v.String, nil
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
// newest first, for tests and tools. limit < 1 means 100. Messages are not indexed by
// recipient (only calls are: see Calls), so List reads back from the newest message
// until it has found limit of them.
func (o *Outbox) List(ctx context.Context, to string, limit int) ([]Message, error) {
	if limit < 1 {
		limit = 100
	}
	q, args := `SELECT `+messageCols+` FROM messages ORDER BY id DESC LIMIT ?`, []any{limit}
	if to != "" {
		q, args = `SELECT `+messageCols+` FROM messages WHERE to_addr = ? ORDER BY id DESC LIMIT ?`, []any{to, limit}
	}
	return o.list(ctx, "list", q, args...)
}

// callsToQuery is Calls' query; its condition names kind = 'call' as calls_by_to
// (migration 5) does, for SQLite to use that index.
const callsToQuery = `SELECT ` + messageCols + ` FROM messages WHERE kind = 'call' AND to_addr = ? ORDER BY id DESC LIMIT ?`

// Calls returns up to limit calls to the number to, newest first, through the index of
// calls by recipient. limit < 1 means 100.
func (o *Outbox) Calls(ctx context.Context, to string, limit int) ([]Message, error) {
	if limit < 1 {
		limit = 100
	}
	return o.list(ctx, "calls", callsToQuery, to, limit)
}

// list runs a query of messageCols and reveals the texts; what names the caller in errors.
func (o *Outbox) list(ctx context.Context, what, q string, args ...any) ([]Message, error) {
	rows, err := o.db.Reader().QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("outbox: %s: %w", what, err)
	}
	defer rows.Close()
	var ms []Message
	for rows.Next() {
		m, sealed, err := scanMessage(rows)
		if err != nil {
			return nil, fmt.Errorf("outbox: %s: %w", what, err)
		}
		o.reveal(&m, sealed) // a text that cannot be opened reads "[sealed]"
		ms = append(ms, m)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("outbox: %s: %w", what, err)
	}
	return ms, nil
}

// Unsent counts the messages that have not gone out, by state: StateQueued,
// StateSending and StateFailed, each present (zero or not). It is the outbox's part of
// /healthz. It finds them through messages_due, which holds the queued and sending
// messages alone (reading each one's state), and messages_failed, so its cost grows
// with the backlog and the failures, not with the messages sent; Stats reads the whole
// table.
func (o *Outbox) Unsent(ctx context.Context) (map[string]int64, error) {
	var queued, sending, failed int64
	if err := o.db.Reader().QueryRowContext(ctx, unsentSQL).Scan(&queued, &sending, &failed); err != nil {
		return nil, fmt.Errorf("outbox: unsent: %w", err)
	}
	return map[string]int64{StateQueued: queued, StateSending: sending, StateFailed: failed}, nil
}

// Stats counts messages by state, with every state in States present (zero or not), for
// tests and operators. It reads every message (no index holds the states of messages
// sent); /healthz shows Unsent.
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
