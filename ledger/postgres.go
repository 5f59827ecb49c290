package ledger

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"

	"github.com/payswitch/payswitch/store"
)

// On PostgreSQL other processes book at the same time, so an operation's checks
// (funds, what its key names, the hold's state) hold only for what it has locked. Each
// operation that changes balances therefore locks, before it reads what it checks:
//
//   - the idempotency key of a new transfer, hold or reversal (lockKey);
//   - the hold it settles (post, void), FOR UPDATE;
//   - its accounts, FOR NO KEY UPDATE, in id order, so that two operations on the same
//     accounts wait for each other instead of deadlocking (NO KEY: rows of other tables
//     that reference an account, which lock it FOR KEY SHARE, need not wait);
//   - then, only when it books entries, the journal's head (see postgresMigrations).
//
// The reads that follow the locks are the same statements as on SQLite; at READ
// COMMITTED each sees everything committed before it started, so after the locks an
// operation sees the last word on its accounts, on its key (a request repeated on another
// node waits for the first, then finds its transfer) and on the head. Those locks are
// held until the caller's transaction ends. Operations of one transaction that lock
// accounts in different orders can still deadlock with another transaction; PostgreSQL
// then aborts one and the store runs it again.
//
// On SQLite the one writer already serialises everything, and the lock functions do
// nothing, so its statements per operation are unchanged.

// lockKey locks idempotency key key for the transaction, then the accounts with ids.
// Transfers and holds share one key space, which no constraint spans: two requests of
// one key on other accounts would lock nothing in common, and each find the key free.
// The key's lock (an advisory lock on its hash, released at commit) makes the second
// wait and then find the first's transfer or hold.
func (t *Tx) lockKey(ctx context.Context, key string, ids ...string) error {
	if !t.l.pg {
		return nil
	}
	// Sent with the next statement, in one round trip (store.Later).
	if err := store.Later(ctx, t.tx, `SELECT pg_advisory_xact_lock(hashtextextended(?, 0))`, key); err != nil {
		return fmt.Errorf("ledger: lock key: %w", err)
	}
	return t.lockAccounts(ctx, ids...)
}

// lockAccounts locks the accounts with ids, in id order (missing ones are skipped).
func (t *Tx) lockAccounts(ctx context.Context, ids ...string) error {
	if !t.l.pg || len(ids) == 0 {
		return nil
	}
	// The account's own waiting credits first: its checks and balances after must see
	// them, and its changes stay in the order they were made.
	if err := t.applyCredits(ctx, ids); err != nil {
		return err
	}
	sorted := slices.Clone(ids)
	slices.Sort(sorted)
	sorted = slices.Compact(sorted)
	// Nothing is read back from the lock: the reads after it see the rows it locked, so it
	// rides in the next statement's round trip (store.Later).
	query, args := lockAccountsStatement(sorted)
	if err := store.Later(ctx, t.tx, query, args...); err != nil {
		return fmt.Errorf("ledger: lock accounts: %w", err)
	}
	return nil
}

// pgLockAccounts locks the accounts whose ids its one argument lists (sorted), in id
// order.
const pgLockAccounts = `SELECT id FROM accounts WHERE id = ANY(?) ORDER BY id FOR NO KEY UPDATE`

// pgLockAccount and pgLockTwoAccounts are pgLockAccounts for the one or two accounts a
// booking locks. PostgreSQL plans a prepared statement again at every call while its
// generic plan looks dearer than the plans made for the arguments, and a generic plan for
// an array of unknown length always does: pgLockAccounts was planned at every call. These
// take a fixed number of ids, so their generic plan is kept after the first few calls.
const (
	pgLockAccount     = `SELECT id FROM accounts WHERE id = ? FOR NO KEY UPDATE`
	pgLockTwoAccounts = `SELECT id FROM accounts WHERE id IN (?, ?) ORDER BY id FOR NO KEY UPDATE`
)

// lockAccountsStatement is the statement that locks sorted (ids in order, each once),
// and its arguments.
func lockAccountsStatement(sorted []string) (string, []any) {
	switch len(sorted) {
	case 1:
		return pgLockAccount, []any{sorted[0]}
	case 2:
		return pgLockTwoAccounts, []any{sorted[0], sorted[1]}
	}
	return pgLockAccounts, []any{sorted}
}

// lockHold locks hold key and its accounts, hold first, for settling it; a missing hold
// is not an error here (the read after says so).
func (t *Tx) lockHold(ctx context.Context, key string) error {
	if !t.l.pg {
		return nil
	}
	var debit, credit string
	err := t.tx.QueryRowContext(ctx, `SELECT debit, credit FROM holds WHERE key = ? FOR UPDATE`, key).Scan(&debit, &credit)
	if errors.Is(err, sql.ErrNoRows) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("ledger: lock hold %s: %w", key, err)
	}
	if t.creditsWait() { // the credit account's change waits for the end (postgres_credits.go)
		return t.lockAccounts(ctx, debit)
	}
	return t.lockAccounts(ctx, debit, credit)
}

