package payswitch

import (
	"context"
	"fmt"
	"strings"

	"github.com/payswitch/payswitch/ledger"
)

// PaymentStores returns the store of each payment of ids that was paid to a store's till
// (contract section 11); payments to a merchant's own code, and ids that are no
// payment's, are left out. Sales reports and settlement ask it in the read transaction
// q of their ledger reads, a batch at a time, so that they read one snapshot and name no
// table of this package.
func PaymentStores(ctx context.Context, q ledger.Querier, ids []string) (map[string]string, error) {
	out := make(map[string]string)
	if len(ids) == 0 {
		return out, nil
	}
	args := make([]any, len(ids))
	for i, id := range ids {
		args[i] = id
	}
	rows, err := q.QueryContext(ctx, `SELECT id, store FROM payments
		WHERE id IN (?`+strings.Repeat(",?", len(ids)-1)+`) AND store <> ''`, args...)
	if err != nil {
		return nil, fmt.Errorf("payswitch: stores of payments: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var id, store string
		if err := rows.Scan(&id, &store); err != nil {
			return nil, fmt.Errorf("payswitch: stores of payments: %w", err)
		}
		out[id] = store
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("payswitch: stores of payments: %w", err)
	}
	return out, nil
}
