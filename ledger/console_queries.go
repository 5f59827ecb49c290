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
	like := "LIKE" // SQLite's ignores ASCII case
	if l.pg {
		like = "ILIKE"
	}
	rows, err := l.db.Reader().QueryContext(ctx, `SELECT `+accountColumns+` FROM accounts
		WHERE name `+like+` ? ESCAPE '\' ORDER BY id LIMIT ?`, "%"+esc+"%", limit)
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

// KeyDateRun is the transfers of one date and currency among those whose keys start with
// a prefix and a YYYY-MM-DD date: for settlement, one day's run (a transfer per merchant).
type KeyDateRun struct {
	Date      string // the 10 characters after the prefix
	Currency  string
	Transfers int
	Total     int64
}

// MaxKeyDateRuns bounds KeyDateRuns.
const MaxKeyDateRuns = 100

// KeyDateRuns sums the transfers whose key starts with prefix, by the date that follows
// the prefix in the key and by currency, newest date first, at most limit rows (at most
// MaxKeyDateRuns). It is how the console lists settlement runs: settlement books no
// record of a run but keys each transfer "settlement:DATE:MERCHANT" (package settlement
// owns that format, so the prefix is the caller's). The range on key is read from the
// key's UNIQUE index, so it visits the prefix's transfers alone (one per merchant per
// day settled), never the payments.
func (l *Ledger) KeyDateRuns(ctx context.Context, prefix string, limit int) ([]KeyDateRun, error) {
	if prefix == "" {
		return nil, fmt.Errorf("ledger: key date runs: empty prefix")
	}
	if limit <= 0 || limit > MaxKeyDateRuns {
		limit = MaxKeyDateRuns
	}
	// Every key starting with prefix sorts in [prefix, end): end is prefix with its last
	// byte incremented (a byte of 0xff would carry; no prefix of ours ends in one).
	end := prefix[:len(prefix)-1] + string([]byte{prefix[len(prefix)-1] + 1})
	rows, err := l.db.Reader().QueryContext(ctx, `SELECT substr(key, ?, 10) AS day, currency, count(*), sum(amount)
		FROM transfers WHERE key >= ? AND key < ? GROUP BY day, currency ORDER BY day DESC, currency LIMIT ?`,
		len(prefix)+1, prefix, end, limit)
	if err != nil {
		return nil, fmt.Errorf("ledger: key date runs: %w", err)
	}
	defer rows.Close()
	var runs []KeyDateRun
	for rows.Next() {
		var r KeyDateRun
		if err := rows.Scan(&r.Date, &r.Currency, &r.Transfers, &r.Total); err != nil {
			return nil, fmt.Errorf("ledger: key date runs: %w", err)
		}
		runs = append(runs, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("ledger: key date runs: %w", err)
	}
	return runs, nil
}