// lockReversal locks key and the accounts of transfer id, for reversing it.
func (t *Tx) lockReversal(ctx context.Context, key, id string) error {
	if !t.l.pg {
		return nil
	}
	if err := t.lockKey(ctx, key); err != nil {
		return err
	}
	var debit, credit string
	err := t.tx.QueryRowContext(ctx, `SELECT debit, credit FROM transfers WHERE id = ?`, id).Scan(&debit, &credit)
	if errors.Is(err, sql.ErrNoRows) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("ledger: read transfer %s: %w", id, err)
	}
	if t.creditsWait() { // the reversal debits the original's credit account; its credit waits
		return t.lockAccounts(ctx, credit)
	}
	return t.lockAccounts(ctx, debit, credit)
}

// lockHead returns the journal's head, locked until the transaction ends; head is what
// the caller read on SQLite, where the one writer keeps it current.
func (t *Tx) lockHead(ctx context.Context, head chainHead) (chainHead, error) {
	if !t.l.pg {
		return head, nil
	}
	// Bookings of this transaction still waiting for its end come first in the journal:
	// what is appended now follows them (their balances were written before).
	if err := t.appendNow(ctx); err != nil {
		return chainHead{}, err
	}
	return t.readHeadLocked(ctx)
}

// pgBook writes a transfer's row and its two entries and moves the head to the second
// entry, in one statement (arguments: insertTransferRow's, the two entries' as
// entryArgs gives them, then the head's seq, time and hash). When the transfer's id is
// taken it writes nothing and changes no row.
const pgBook = `WITH booked AS (` + insertTransferRow + ` RETURNING id),
	appended AS (INSERT INTO entries (seq, time, transfer_id, payment_id, account_id, direction,
		amount, currency, balance_after, prev_hash, hash)
		SELECT v.* FROM (VALUES ` + pgEntryRow + `, ` + pgEntryRow + `) AS v
		WHERE EXISTS (SELECT 1 FROM booked) RETURNING seq)
	UPDATE ledger_head SET seq = ?, time = ?, hash = ? WHERE (SELECT count(*) FROM appended) = 2`

// pgEntryRow is an entry's parameters in a VALUES list, typed (an INSERT's own VALUES
// would take its columns' types; a VALUES in a SELECT does not).
const pgEntryRow = `(?::bigint, ?::text, ?::text, ?::text, ?::text, ?::text, ?::bigint, ?::text, ?::bigint, ?::text, ?::text)`

// bookPG is book on PostgreSQL. Every booking in the database waits for the head's lock,
// which is held from the moment it is taken to the commit, so it is taken as late as
// can be: after the accounts' totals are written (they are locked already and do not
// depend on the head), and then the transfer's row (whose time is the journal's), its
// entries and the head's move are one statement.
func (t *Tx) bookPG(ctx context.Context, key string, d, c *side, amount int64, paymentID, kind, reverses string, pending int64) (Transfer, error) {
	if err := t.updateAccount(ctx, postDebit, d.id, amount, pending); err != nil {
		return Transfer{}, err
	}
	if p := t.pending(); p != nil {
		return t.deferBook(ctx, p, newTransfer(FormatTime(t.l.now()), key, d, c, amount, paymentID, kind, reverses), pending)
	}
	if err := t.updateAccount(ctx, postCredit, c.id, amount, pending); err != nil {
		return Transfer{}, err
	}
	head, err := t.lockHead(ctx, chainHead{})
	if err != nil {
		return Transfer{}, err
	}
	ts := t.journalTime(head)
	tr := newTransfer(ts, key, d, c, amount, paymentID, kind, reverses)
	args := make([]any, 0, 35)
	for attempt := 0; ; attempt++ {
		tr.ID = t.l.NewTransferID()
		de, ce := entriesOf(head, ts, &tr)
		args = append(args[:0], tr.ID, tr.Key, tr.Debit, tr.Credit, tr.Amount, tr.Currency, tr.PaymentID, tr.Kind, nullable(tr.Reverses), ts)
		args = entryArgs(entryArgs(args, &de), &ce)
		args = append(args, ce.Seq, ce.TimeText, ce.Hash)
		res, err := t.tx.ExecContext(ctx, pgBook, args...)
		if err != nil {
			return Transfer{}, transferInsertError(err, key)
		}
		n, err := res.RowsAffected()
		switch {
		case err != nil:
			return Transfer{}, fmt.Errorf("ledger: book transfer: %w", err)
		case n == 1:
			return tr, nil
		case attempt == 3:
			return Transfer{}, fmt.Errorf("ledger: book transfer: id %s and three more drawn were taken", tr.ID)
		}
		t.l.ids.Reseed() // another ledger made it: see transferIDLayout
	}
}

