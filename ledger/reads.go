package ledger

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"iter"
	"time"
)

// The reads below are for the packages that report on the books (audit, settlement),
// so that the ledger's tables are named in this package alone. Each takes the
// transaction to read in: a report that reads the ledger and other packages' tables
// (the auditor export reads otp's auth events too) passes them all the same one, so that
// everything it writes describes one snapshot.

// Querier is what the reads need: a read transaction (*sql.Tx) or the store writer's
// (store.Tx).
type Querier interface {
	QueryContext(ctx context.Context, q string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, q string, args ...any) *sql.Row
}

// Span is a run of the journal: the entries First..Last (none when Last < First), and
// PrevHash, the hash the first one links to (GenesisHash when First is 1).
type Span struct {
	First, Last int64
	PrevHash    string
}

// JournalSpan returns the span of the entries whose time is in [from, to); a zero from
// or to leaves that end open. The journal's seqs are gapless from 1 and its times never
// run backwards, so a time range is one run of seqs, found by binary search on the
// primary key rather than a scan.
func JournalSpan(ctx context.Context, q Querier, from, to time.Time) (Span, error) {
	var maxSeq int64
	if err := q.QueryRowContext(ctx, `SELECT COALESCE(MAX(seq), 0) FROM entries`).Scan(&maxSeq); err != nil {
		return Span{}, fmt.Errorf("ledger: read journal head: %w", err)
	}
	first, last := int64(1), maxSeq
	var err error
	if !from.IsZero() {
		if first, err = seqAtOrAfter(ctx, q, maxSeq, FormatTime(from)); err != nil {
			return Span{}, err
		}
	}
	if !to.IsZero() {
		end, err := seqAtOrAfter(ctx, q, maxSeq, FormatTime(to))
		if err != nil {
			return Span{}, err
		}
		last = end - 1
	}
	s := Span{First: first, Last: max(last, first-1), PrevHash: GenesisHash}
	if first > 1 {
		if err := q.QueryRowContext(ctx, `SELECT hash FROM entries WHERE seq = ?`, first-1).Scan(&s.PrevHash); err != nil {
			return Span{}, fmt.Errorf("ledger: read entry %d: %w", first-1, err)
		}
	}
	return s, nil
}

// seqAtOrAfter returns the smallest seq in 1..maxSeq whose time (as stored, TimeLayout)
// is at or after t, or maxSeq+1 when none is.
func seqAtOrAfter(ctx context.Context, q Querier, maxSeq int64, t string) (int64, error) {
	lo, hi := int64(1), maxSeq+1
	for lo < hi {
		mid := lo + (hi-lo)/2
		var ts string
		if err := q.QueryRowContext(ctx, `SELECT time FROM entries WHERE seq = ?`, mid).Scan(&ts); err != nil {
			return 0, fmt.Errorf("ledger: read entry %d (the journal's seqs should be gapless): %w", mid, err)
		}
		if ts >= t {
			hi = mid
		} else {
			lo = mid + 1
		}
	}
	return lo, nil
}

// JournalEntries yields the entries of span s in seq order, each with TimeText as
// stored (the text its hash covers). An error ends the walk: it is yielded with a zero
// Entry.
func JournalEntries(ctx context.Context, q Querier, s Span) iter.Seq2[Entry, error] {
	return func(yield func(Entry, error) bool) {
		rows, err := q.QueryContext(ctx, `SELECT `+entryColumns+` FROM entries WHERE seq BETWEEN ? AND ? ORDER BY seq`,
			s.First, s.Last)
		if err != nil {
			yield(Entry{}, fmt.Errorf("ledger: read journal: %w", err))
			return
		}
		defer rows.Close()
		for rows.Next() {
			e, err := scanEntry(rows)
			if err != nil {
				yield(Entry{}, fmt.Errorf("ledger: read journal: %w", err))
				return
			}
			if !yield(e, nil) {
				return
			}
		}
		if err := rows.Err(); err != nil {
			yield(Entry{}, fmt.Errorf("ledger: read journal: %w", err))
		}
	}
}

// SpanBalances is an account with its balance before and after a span of the journal.
type SpanBalances struct {
	Account
	// Opening is the balance_after of the account's last entry before the span, Closing
	// that of its last entry up to the span's end; 0 when it has none.
	Opening, Closing int64
}

