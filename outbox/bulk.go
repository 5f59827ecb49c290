package outbox

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/payswitch/payswitch/store"
)

// The writes a batch combines are mostly of two kinds: a submit recorded (MarkSent) and
// a delivery receipt applied (Receipt), a few of each per payment. One by one they cost
// four statements a receipt-asking MarkSent and three a receipt on SQLite (five on
// PostgreSQL, with its locks), each with its own trip through database/sql and the
// database: SQLite's statement machinery on the single writer, a round trip to the server
// on PostgreSQL. bulk records all the batch's MarkSents in a few statements and applies
// all its receipts in a few more, of fixed text, whatever the batch's size. Each call
// keeps its own outcome.
//
// The bulk statements do exactly what the calls one by one would, for the cases they
// cover: a first MarkSent of each message, no early receipt waiting for its parts, and
// receipts for known parts, one per part and per message. A call outside them (a second
// MarkSent, a receipt that overtook its submit) runs alone after the bulk, as before;
// a batch whose bulk statement finds the database other than it expected is rolled back
// and every call runs alone (batcher.finish), which is always right and only slower.
// The statements differ by driver (bulkStatements): SQLite's take their rows as one JSON
// argument, which jsonb_each unpacks (parsed once, each row handed to ->> as JSONB, where
// json_each handed it back as text that every ->> parsed again); PostgreSQL's take
// arrays, which unnest unpacks, and
// first lock what they touch as the calls one by one do (bulk_postgres.go).

// errBulkMismatch rolls a batch back when a bulk statement found the database in a
// state it does not handle: the calls then run one by one, each finding its own case.
var errBulkMismatch = errors.New("outbox: bulk write found the database other than expected")

// markArgs is a MarkSent's write as data, for bulk, with its JSON rows for SQLite built
// by the caller (off the store's writer).
type markArgs struct {
	id       int64
	now      int64
	link     string
	text     string   // message_ids
	receipts bool     // the caller says the message gets receipts: its parts are recorded
	mids     []string // the parts' SMSC IDs, recorded when receipts
	row      string   // SQLite: [id, link, message_ids, receipts], bulkMarkSQL's
	parts    []string // SQLite: [link, message_id, outbox_id, part] of each part to record, bulkPartsSQL's
}

// newMarkArgs returns MarkSent's write of message id as data, or nil when it must run
// alone: a link that JSON cannot carry byte for byte (not UTF-8) would not be the one
// stored one by one. The parts (partIDs) and text (their JSON) are always UTF-8
// (storable). pg says the database is PostgreSQL, which needs no JSON.
func newMarkArgs(pg bool, id int64, link string, parts []string, text string, receipts bool, now int64) *markArgs {
	if !jsonSafe(link) {
		return nil
	}
	m := &markArgs{id: id, now: now, link: link, text: text, receipts: receipts}
	if receipts {
		m.mids = parts
	}
	if pg {
		return m
	}
	ids := strconv.FormatInt(id, 10)
	m.row = "[" + ids + "," + jsonString(link) + "," + jsonString(text) + "," + boolDigit(receipts) + "]"
	for i, mid := range m.mids {
		m.parts = append(m.parts, "["+jsonString(link)+","+jsonString(mid)+","+ids+","+strconv.Itoa(i)+"]")
	}
	return m
}

// receiptArgs is a Receipt's write as data, for bulk, with where its outcome goes.
type receiptArgs struct {
	link, messageID, status string
	now                     int64
	row                     string                               // SQLite: [link, message_id, status], bulkStatusSQL's
	reset                   func()                               // forgets what an earlier run of the write applied
	applied                 func(tx store.Tx, r Receipted) error // the caller's work, in the transaction
	found                   func(Receipted)                      // the call's result: its part was known
}

// newReceiptArgs returns a receipt's write as data, or nil when it must run alone (see
// newMarkArgs; messageID and status are storable already).
func newReceiptArgs(pg bool, link, messageID, status string, now int64) *receiptArgs {
	if !jsonSafe(link) {
		return nil
	}
	r := &receiptArgs{link: link, messageID: messageID, status: status, now: now}
	if !pg {
		r.row = "[" + jsonString(link) + "," + jsonString(messageID) + "," + jsonString(status) + "]"
	}
	return r
}

