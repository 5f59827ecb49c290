package outbox

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/payswitch/payswitch/store"
)

// ReceiptFunc is a caller's work on a delivery receipt applied to its message, in the
// store transaction that applies it (r.State is the message's state after it; r.Status
// the receipt's stat): at ReceiptThen when the message's part is known, or at the
// MarkSentThen that records the part when the receipt came first (it waited in
// early_receipts; r.Early says so). Either way the receipt and what the caller makes of
// it commit together, and the outbox never calls out on its own: only the function its
// caller gave it for that call. It runs on the store's writer and, like a store.Write
// function, may run twice and must not change memory that outlives it; after, when not
// nil, runs once the transaction is durable. Its error undoes the receipt (or the
// MarkSent) and is returned by that call.
type ReceiptFunc func(ctx context.Context, tx store.Tx, r Receipted) (after func(), err error)

// afterEffects collects the after-effects of a ReceiptFunc's runs in one store operation.
// The operation may run twice, so it starts from reset each time.
type afterEffects struct{ afters []func() }

func (a *afterEffects) reset() { a.afters = a.afters[:0] }

// run runs fn (if any) on r in tx and keeps its after-effect.
func (a *afterEffects) run(ctx context.Context, tx store.Tx, fn ReceiptFunc, r Receipted) error {
	if fn == nil {
		return nil
	}
	after, err := fn(ctx, tx, r)
	if err == nil && after != nil {
		a.afters = append(a.afters, after)
	}
	return err
}

// done runs the after-effects, once the operation is durable.
func (a *afterEffects) done() {
	for _, f := range a.afters {
		f()
	}
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
	// Early is true for a receipt that came before the MarkSent recording its part, and
	// was applied by that MarkSent.
	Early bool
}

// ReceiptWith is Receipt with the caller's own work in the receipt's store transaction:
// when the part is known, with runs right after the receipt is applied, and its error
// undoes the receipt and is returned. It runs on the store's writer goroutine and, like
// a store.Write function, may run twice and must not change memory that outlives it
// before ReceiptWith returns nil. with may be nil; it does not run for a receipt that
// comes before its MarkSent (MarkSentThen's function does, then). ReceiptWith does not
// read the message back, as Receipt does.
func (o *Outbox) ReceiptWith(ctx context.Context, link, messageID, status string,
	with func(tx store.Tx, r Receipted) error) (Receipted, bool, error) {
	var then ReceiptFunc
	if with != nil {
		then = func(_ context.Context, tx store.Tx, r Receipted) (func(), error) { return nil, with(tx, r) }
	}
	return o.receipt(ctx, link, messageID, status, then)
}

// ReceiptThen is ReceiptWith with a ReceiptFunc: then (which may be nil) gets the
// message the receipt was applied to, in the receipt's transaction, and its after-effect
// runs once the receipt is durable, before ReceiptThen returns.
func (o *Outbox) ReceiptThen(ctx context.Context, link, messageID, status string, then ReceiptFunc) (Receipted, bool, error) {
	return o.receipt(ctx, link, messageID, status, then)
}

// readPart reads, inside a receipt's write and once the part's status is recorded, the
// message that part (link, message_id) belongs to, with its verdict. A receipt so takes
// three statements (the part's status, this, the message's new state), or two when its
// message's state does not change (ENROUTE, one part of several, a message claimed
// again). It took four: find the part, record its status, settle in an UPDATE that
// evaluated the verdict twice (in SET and in WHERE), read the message for ReceiptWith;
// the writer's CPU per receipt fell (BenchmarkReceiptWriter; figures in the README's
// performance section). UPDATE ... RETURNING, for the part's outbox_id or the settled
// message, saved no statement's worth: SQLite builds a temporary table for RETURNING
// rows on every run, which cost as much as the statement it replaced.
//
// A message of one part, most of them, gets its verdict from the part's own status:
// only a message with two IDs or more (a comma in message_ids) reads its parts through
// message_parts_by_outbox. Every part recorded for a message has its ID in the
// message's message_ids (MarkSent), so a message with one ID there has no other part.
var readPart = readPartSQL("instr")

