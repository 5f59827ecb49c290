package outbox

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"

	"github.com/payswitch/payswitch/store"
)

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
//
// An early receipt applied here is known to nobody else: a caller that acts on receipts
// (the switch records a code's delivery) marks sent with MarkSentThen.
func (o *Outbox) MarkSent(ctx context.Context, m Message, link string, messageIDs []string) error {
	return o.MarkSentThen(ctx, m, link, messageIDs, nil)
}

// MarkSentThen is MarkSent that hands the receipts it applies (early ones, that came
// before it; Receipted.Early is true) to then, in its own transaction, as ReceiptThen
// hands a receipt to its caller: a receipt reaches the caller's work in the write that
// applies it, whichever of the two calls applies it. then may be nil.
func (o *Outbox) MarkSentThen(ctx context.Context, m Message, link string, messageIDs []string, then ReceiptFunc) error {
	now := micros(o.now())
	parts := partIDs(messageIDs)
	receipts := m.Kind == KindCall || m.RequestReceipt
	text := idsText(parts) // here, not on the store's writer
	var a afterEffects
	c := &call{fn: func(tx store.Tx) error {
		a.reset()
		return markSent(ctx, tx, o.pg, m.ID, link, parts, text, receipts, now, func(r Receipted) error {
			return a.run(ctx, tx, then, r)
		})
	}}
	if o.w.bulk != nil {
		c.mark = newMarkArgs(o.pg, m.ID, link, parts, text, receipts, now) // here, not on the store's writer
	}
	if err := o.w.doCall(ctx, c); err != nil {
		return fmt.Errorf("outbox: mark %d sent: %w", m.ID, err)
	}
	a.done()
	return nil
}

// partIDs returns ids without empty and repeated ones, in order, each as the outbox
// keeps it (storable).
func partIDs(ids []string) []string {
	out := make([]string, 0, len(ids))
	for _, id := range ids {
		if id = storable(id); id != "" && !slices.Contains(out, id) {
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
// that came before this MarkSent were applied to it (MarkSentThen's function's turn).
// pg says tx is on PostgreSQL, where the parts are locked before the message (see
// postgres.go).
func markSent(ctx context.Context, tx store.Tx, pg bool, id int64, link string, parts []string, text string, receipts bool, now int64,
	applied func(Receipted) error) error {
	locked := receipts
	if err := lockParts(ctx, tx, pg && locked, link, parts); err != nil {
		return err
	}
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
		q := `SELECT state, message_ids, ` + getsReceipts + ` FROM messages WHERE id = ?`
		if pg {
			q += ` FOR UPDATE`
		}
		err := tx.QueryRowContext(ctx, q, id).Scan(&state, &text, &receipts)
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
	if !locked { // the caller did not know the message gets receipts: rare
		if err := lockParts(ctx, tx, pg, link, parts); err != nil {
			return err
		}
	}
	early := "" // the last part with an early receipt
	for i, mid := range parts {
		// A receipt that overtook us (a deliver_sm can come before the submit_sm_resp
		// is recorded) waits in early_receipts: the part takes its status, and the
		// DELETE that removes it says whether there was one. There almost never is,
		// and reading it first with a SELECT cost the writer a query's bookkeeping in
		// database/sql for nothing (the README's performance section has the figure).
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
	// submit_sm_resp are few. The caller's function then hears of it as it would have
	// at ReceiptThen.
	r := Receipted{ID: id, Early: true}
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
