package ledger

import (
	"context"
	"fmt"
	"strings"
)

// MaxNamed bounds AccountsNamed.
const MaxNamed = 50

// AccountsNamed returns up to limit accounts (at most MaxNamed) whose name contains s,
// ignoring ASCII case, in id order, for the operators' console's search box. No index
// holds names, so it reads the accounts table (one row per account, not per entry);
// the console looks numbers, codes and IDs up by their indexes first.
func (l *Ledger) AccountsNamed(ctx context.Context, s string, limit int) ([]Account, error) {
	if limit <= 0 || limit > MaxNamed {
		limit = MaxNamed
	}
	esc := strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`).Replace(s)
	rows, err := l.db.Reader().QueryContext(ctx, `SELECT `+accountColumns+` FROM accounts
		WHERE name LIKE ? ESCAPE '\' ORDER BY id LIMIT ?`, "%"+esc+"%", limit)
	if err != nil {
		return nil, fmt.Errorf("ledger: accounts named: %w", err)
	}
	defer rows.Close()
	var as []Account
	for rows.Next() {
		a, err := scanAccount(rows)
		if err != nil {
			return nil, fmt.Errorf("ledger: accounts named: %w", err)
		}
		as = append(as, a)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("ledger: accounts named: %w", err)
	}
	return as, nil
}
