package ledger

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
)

// transfersAndEntries joins each transfer t to its debit entry d and its credit entry c,
// each found by one probe of entries_one_per_side. The joins are LEFT so that a transfer
// missing an entry is still read (with its balances unknown), not lost.
const transfersAndEntries = `transfers t
	LEFT JOIN entries d ON d.transfer_id = t.id AND d.direction = 'D'
	LEFT JOIN entries c ON c.transfer_id = t.id AND c.direction = 'C'`

// transferColumns are what scanTransfer reads FROM transfersAndEntries: the transfer, then
// the balance_after of its debit and credit entries and whether both were found.
const transferColumns = `t.id, t.key, t.debit, t.credit, t.amount, t.currency, t.payment_id, t.kind,
	COALESCE(t.reverses, ''), t.time, COALESCE(d.balance_after, 0), COALESCE(c.balance_after, 0),
	d.seq IS NOT NULL AND c.seq IS NOT NULL`

var transferQueries = map[string]string{
	"id": `SELECT ` + transferColumns + ` FROM ` + transfersAndEntries + ` WHERE t.id = ?`,
}

func scanTransfer(s scanner) (Transfer, error) {
	var tr Transfer
	var ts string
	if err := s.Scan(&tr.ID, &tr.Key, &tr.Debit, &tr.Credit, &tr.Amount, &tr.Currency, &tr.PaymentID,
		&tr.Kind, &tr.Reverses, &ts, &tr.DebitBalanceAfter, &tr.CreditBalanceAfter, &tr.BalancesAfterKnown); err != nil {
		return Transfer{}, err
	}
	tr.Time = parseTime(ts)
	return tr, nil
}

func transferBy(ctx context.Context, q querier, col, val string) (Transfer, error) {
	tr, err := scanTransfer(q.QueryRowContext(ctx, transferQueries[col], val))
	if errors.Is(err, sql.ErrNoRows) {
		return Transfer{}, fmt.Errorf("%w: transfer %s", ErrNotFound, val)
	}
	if err != nil {
		return Transfer{}, fmt.Errorf("ledger: read transfer: %w", err)
	}
	return tr, nil
}

func transfersOfPayment(ctx context.Context, q querier, paymentID string) ([]Transfer, error) {
	if paymentID == "" {
		return nil, nil
	}
	// The second test lets SQLite use transfers_by_payment, which indexes only rows
	// with a payment: without it, it read the whole table. The journal's order is the
	// order transfers were booked in: each is booked with its entries.
	rows, err := q.QueryContext(ctx, `SELECT `+transferColumns+` FROM `+transfersAndEntries+`
		WHERE t.payment_id = ? AND t.payment_id <> '' ORDER BY d.seq, t.id`, paymentID)
	if err != nil {
		return nil, fmt.Errorf("ledger: read transfers: %w", err)
	}
	defer rows.Close()
	var trs []Transfer
	for rows.Next() {
		tr, err := scanTransfer(rows)
		if err != nil {
			return nil, fmt.Errorf("ledger: read transfers: %w", err)
		}
		trs = append(trs, tr)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("ledger: read transfers: %w", err)
	}
	return trs, nil
}

func holdByKey(ctx context.Context, q querier, key string) (Hold, error) {
	var h Hold
	var created string
	err := q.QueryRowContext(ctx, `SELECT key, debit, credit, amount, currency, payment_id, kind, state,
		COALESCE(transfer_id, ''), created_at FROM holds WHERE key = ?`, key).
		Scan(&h.Key, &h.Debit, &h.Credit, &h.Amount, &h.Currency, &h.PaymentID, &h.Kind, &h.State,
			&h.TransferID, &created)
	if errors.Is(err, sql.ErrNoRows) {
		return Hold{}, fmt.Errorf("%w: hold %s", ErrNotFound, key)
	}
	if err != nil {
		return Hold{}, fmt.Errorf("ledger: read hold: %w", err)
	}
	h.CreatedAt = parseTime(created)
	return h, nil
}

// Account returns the account with id as last committed.
func (l *Ledger) Account(ctx context.Context, id string) (Account, error) {
	return accountBy(ctx, l.db.Reader(), "id", id)
}

// AccountByMSISDN returns the account whose msisdn is msisdn.
func (l *Ledger) AccountByMSISDN(ctx context.Context, msisdn string) (Account, error) {
	return accountBy(ctx, l.db.Reader(), "msisdn", msisdn)
}

// AccountByCode returns the merchant account whose code is code.
func (l *Ledger) AccountByCode(ctx context.Context, code string) (Account, error) {
	return accountBy(ctx, l.db.Reader(), "code", code)
}

// HoldByKey returns the hold with key.
func (l *Ledger) HoldByKey(ctx context.Context, key string) (Hold, error) {
	return holdByKey(ctx, l.db.Reader(), key)
}

// TransferByID returns the transfer with id.
func (l *Ledger) TransferByID(ctx context.Context, id string) (Transfer, error) {
	return transferBy(ctx, l.db.Reader(), "id", id)
}