// pgReadPart is readPart on PostgreSQL, whose instr is called strpos.
var pgReadPart = readPartSQL("strpos")

// readPartSQL is readPart with the function that finds a text in another named find.
func readPartSQL(find string) string {
	return `SELECT ` + partColumns(find) + `
	FROM message_parts AS p JOIN messages AS m ON m.id = p.outbox_id
	WHERE p.link = ? AND p.message_id = ?`
}

// partColumns is what readPart (and bulk's bulkReadSQL) reads of a part p's message m:
// the Receipted columns and the message's verdict, find naming instr.
func partColumns(find string) string {
	return `m.id, m.kind, m.to_addr, m.payment_id, m.purpose, m.state,
		CASE WHEN ` + find + `(m.message_ids, ',') = 0 THEN ` + verdictOfStatus("p.status") + `
		ELSE ` + verdictOf("p.outbox_id") + ` END`
}

// receipt is the write of Receipt, ReceiptWith and ReceiptThen.
func (o *Outbox) receipt(ctx context.Context, link, messageID, status string, then ReceiptFunc) (Receipted, bool, error) {
	now := micros(o.now())
	messageID, status = storable(messageID), storable(strings.ToUpper(strings.TrimSpace(status)))
	var (
		r     Receipted
		found bool
		a     afterEffects
	)
	c := &call{fn: func(tx store.Tx) (err error) {
		a.reset()
		r, found, err = receiptTx(ctx, tx, o.pg, link, messageID, status, now, func(r Receipted) error {
			return a.run(ctx, tx, then, r)
		})
		return err
	}}
	if o.w.bulk != nil {
		if c.receipt = newReceiptArgs(o.pg, link, messageID, status, now); c.receipt != nil { // built here, not on the writer
			c.receipt.reset = a.reset
			c.receipt.applied = func(tx store.Tx, got Receipted) error { return a.run(ctx, tx, then, got) }
			c.receipt.found = func(got Receipted) { r, found = got, true }
		}
	}
	err := o.w.doCall(ctx, c)
	if err != nil {
		return Receipted{}, false, fmt.Errorf("outbox: receipt %s/%s: %w", link, messageID, err)
	}
	a.done()
	return r, found, nil
}

// receiptTx applies a receipt inside tx; status is normalised (upper case, trimmed).
// An unknown part gives false and its receipt waits in early_receipts; a known one's
// message is then passed to applied. pg says tx is on PostgreSQL (see postgres.go).
func receiptTx(ctx context.Context, tx store.Tx, pg bool, link, messageID, status string, now int64,
	applied func(Receipted) error) (Receipted, bool, error) {
	found, err := recordStatus(ctx, tx, pg, link, messageID, status)
	if err != nil {
		return Receipted{}, false, err
	}
	if !found {
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
	q := readPart
	if pg {
		q = pgReadPart
	}
	if err := tx.QueryRowContext(ctx, q, link, messageID).Scan(
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

// recordStatus records status as part (link, messageID)'s receipt, and says whether the
// part is known. On PostgreSQL it locks the part first and, when it is known, its
// message after, so that what is read next of the message and its parts is the last word
// (see postgres.go).
func recordStatus(ctx context.Context, tx store.Tx, pg bool, link, messageID, status string) (bool, error) {
	if !pg {
		res, err := tx.ExecContext(ctx, `UPDATE message_parts SET status = ? WHERE link = ? AND message_id = ?`,
			status, link, messageID)
		if err != nil {
			return false, err
		}
		n, err := res.RowsAffected()
		return n > 0, err
	}
	if err := lockParts(ctx, tx, pg, link, []string{messageID}); err != nil {
		return false, err
	}
	var outboxID int64
	err := tx.QueryRowContext(ctx, `UPDATE message_parts SET status = ? WHERE link = ? AND message_id = ?
		RETURNING outbox_id`, status, link, messageID).Scan(&outboxID)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	if _, err := tx.ExecContext(ctx, pgLockMessageSQL, outboxID); err != nil {
		return false, err
	}
	return true, nil
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
