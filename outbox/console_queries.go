package outbox

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sort"
	"time"
)

// PaymentMessage is a message sent for a payment, as the operators' console shows it.
// Text is empty when the message is sealed (a code SMS, a call's script): those are
// never shown, not even to an operator.
type PaymentMessage struct {
	Message
	Sealed   bool
	Receipts []string // each part's receipt status, in part order ("" while none came)
}

// Message windows. No index finds messages by payment: migration 2 dropped it, which
// saved a B-tree insert for every SMS on the store's one writer, and only the console
// asks. Messages are numbered in the order they were queued, with the time they were
// queued, so the messages of a payment are found near the times something happened to
// it: PaymentMessages looks, for each such time, at the messages queued from a little
// before it, through the rowid. paymentWindowRows bounds each look: the 2 s after an
// event at a thousand payments a second, several messages each.
const (
	paymentWindowBefore = 2 * time.Second
	paymentWindowRows   = 10000
)

// PaymentMessages returns the messages queued for paymentID around the given times
// (when the payment was made and each time its state or authentication changed), oldest
// first. Sealed texts stay sealed and are withheld.
func (o *Outbox) PaymentMessages(ctx context.Context, paymentID string, around []time.Time) ([]PaymentMessage, error) {
	if paymentID == "" {
		return nil, nil
	}
	db := o.db.Reader()
	seen := map[int64]bool{}
	var out []PaymentMessage
	starts := map[int64]bool{}
	for _, t := range around {
		first, err := firstQueuedAt(ctx, db, micros(t.Add(-paymentWindowBefore)))
		if err != nil {
			return nil, err
		}
		if first == 0 || starts[first] {
			continue
		}
		starts[first] = true
		rows, err := db.QueryContext(ctx, `SELECT `+messageCols+` FROM messages
			WHERE id >= ? AND id < ? AND payment_id = ? ORDER BY id`, first, first+paymentWindowRows, paymentID)
		if err != nil {
			return nil, fmt.Errorf("outbox: messages of %s: %w", paymentID, err)
		}
		for rows.Next() {
			m, sealed, err := scanMessage(rows)
			if err != nil {
				rows.Close()
				return nil, fmt.Errorf("outbox: messages of %s: %w", paymentID, err)
			}
			if seen[m.ID] {
				continue
			}
			seen[m.ID] = true
			if sealed || m.Purpose == "otp" {
				m.Text = "" // never open a code
			}
			out = append(out, PaymentMessage{Message: m, Sealed: sealed || m.Purpose == "otp"})
		}
		if err := rows.Close(); err != nil {
			return nil, fmt.Errorf("outbox: messages of %s: %w", paymentID, err)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	for i := range out {
		r, err := receiptsOf(ctx, db, out[i].ID)
		if err != nil {
			return nil, err
		}
		out[i].Receipts = r
	}
	return out, nil
}

// firstQueuedAt is the lowest message id queued at or after micros (0: none), found
// by bisecting the ids: queue times grow with the id (one writer numbers them in the
// order it queues them), so each probe is one seek of the primary key.
func firstQueuedAt(ctx context.Context, db *sql.DB, at int64) (int64, error) {
	var lo, hi sql.NullInt64
	if err := db.QueryRowContext(ctx, `SELECT min(id), max(id) FROM messages`).Scan(&lo, &hi); err != nil {
		return 0, fmt.Errorf("outbox: message ids: %w", err)
	}
	if !hi.Valid {
		return 0, nil
	}
	// Every id below l was queued before at; no id in [h, best) exists.
	l, h, best := lo.Int64, hi.Int64+1, int64(0)
	for l < h {
		mid := l + (h-l)/2
		var id, created int64
		err := db.QueryRowContext(ctx, `SELECT id, created_at FROM messages WHERE id >= ? ORDER BY id LIMIT 1`, mid).Scan(&id, &created)
		if errors.Is(err, sql.ErrNoRows) {
			h = mid
			continue
		}
		if err != nil {
			return 0, fmt.Errorf("outbox: message at %d: %w", mid, err)
		}
		if created >= at {
			best, h = id, mid
		} else {
			l = id + 1
		}
	}
	return best, nil
}

func receiptsOf(ctx context.Context, db *sql.DB, id int64) ([]string, error) {
	rows, err := db.QueryContext(ctx, `SELECT status FROM message_parts WHERE outbox_id = ? ORDER BY part`, id)
	if err != nil {
		return nil, fmt.Errorf("outbox: receipts of %d: %w", id, err)
	}
	defer rows.Close()
	var rs []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			return nil, fmt.Errorf("outbox: receipts of %d: %w", id, err)
		}
		rs = append(rs, s)
	}
	return rs, rows.Err()
}