// TransfersOfPayment returns the transfers booked for paymentID, oldest first (none for
// an empty id).
func (l *Ledger) TransfersOfPayment(ctx context.Context, paymentID string) ([]Transfer, error) {
	return transfersOfPayment(ctx, l.db.Reader(), paymentID)
}

// Accounts calls fn with every account in id order, streaming from one read snapshot; an
// error from fn stops the walk and is returned.
func (l *Ledger) Accounts(ctx context.Context, fn func(Account) error) error {
	rows, err := l.db.Reader().QueryContext(ctx, `SELECT `+accountColumns+` FROM accounts ORDER BY id`)
	if err != nil {
		return fmt.Errorf("ledger: read accounts: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		a, err := scanAccount(rows)
		if err != nil {
			return fmt.Errorf("ledger: read accounts: %w", err)
		}
		if err := fn(a); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("ledger: read accounts: %w", err)
	}
	return nil
}

// DefaultPage and MaxPage bound Entries' limit.
const (
	DefaultPage = 50
	MaxPage     = 1000
)

const entryColumns = `seq, time, transfer_id, payment_id, account_id, direction, amount, currency,
	balance_after, prev_hash, hash`

func scanEntry(s scanner) (Entry, error) {
	var e Entry
	if err := s.Scan(&e.Seq, &e.TimeText, &e.TransferID, &e.PaymentID, &e.AccountID, &e.Direction,
		&e.Amount, &e.Currency, &e.BalanceAfter, &e.PrevHash, &e.Hash); err != nil {
		return Entry{}, err
	}
	e.Time = parseTime(e.TimeText)
	return e, nil
}

// Entries returns accountID's journal entries newest first: those with seq below
// beforeSeq (0 = from the newest), at most limit (DefaultPage when limit <= 0, never more
// than MaxPage). The next page is Entries(ctx, id, last.Seq, limit).
func (l *Ledger) Entries(ctx context.Context, accountID string, beforeSeq int64, limit int) ([]Entry, error) {
	if beforeSeq <= 0 {
		beforeSeq = math.MaxInt64
	}
	if limit <= 0 {
		limit = DefaultPage
	}
	limit = min(limit, MaxPage)
	rows, err := l.db.Reader().QueryContext(ctx, `SELECT `+entryColumns+` FROM entries
		WHERE account_id = ? AND seq < ? ORDER BY seq DESC LIMIT ?`, accountID, beforeSeq, limit)
	if err != nil {
		return nil, fmt.Errorf("ledger: read entries: %w", err)
	}
	defer rows.Close()
	var es []Entry
	for rows.Next() {
		e, err := scanEntry(rows)
		if err != nil {
			return nil, fmt.Errorf("ledger: read entries: %w", err)
		}
		es = append(es, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("ledger: read entries: %w", err)
	}
	return es, nil
}

// Journal calls fn with every entry whose seq is above afterSeq, oldest first, from one
// read snapshot: the auditor export walks the chain with it. An error from fn stops the
// walk and is returned.
func (l *Ledger) Journal(ctx context.Context, afterSeq int64, fn func(Entry) error) error {
	rows, err := l.db.Reader().QueryContext(ctx, `SELECT `+entryColumns+` FROM entries
		WHERE seq > ? ORDER BY seq`, afterSeq)
	if err != nil {
		return fmt.Errorf("ledger: read journal: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		e, err := scanEntry(rows)
		if err != nil {
			return fmt.Errorf("ledger: read journal: %w", err)
		}
		if err := fn(e); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("ledger: read journal: %w", err)
	}
	return nil
}

// TrialBalance returns the posted debits and credits of every currency, summed from the
// accounts' totals (one row per account, not per entry); the books balance when each
// currency's two sums are equal. Verify checks the same sums against the journal.
func (l *Ledger) TrialBalance(ctx context.Context) (map[string]Totals, error) {
	rows, err := l.db.Reader().QueryContext(ctx, `SELECT currency, COALESCE(SUM(debits_posted), 0),
		COALESCE(SUM(credits_posted), 0) FROM accounts GROUP BY currency ORDER BY currency`)
	if err != nil {
		return nil, fmt.Errorf("ledger: trial balance: %w", err)
	}
	defer rows.Close()
	tb := make(map[string]Totals)
	for rows.Next() {
		var cur string
		var t Totals
		if err := rows.Scan(&cur, &t.Debits, &t.Credits); err != nil {
			return nil, fmt.Errorf("ledger: trial balance: %w", err)
		}
		tb[cur] = t
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("ledger: trial balance: %w", err)
	}
	return tb, nil
}

// Head is the journal's last entry: its seq and hash, which auditors compare with the
// last row of an export (GenesisHash and 0 for an empty journal). Publishing it outside
// the exported files is what lets them notice a rewritten chain.
func (l *Ledger) Head(ctx context.Context) (seq int64, hash string, err error) {
	err = l.db.Reader().QueryRowContext(ctx, `SELECT seq, hash FROM entries ORDER BY seq DESC LIMIT 1`).Scan(&seq, &hash)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, GenesisHash, nil
	}
	return seq, hash, err
}