// bulkStatements are bulk's statements on one driver. Each takes the calls' args.
type bulkStatements interface {
	// earlyWaiting reports whether an early receipt waits for a part of marks.
	earlyWaiting(ctx context.Context, tx store.Tx, marks []*markArgs) (bool, error)
	// mark is markSent's first UPDATE for each of marks, and returns the IDs it updated.
	mark(ctx context.Context, tx store.Tx, marks []*markArgs) (map[int64]bool, error)
	// insertParts records the parts of marks, with no receipt yet.
	insertParts(ctx context.Context, tx store.Tx, marks []*markArgs) error
	// setStatus is recordStatus for each of receipts.
	setStatus(ctx context.Context, tx store.Tx, receipts []*receiptArgs) error
	// readParts reads, after setStatus, the message of each receipt, as readPart does.
	readParts(ctx context.Context, tx store.Tx, receipts []*receiptArgs) ([]partRead, error)
	// settle is settle for each message ids[i], to states[i].
	settle(ctx context.Context, tx store.Tx, now int64, ids []int64, states []string) error
}

// bulk writes the bulk-able calls of a batch in tx and returns the calls still to run
// one by one, in their order.
func bulk(ctx context.Context, tx store.Tx, st bulkStatements, calls []*call) ([]*call, error) {
	var marks, receipts, rest []*call
	for _, c := range calls {
		switch {
		case c.mark != nil:
			marks = append(marks, c)
		case c.receipt != nil:
			receipts = append(receipts, c)
		default:
			rest = append(rest, c)
		}
	}
	left, err := bulkMarks(ctx, tx, st, marks)
	if err != nil {
		return nil, err
	}
	rest = append(rest, left...)
	if left, err = bulkReceipts(ctx, tx, st, receipts); err != nil {
		return nil, err
	}
	rest = append(rest, left...)
	if len(rest) == len(calls) {
		return calls, nil // nothing went in bulk: keep the batch's order
	}
	return rest, nil
}

// bulkMarks records the first MarkSent of each message in calls, and returns the calls
// to run alone: all of them, with nothing written, when there is only one, when a
// message is in the batch twice or when an early receipt waits for one of their parts
// (which MarkSent then applies); else those whose message the bulk UPDATE did not find
// as a first MarkSent expects (an unknown message, a second MarkSent, receipts not as
// the caller said).
func bulkMarks(ctx context.Context, tx store.Tx, st bulkStatements, calls []*call) ([]*call, error) {
	if len(calls) < 2 {
		return calls, nil // one call gains nothing from bulk: it runs as it always did
	}
	seen := make(map[int64]bool, len(calls))
	marks := make([]*markArgs, 0, len(calls))
	for _, c := range calls {
		if seen[c.mark.id] {
			return calls, nil
		}
		seen[c.mark.id] = true
		marks = append(marks, c.mark)
	}
	if early, err := st.earlyWaiting(ctx, tx, marks); err != nil || early {
		return calls, err
	}
	marked, err := st.mark(ctx, tx, marks)
	if err != nil {
		return nil, err
	}
	var left []*call
	marks = marks[:0]
	for _, c := range calls {
		if !marked[c.mark.id] {
			left = append(left, c)
			continue
		}
		if len(c.mark.mids) > 0 {
			marks = append(marks, c.mark)
		}
		c.err = nil
	}
	if len(marks) > 0 {
		if err := st.insertParts(ctx, tx, marks); err != nil {
			return nil, err
		}
	}
	return left, nil
}