// AccountsAcross yields every account in id order with its balances at either end of
// span s. Each balance is one probe of the (account_id, seq) index, so the cost grows
// with the accounts, not with the journal. An error ends the walk: it is yielded with a
// zero SpanBalances.
func AccountsAcross(ctx context.Context, q Querier, s Span) iter.Seq2[SpanBalances, error] {
	return func(yield func(SpanBalances, error) bool) {
		rows, err := q.QueryContext(ctx, `SELECT `+accountColumns+`,
				COALESCE((SELECT e.balance_after FROM entries e WHERE e.account_id = a.id AND e.seq < ?1
					ORDER BY e.seq DESC LIMIT 1), 0),
				COALESCE((SELECT e.balance_after FROM entries e WHERE e.account_id = a.id AND e.seq <= ?2
					ORDER BY e.seq DESC LIMIT 1), 0)
			FROM accounts a ORDER BY a.id`, s.First, s.Last)
		if err != nil {
			yield(SpanBalances{}, fmt.Errorf("ledger: read accounts: %w", err))
			return
		}
		defer rows.Close()
		for rows.Next() {
			var b SpanBalances
			var created string
			var debits, credits, pending int64
			if err := rows.Scan(&b.ID, &b.Type, &b.Currency, &b.Name, &b.MSISDN, &b.Code, &b.Status,
				&created, &debits, &credits, &pending, &b.Opening, &b.Closing); err != nil {
				yield(SpanBalances{}, fmt.Errorf("ledger: read accounts: %w", err))
				return
			}
			b.CreatedAt = parseTime(created)
			b.Balance = balance(debits, credits, pending)
			if !yield(b, nil) {
				return
			}
		}
		if err := rows.Err(); err != nil {
			yield(SpanBalances{}, fmt.Errorf("ledger: read accounts: %w", err))
		}
	}
}

// Merchants returns every merchant account, ordered by code (then id).
func Merchants(ctx context.Context, q Querier) ([]Account, error) {
	rows, err := q.QueryContext(ctx, `SELECT `+accountColumns+` FROM accounts
		WHERE type = 'merchant' ORDER BY code, id`)
	if err != nil {
		return nil, fmt.Errorf("ledger: read merchants: %w", err)
	}
	defer rows.Close()
	var as []Account
	for rows.Next() {
		a, err := scanAccount(rows)
		if err != nil {
			return nil, fmt.Errorf("ledger: read merchants: %w", err)
		}
		as = append(as, a)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("ledger: read merchants: %w", err)
	}
	return as, nil
}

// KindTotal counts and sums one account's entries of one direction in transfers of one
// kind.
type KindTotal struct {
	Kind, Direction string
	Count, Amount   int64
}

// TotalsByKind returns accountID's entries within span s summed by transfer kind and
// direction (a merchant's day of payments and reversals, say), read on the
// (account_id, seq) index so that the cost follows the account's entries in the span.
func TotalsByKind(ctx context.Context, q Querier, accountID string, s Span) ([]KindTotal, error) {
	rows, err := q.QueryContext(ctx, `SELECT t.kind, e.direction, count(*), COALESCE(SUM(e.amount), 0)
		FROM entries e JOIN transfers t ON t.id = e.transfer_id
		WHERE e.account_id = ? AND e.seq BETWEEN ? AND ?
		GROUP BY t.kind, e.direction`, accountID, s.First, s.Last)
	if err != nil {
		return nil, fmt.Errorf("ledger: read totals of %s: %w", accountID, err)
	}
	defer rows.Close()
	var ts []KindTotal
	for rows.Next() {
		var t KindTotal
		if err := rows.Scan(&t.Kind, &t.Direction, &t.Count, &t.Amount); err != nil {
			return nil, fmt.Errorf("ledger: read totals of %s: %w", accountID, err)
		}
		ts = append(ts, t)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("ledger: read totals of %s: %w", accountID, err)
	}
	return ts, nil
}

// TransferByKey returns the transfer booked under the idempotency key key; none is
// ErrNotFound.
func TransferByKey(ctx context.Context, q Querier, key string) (Transfer, error) {
	tr, err := scanTransfer(q.QueryRowContext(ctx, `SELECT `+transferColumns+` FROM `+transfersAndEntries+`
		WHERE t.key = ?`, key))
	if errors.Is(err, sql.ErrNoRows) {
		return Transfer{}, fmt.Errorf("%w: transfer with key %s", ErrNotFound, key)
	}
	if err != nil {
		return Transfer{}, fmt.Errorf("ledger: read transfer: %w", err)
	}
	return tr, nil
}
