package ledger

import (
	"context"
	"fmt"
	"iter"
	"time"
)

// AccountEntry is one entry of an account as a sales report reads it: when, which way,
// how much, and the kind and payment of its transfer.
type AccountEntry struct {
	Time      time.Time
	Direction string // Debit or Credit
	Amount    int64
	Kind      string
	PaymentID string
}

// AccountEntriesOfKinds yields accountID's entries within span s whose transfer is of one
// of kinds, in journal order. It reads the (account_id, seq) index, so that the cost
// follows the account's entries in the span, not the journal's; each entry finds its
// transfer by primary key.
func AccountEntriesOfKinds(ctx context.Context, q Querier, accountID string, s Span, kinds ...string) iter.Seq2[AccountEntry, error] {
	return func(yield func(AccountEntry, error) bool) {
		fail := func(err error) { yield(AccountEntry{}, fmt.Errorf("ledger: read entries of %s: %w", accountID, err)) }
		want := make(map[string]bool, len(kinds))
		for _, k := range kinds {
			want[k] = true
		}
		rows, err := q.QueryContext(ctx, `SELECT e.time, e.direction, e.amount, t.kind, e.payment_id
			FROM entries e JOIN transfers t ON t.id = e.transfer_id
			WHERE e.account_id = ? AND e.seq BETWEEN ? AND ? ORDER BY e.seq`, accountID, s.First, s.Last)
		if err != nil {
			fail(err)
			return
		}
		defer rows.Close()
		for rows.Next() {
			var e AccountEntry
			var at string
			if err := rows.Scan(&at, &e.Direction, &e.Amount, &e.Kind, &e.PaymentID); err != nil {
				fail(err)
				return
			}
			if !want[e.Kind] {
				continue
			}
			if e.Time, err = time.Parse(TimeLayout, at); err != nil {
				fail(err)
				return
			}
			if !yield(e, nil) {
				return
			}
		}
		if err := rows.Err(); err != nil {
			fail(err)
		}
	}
}