// bulkReceipts applies the receipts of calls whose parts are known and returns the
// calls to run alone: those whose parts are not (their receipts wait as early ones), or
// all of them when there is only one or two are for one part.
func bulkReceipts(ctx context.Context, tx store.Tx, st bulkStatements, calls []*call) ([]*call, error) {
	if len(calls) < 2 {
		return calls, nil // as in bulkMarks
	}
	type key struct{ link, mid string }
	seen := make(map[key]bool, len(calls))
	receipts := make([]*receiptArgs, 0, len(calls))
	for _, c := range calls {
		r := c.receipt
		k := key{r.link, r.messageID}
		if seen[k] {
			return calls, nil
		}
		seen[k] = true
		receipts = append(receipts, r)
		r.reset()
	}
	if err := st.setStatus(ctx, tx, receipts); err != nil {
		return nil, err
	}
	got, err := st.readParts(ctx, tx, receipts)
	if err != nil {
		return nil, err
	}
	var (
		settled []int64
		states  []string
	)
	for i, p := range got {
		if !p.found {
			continue
		}
		p.r.Status = calls[i].receipt.status
		if p.v.Valid && (p.r.State == StateSent || p.r.State == StateDelivered || p.r.State == StateUndeliverable) {
			p.r.State = p.v.String
			settled, states = append(settled, p.r.ID), append(states, p.v.String)
		}
		got[i] = p
	}
	if len(settled) > 0 {
		if err := st.settle(ctx, tx, calls[0].receipt.now, settled, states); err != nil {
			return nil, err
		}
	}
	var left []*call
	for i, c := range calls {
		p := got[i]
		if !p.found {
			left = append(left, c)
			continue
		}
		if err := c.receipt.applied(tx, p.r); err != nil {
			return nil, err
		}
		c.receipt.found(p.r)
		c.err = nil
	}
	return left, nil
}

// partRead is a receipt's part as readParts found it.
type partRead struct {
	found bool
	r     Receipted
	v     sql.NullString // the message's verdict after the receipt
}

// scanParts reads rows of receipts' parts, each its receipt's index (of n) and then
// partColumns, into one partRead per receipt. Two receipts for parts of one message roll
// the batch back: one by one, the first would see the message before the second's part
// changed, and the caller's work hears of each state in turn.
func scanParts(rows *sql.Rows, err error, n int) ([]partRead, error) {
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	got := make([]partRead, n)
	messages := make(map[int64]bool, n)
	for rows.Next() {
		var (
			i int
			p partRead
		)
		if err := rows.Scan(&i, &p.r.ID, &p.r.Kind, &p.r.To, &p.r.PaymentID, &p.r.Purpose, &p.r.State, &p.v); err != nil {
			return nil, err
		}
		if i < 0 || i >= n || got[i].found || messages[p.r.ID] {
			return nil, errBulkMismatch
		}
		messages[p.r.ID] = true
		p.found = true
		got[i] = p
	}
	return got, rows.Err()
}

// jsonSafe reports whether s goes through JSON and back unchanged: valid UTF-8.
func jsonSafe(s string) bool { return utf8.ValidString(s) }

// jsonString is s as a JSON string; s is jsonSafe.
func jsonString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

func boolDigit(b bool) string {
	if b {
		return "1"
	}
	return "0"
}

// sqliteBulk is bulk's statements on SQLite: fixed texts, their rows as one JSON array
// of arrays.
type sqliteBulk struct{}

// jsonRows is rows as one JSON array.
func jsonRows(rows []string) string { return "[" + strings.Join(rows, ",") + "]" }

func markParts(marks []*markArgs) []string {
	var parts []string
	for _, m := range marks {
		parts = append(parts, m.parts...)
	}
	return parts
}

func (sqliteBulk) earlyWaiting(ctx context.Context, tx store.Tx, marks []*markArgs) (bool, error) {
	parts := markParts(marks)
	if len(parts) == 0 {
		return false, nil
	}
	var one int
	err := tx.QueryRowContext(ctx, bulkEarlySQL, jsonRows(parts)).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	return err == nil, err
}

func (sqliteBulk) mark(ctx context.Context, tx store.Tx, marks []*markArgs) (map[int64]bool, error) {
	rows := make([]string, len(marks))
	for i, m := range marks {
		rows[i] = m.row
	}
	return scanIDs(tx.QueryContext(ctx, bulkMarkSQL, marks[0].now, jsonRows(rows)))
}

// scanIDs reads rows of one ID each into a set.
func scanIDs(rows *sql.Rows, err error) (map[int64]bool, error) {
	list, err := scanInt64s(rows, err)
	if err != nil {
		return nil, err
	}
	ids := make(map[int64]bool, len(list))
	for _, id := range list {
		ids[id] = true
	}
	return ids, nil
}

// scanInt64s reads rows of one integer each, in order.
func scanInt64s(rows *sql.Rows, err error) ([]int64, error) {
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var list []int64
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			return nil, err
		}
		list = append(list, id)
	}
	return list, rows.Err()
}

