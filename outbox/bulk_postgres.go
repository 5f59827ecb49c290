package outbox

import (
	"context"
	"database/sql"
	"errors"
	"slices"

	"github.com/payswitch/payswitch/store"
)

// pgBulk is bulk's statements on PostgreSQL: fixed texts, their rows as arrays that
// unnest unpacks. Each takes the locks the calls one by one take, in the same order
// (postgres.go): the parts' (all of the batch's at once, sorted), then the messages'.
// One by one, a receipt-asking MarkSent cost four statements and a receipt five, each a
// round trip to the server; in bulk a batch's MarkSents take four and its receipts five.
type pgBulk struct{}

func (pgBulk) earlyWaiting(ctx context.Context, tx store.Tx, marks []*markArgs) (bool, error) {
	var keys, links, mids []string
	for _, m := range marks {
		for _, mid := range m.mids {
			keys, links, mids = append(keys, partLock(m.link, mid)), append(links, m.link), append(mids, mid)
		}
	}
	if len(keys) == 0 {
		return false, nil
	}
	if err := lockPartKeys(ctx, tx, keys); err != nil {
		return false, err
	}
	var one int
	err := tx.QueryRowContext(ctx, pgBulkEarlySQL, links, mids).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	return err == nil, err
}

func (pgBulk) mark(ctx context.Context, tx store.Tx, marks []*markArgs) (map[int64]bool, error) {
	ids, links, texts, receipts := make([]int64, len(marks)), make([]string, len(marks)), make([]string, len(marks)),
		make([]bool, len(marks))
	for i, m := range marks {
		ids[i], links[i], texts[i], receipts[i] = m.id, m.link, m.text, m.receipts
	}
	return scanIDs(tx.QueryContext(ctx, pgBulkMarkSQL, marks[0].now, ids, links, texts, receipts))
}

func (pgBulk) insertParts(ctx context.Context, tx store.Tx, marks []*markArgs) error {
	var (
		links, mids []string
		ids         []int64
		parts       []int32
	)
	for _, m := range marks {
		for i, mid := range m.mids {
			links, mids, ids, parts = append(links, m.link), append(mids, mid), append(ids, m.id), append(parts, int32(i))
		}
	}
	_, err := tx.ExecContext(ctx, pgBulkPartsSQL, links, mids, ids, parts)
	return err
}

// receiptColumns is receipts as unnest's arrays: links, SMSC IDs, statuses.
func receiptColumns(receipts []*receiptArgs) (links, mids, statuses []string) {
	links, mids, statuses = make([]string, len(receipts)), make([]string, len(receipts)), make([]string, len(receipts))
	for i, r := range receipts {
		links[i], mids[i], statuses[i] = r.link, r.messageID, r.status
	}
	return links, mids, statuses
}

// setStatus locks the receipts' parts, records their statuses, then locks the messages
// of the parts it found, so that readParts reads each message's last word (as
// recordStatus does for one). Two receipts for parts of one message roll the batch
// back, as readParts would on SQLite.
func (pgBulk) setStatus(ctx context.Context, tx store.Tx, receipts []*receiptArgs) error {
	links, mids, statuses := receiptColumns(receipts)
	keys := make([]string, len(receipts))
	for i := range receipts {
		keys[i] = partLock(links[i], mids[i])
	}
	if err := lockPartKeys(ctx, tx, keys); err != nil {
		return err
	}
	messages, err := scanInt64s(tx.QueryContext(ctx, pgBulkStatusSQL, links, mids, statuses))
	if err != nil {
		return err
	}
	if len(messages) == 0 {
		return nil
	}
	slices.Sort(messages)
	if len(slices.Compact(slices.Clone(messages))) != len(messages) {
		return errBulkMismatch
	}
	_, err = tx.ExecContext(ctx, pgBulkLockMessagesSQL, messages)
	return err
}

func (pgBulk) readParts(ctx context.Context, tx store.Tx, receipts []*receiptArgs) ([]partRead, error) {
	links, mids, _ := receiptColumns(receipts)
	rows, err := tx.QueryContext(ctx, pgBulkReadSQL, links, mids)
	return scanParts(rows, err, len(receipts))
}

func (pgBulk) settle(ctx context.Context, tx store.Tx, now int64, ids []int64, states []string) error {
	_, err := tx.ExecContext(ctx, pgBulkSettleSQL, now, ids, states)
	return err
}

// The statements, as bulk.go's for SQLite.
const (
	// pgBulkEarlySQL: args the parts' links and SMSC IDs.
	pgBulkEarlySQL = `SELECT 1 FROM unnest(?::text[], ?::text[]) AS j (link, mid)
		JOIN early_receipts AS e ON e.link = j.link AND e.message_id = j.mid LIMIT 1`
	// pgBulkMarkSQL: args now, then the messages' IDs, links, message_ids and receipts.
	pgBulkMarkSQL = `UPDATE messages
		SET state = CASE WHEN state = 'delivered' OR state = 'undeliverable' THEN state ELSE 'sent' END,
			link = j.link, message_ids = j.ids, next_attempt_at = 0, updated_at = ?1
		FROM unnest(?2::bigint[], ?3::text[], ?4::text[], ?5::boolean[]) AS j (id, link, ids, receipts)
		WHERE messages.id = j.id AND messages.message_ids = '' AND ` + getsReceipts + ` = j.receipts
		RETURNING messages.id`
	// pgBulkPartsSQL: args the parts' links, SMSC IDs, messages and part numbers.
	pgBulkPartsSQL = `INSERT INTO message_parts (link, message_id, outbox_id, part, status)
		SELECT link, mid, id, part, '' FROM unnest(?::text[], ?::text[], ?::bigint[], ?::integer[]) AS j (link, mid, id, part)
		ON CONFLICT (link, message_id) DO UPDATE
		SET outbox_id = excluded.outbox_id, part = excluded.part, status = excluded.status`
	// pgBulkStatusSQL: args the receipts' links, SMSC IDs and statuses; returns the
	// messages of the parts found.
	pgBulkStatusSQL = `UPDATE message_parts SET status = j.status
		FROM unnest(?::text[], ?::text[], ?::text[]) AS j (link, mid, status)
		WHERE message_parts.link = j.link AND message_parts.message_id = j.mid
		RETURNING message_parts.outbox_id`
	// pgBulkLockMessagesSQL: arg the messages' IDs, sorted.
	pgBulkLockMessagesSQL = `SELECT count(*) FROM (SELECT id FROM messages WHERE id = ANY(?) ORDER BY id FOR UPDATE) AS l`
	// pgBulkSettleSQL: args now, then the messages' IDs and states.
	pgBulkSettleSQL = `UPDATE messages SET state = j.state, updated_at = ?1
		FROM unnest(?2::bigint[], ?3::text[]) AS j (id, state) WHERE messages.id = j.id`
)

// pgBulkReadSQL: args the receipts' links and SMSC IDs.
var pgBulkReadSQL = `SELECT j.n - 1, ` + partColumns("strpos") + `
	FROM unnest(?::text[], ?::text[]) WITH ORDINALITY AS j (link, mid, n)
	JOIN message_parts AS p ON p.link = j.link AND p.message_id = j.mid
	JOIN messages AS m ON m.id = p.outbox_id`