// moveHead records e as the journal's last entry.
func (t *Tx) moveHead(ctx context.Context, e *Entry) error {
	if !t.l.pg {
		return nil
	}
	if _, err := t.tx.ExecContext(ctx, `UPDATE ledger_head SET seq = ?, time = ?, hash = ?`, e.Seq, e.TimeText, e.Hash); err != nil {
		return fmt.Errorf("ledger: move the journal's head to %d: %w", e.Seq, err)
	}
	return nil
}

// A batch on PostgreSQL writes its rows with one statement per table, each column sent
// as an array and unnested: a VALUES list of parameters would have PostgreSQL guess
// every parameter's type, and an array carries it.
const (
	pgBatchInsertTransfers = `INSERT INTO transfers (id, key, debit, credit, amount, currency, payment_id, kind, time)
		SELECT * FROM unnest(?::text[], ?::text[], ?::text[], ?::text[], ?::bigint[], ?::text[], ?::text[], ?::text[], ?::text[])`
	pgBatchInsertEntries = `INSERT INTO entries (seq, time, transfer_id, payment_id, account_id, direction,
		amount, currency, balance_after, prev_hash, hash)
		SELECT * FROM unnest(?::bigint[], ?::text[], ?::text[], ?::text[], ?::text[], ?::text[], ?::bigint[], ?::text[], ?::bigint[], ?::text[], ?::text[])`
	pgBatchUpdateAccounts = `UPDATE accounts SET debits_posted = debits_posted + v.debits, credits_posted = credits_posted + v.credits
		FROM unnest(?::text[], ?::bigint[], ?::bigint[]) AS v (id, debits, credits) WHERE accounts.id = v.id`
)

// writeBatchPG writes what bulk decided: the transfers trs[order[i]], their entries and
// the accounts' changes.
func (t *Tx) writeBatchPG(ctx context.Context, trs []Transfer, order []int, ts string, entries []Entry, touched []*batchAccount) error {
	n := len(order)
	id, key, debit, credit, cur, pay, kind, tm := make([]string, n), make([]string, n), make([]string, n),
		make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n)
	amount := make([]int64, n)
	for i, o := range order {
		tr := &trs[o]
		id[i], key[i], debit[i], credit[i], amount[i], cur[i], pay[i], kind[i], tm[i] =
			tr.ID, tr.Key, tr.Debit, tr.Credit, tr.Amount, tr.Currency, tr.PaymentID, tr.Kind, ts
	}
	if err := t.execCounting(ctx, n, pgBatchInsertTransfers, id, key, debit, credit, amount, cur, pay, kind, tm); err != nil {
		return fmt.Errorf("ledger: insert transfers: %w", err)
	}
	m := len(entries)
	seq, eamount, after := make([]int64, m), make([]int64, m), make([]int64, m)
	etime, tid, epay, acc, dir, ecur, prev, hash := make([]string, m), make([]string, m), make([]string, m),
		make([]string, m), make([]string, m), make([]string, m), make([]string, m), make([]string, m)
	for i := range entries {
		e := &entries[i]
		seq[i], etime[i], tid[i], epay[i], acc[i], dir[i], eamount[i], ecur[i], after[i], prev[i], hash[i] =
			e.Seq, e.TimeText, e.TransferID, e.PaymentID, e.AccountID, e.Direction, e.Amount, e.Currency, e.BalanceAfter, e.PrevHash, e.Hash
	}
	if err := t.execCounting(ctx, m, pgBatchInsertEntries, seq, etime, tid, epay, acc, dir, eamount, ecur, after, prev, hash); err != nil {
		return fmt.Errorf("ledger: append entries: %w", err)
	}
	if m > 0 {
		if err := t.moveHead(ctx, &entries[m-1]); err != nil {
			return err
		}
	}
	k := len(touched)
	ids, debits, credits := make([]string, k), make([]int64, k), make([]int64, k)
	for i, a := range touched {
		ids[i], debits[i], credits[i] = a.id, a.debitsPosted-a.debitsRead, a.creditsPosted-a.creditsRead
	}
	if err := t.execCounting(ctx, k, pgBatchUpdateAccounts, ids, debits, credits); err != nil {
		return fmt.Errorf("ledger: update balances: %w", err)
	}
	return nil
}

// execCounting runs q, which must change want rows; nothing runs for none.
func (t *Tx) execCounting(ctx context.Context, want int, q string, args ...any) error {
	if want == 0 {
		return nil
	}
	res, err := t.tx.ExecContext(ctx, q, args...)
	if err != nil {
		return err
	}
	if got, err := res.RowsAffected(); err != nil || got != int64(want) {
		return fmt.Errorf("%d rows changed of %d (%v)", got, want, err)
	}
	return nil
}