func (sqliteBulk) insertParts(ctx context.Context, tx store.Tx, marks []*markArgs) error {
	_, err := tx.ExecContext(ctx, bulkPartsSQL, jsonRows(markParts(marks)))
	return err
}

func receiptRows(receipts []*receiptArgs) string {
	rows := make([]string, len(receipts))
	for i, r := range receipts {
		rows[i] = r.row
	}
	return jsonRows(rows)
}

func (sqliteBulk) setStatus(ctx context.Context, tx store.Tx, receipts []*receiptArgs) error {
	_, err := tx.ExecContext(ctx, bulkStatusSQL, receiptRows(receipts))
	return err
}

func (sqliteBulk) readParts(ctx context.Context, tx store.Tx, receipts []*receiptArgs) ([]partRead, error) {
	rows, err := tx.QueryContext(ctx, bulkReadSQL, receiptRows(receipts))
	return scanParts(rows, err, len(receipts))
}

func (sqliteBulk) settle(ctx context.Context, tx store.Tx, now int64, ids []int64, states []string) error {
	rows := make([]string, len(ids))
	for i, id := range ids {
		rows[i] = "[" + strconv.FormatInt(id, 10) + "," + jsonString(states[i]) + "]"
	}
	_, err := tx.ExecContext(ctx, bulkSettleSQL, now, jsonRows(rows))
	return err
}

// The bulk statements. Each takes its rows as one JSON array of arrays; their texts
// never change, so the store prepares each once.
const (
	// bulkEarlySQL finds whether an early receipt waits for any of the parts
	// [link, message_id, outbox_id, part].
	bulkEarlySQL = `SELECT 1 FROM jsonb_each(?1) AS j
		JOIN early_receipts AS e ON e.link = j.value ->> 0 AND e.message_id = j.value ->> 1 LIMIT 1`
	// bulkMarkSQL is markSent's first UPDATE for each [id, link, message_ids,
	// receipts]; ?1 is now. RETURNING costs SQLite a temporary table per run, once
	// per batch here.
	bulkMarkSQL = `UPDATE messages
		SET state = CASE WHEN state = 'delivered' OR state = 'undeliverable' THEN state ELSE 'sent' END,
			link = j.link, message_ids = j.ids, next_attempt_at = 0, updated_at = ?1
		FROM (SELECT value ->> 0 AS id, value ->> 1 AS link, value ->> 2 AS ids, value ->> 3 AS receipts
			FROM jsonb_each(?2)) AS j
		WHERE messages.id = j.id AND messages.message_ids = '' AND ` + getsReceipts + ` = j.receipts
		RETURNING messages.id`
	// bulkPartsSQL records the parts [link, message_id, outbox_id, part] with no
	// receipt yet, as markSent's INSERT does when no early receipt waits.
	bulkPartsSQL = `INSERT INTO message_parts (link, message_id, outbox_id, part, status)
		SELECT value ->> 0, value ->> 1, value ->> 2, value ->> 3, '' FROM jsonb_each(?1) WHERE true
		ON CONFLICT (link, message_id) DO UPDATE
		SET outbox_id = excluded.outbox_id, part = excluded.part, status = excluded.status`
	// bulkStatusSQL is recordStatus for each receipt [link, message_id, status].
	bulkStatusSQL = `UPDATE message_parts SET status = j.status
		FROM (SELECT value ->> 0 AS link, value ->> 1 AS mid, value ->> 2 AS status FROM jsonb_each(?1)) AS j
		WHERE message_parts.link = j.link AND message_parts.message_id = j.mid`
	// bulkSettleSQL is settle for each [id, state]; ?1 is now.
	bulkSettleSQL = `UPDATE messages SET state = j.state, updated_at = ?1
		FROM (SELECT value ->> 0 AS id, value ->> 1 AS state FROM jsonb_each(?2)) AS j
		WHERE messages.id = j.id`
)

// bulkReadSQL is readPart for each receipt [link, message_id, status], with the
// receipt's index in the array first.
var bulkReadSQL = `SELECT j.key, ` + partColumns("instr") + `
	FROM jsonb_each(?1) AS j
	JOIN message_parts AS p ON p.link = j.value ->> 0 AND p.message_id = j.value ->> 1
	JOIN messages AS m ON m.id = p.outbox_id`
