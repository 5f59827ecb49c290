package ledger

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/payswitch/payswitch/store"
)

// TransferBatch books many transfers with one durable commit, for bulk work (settlement,
// imports, load) where a commit per transfer would cost more than the transfers.
//
// The requests run in order inside one store.Write, and each fails alone: a request that
// is refused (insufficient funds, an idempotency conflict, an unknown account, ...) is
// reported in errs[i], writes nothing, and the others commit. A request sees the effects
// of the earlier ones: a wallet credited by request 1 can spend in request 2, and a key
// repeated in the batch returns the first transfer. transfers[i] is the zero Transfer
// when errs[i] is not nil. If the commit itself fails, nothing was booked and every
// errs[i] is that error. Both slices have len(rs) entries. The transfers of one batch
// share one journal time.
//
// How: the batch reads what it checks in a few statements (the accounts, what the keys
// name, the journal's head), decides every request in memory in order with running
// balances, exactly as Transfer would one after another, and then writes the transfers
// and entries with multi-row INSERTs and each account once with its summed change. A
// statement that fails anyway (an I/O error, say) rolls the batch back to its savepoint
// (ledger_batch), and the batch is run again one request at a time, each in its own
// savepoint (ledger_item), so that it still fails alone.
func (l *Ledger) TransferBatch(ctx context.Context, rs []TransferRequest) ([]Transfer, []error) {
	trs := make([]Transfer, len(rs))
	errs := make([]error, len(rs))
	if len(rs) == 0 {
		return trs, errs
	}
	err := l.db.Write(ctx, func(tx store.Tx) error {
		ctx := sqlCtx(ctx)
		t := &Tx{l: l, tx: tx, bare: true}
		if _, err := tx.ExecContext(ctx, "SAVEPOINT ledger_batch"); err != nil {
			return fmt.Errorf("ledger: batch savepoint: %w", err)
		}
		if err := t.bulk(ctx, rs, trs, errs); err == nil {
			if _, err := tx.ExecContext(ctx, "RELEASE ledger_batch"); err != nil {
				return fmt.Errorf("ledger: batch release: %w", err)
			}
			return nil
		}
		if _, err := tx.ExecContext(ctx, "ROLLBACK TO ledger_batch"); err != nil {
			return fmt.Errorf("ledger: batch rollback: %w", err)
		}
		if _, err := tx.ExecContext(ctx, "RELEASE ledger_batch"); err != nil {
			return fmt.Errorf("ledger: batch release: %w", err)
		}
		for i, r := range rs {
			trs[i], errs[i] = t.transferAlone(ctx, r)
			if errors.Is(errs[i], errTxBroken) {
				return errs[i]
			}
		}
		return nil
	})
	if err != nil {
		for i := range rs {
			trs[i], errs[i] = Transfer{}, err
		}
	}
	for i := range rs {
		if errs[i] != nil {
			trs[i] = Transfer{}
		}
	}
	return trs, errs
}

// errTxBroken marks a failure to roll back a savepoint: the transaction is in an unknown
// state and nothing more may be done in it.
var errTxBroken = errors.New("ledger: transaction broken")

// transferAlone books r inside its own savepoint (ledger_item), so that a failure after
// it started writing undoes only its own writes.
func (t *Tx) transferAlone(ctx context.Context, r TransferRequest) (Transfer, error) {
	if _, err := t.tx.ExecContext(ctx, "SAVEPOINT ledger_item"); err != nil {
		return Transfer{}, fmt.Errorf("%w: savepoint: %w", errTxBroken, err)
	}
	mark := t.marked()
	tr, err := t.transfer(ctx, r)
	if err != nil {
		if _, rerr := t.tx.ExecContext(ctx, "ROLLBACK TO ledger_item"); rerr != nil {
			return Transfer{}, fmt.Errorf("%w: rollback: %w", errTxBroken, rerr)
		}
		t.truncate(mark)
	}
	if _, rerr := t.tx.ExecContext(ctx, "RELEASE ledger_item"); rerr != nil {
		return Transfer{}, fmt.Errorf("%w: release: %w", errTxBroken, rerr)
	}
	return tr, err
}

// batchAccount is an account a batch uses: its totals as the batch has left them so far,
// and its posted totals as read, so that it is written once with the difference.
type batchAccount struct {
	side
	debitsRead, creditsRead int64
	touched                 bool
}

func (a *batchAccount) asSide() *side {
	if a == nil {
		return nil
	}
	return &a.side
}

// bulk decides and books rs in memory and writes the result with a few statements. It
// fills trs and errs as Transfer one request after another would; its error means a
// statement failed and the caller must roll back what it wrote.
func (t *Tx) bulk(ctx context.Context, rs []TransferRequest, trs []Transfer, errs []error) error {
	var ids, keys []string
	accounts := make(map[string]*batchAccount, 2*len(rs))
	keyed := make(map[string]bool, len(rs))
	for i := range rs {
		r := &rs[i]
		if errs[i] = checkRequest(r.Key, r.Debit, r.Credit, r.Amount, r.Kind); errs[i] != nil {
			continue
		}
		if !keyed[r.Key] {
			keyed[r.Key] = true
			keys = append(keys, r.Key)
		}
		for _, id := range []string{r.Debit, r.Credit} {
			if _, ok := accounts[id]; !ok {
				accounts[id] = nil
				ids = append(ids, id)
			}
		}
	}
	if err := t.lockAccounts(ctx, ids...); err != nil {
		return err
	}
	if err := t.scanAccounts(ctx, ids, accounts); err != nil {
		return err
	}
	prevs := make(map[string]*Transfer)
	holds := make(map[string]bool)
	err := t.scanKeys(ctx, keys, func(r *lookupRow) {
		switch r.tag {
		case "t":
			tr := r.transfer()
			prevs[tr.Key] = &tr
		case "h":
			holds[r.id] = true
		}
	})
	if err != nil {
		return err
	}
	var head chainHead
	if !t.l.pg { // (PostgreSQL's head is its own row, locked)
		k, err := t.lookup(ctx, partHead)
		if err != nil {
			return err
		}
		head = k.head
	}
	if head, err = t.lockHead(ctx, head); err != nil {
		return err
	}
	ts := t.journalTime(head)
	tm := parseTime(ts)

	booked := make(map[string]int, len(rs)) // key -> the request that booked it here
	order := make([]int, 0, len(rs))        // the requests booked, in order
	entries := make([]Entry, 0, 2*len(rs))
	var touched []*batchAccount
	for i := range rs {
		if errs[i] != nil {
			continue
		}
		r := &rs[i]
		prev := prevs[r.Key]
		if j, ok := booked[r.Key]; ok {
			prev = &trs[j]
		}
		d, c := accounts[r.Debit], accounts[r.Credit]
		tr, done, err := decideTransfer(r, prev, holds[r.Key], d.asSide(), c.asSide())
		if err != nil || done {
			trs[i], errs[i] = tr, err
			continue
		}
		d.debitsPosted += r.Amount
		c.creditsPosted += r.Amount
		tr = Transfer{Key: r.Key, Debit: r.Debit, Credit: r.Credit, Amount: r.Amount, Currency: d.currency,
			PaymentID: r.PaymentID, Kind: r.Kind, Time: tm,
			DebitBalanceAfter: d.posted(), CreditBalanceAfter: c.posted(), BalancesAfterKnown: true}
		tr.ID = t.l.NewTransferID()
		for _, a := range []*batchAccount{d, c} {
			if !a.touched {
				a.touched = true
				touched = append(touched, a)
			}
		}
		de, ce := entriesOf(head, ts, &tr)
		entries = append(entries, de, ce)
		head = chainHead{seq: ce.Seq, time: ts, hash: ce.Hash}
		trs[i] = tr
		booked[r.Key] = i
		order = append(order, i)
	}

	if t.l.pg {
		return t.writeBatchPG(ctx, trs, order, ts, entries, touched)
	}
	err = t.writeRows(ctx, batchInsertTransfers, len(order), 9, func(args []any, n int) []any {
		tr := &trs[order[n]]
		return append(args, tr.ID, tr.Key, tr.Debit, tr.Credit, tr.Amount, tr.Currency, tr.PaymentID, tr.Kind, ts)
	})
	if err != nil {
		return fmt.Errorf("ledger: insert transfers: %w", err)
	}
	err = t.writeRows(ctx, batchInsertEntries, len(entries), 11, func(args []any, n int) []any {
		return entryArgs(args, &entries[n])
	})
	if err != nil {
		return fmt.Errorf("ledger: append entries: %w", err)
	}
	err = t.writeRows(ctx, batchUpdateAccounts, len(touched), 3, func(args []any, n int) []any {
		a := touched[n]
		return append(args, a.id, a.debitsPosted-a.debitsRead, a.creditsPosted-a.creditsRead)
	})
	if err != nil {
		return fmt.Errorf("ledger: update balances: %w", err)
	}
	return nil
}

// A batch reads with IN lists and writes with multi-row statements, of a few sizes only
// so that the store's statement cache keeps a handful of texts, and large enough that a
// usual batch reads and writes each table with one or two statements. SQLite gives a
// multi-row statement its own statement journal, a copy of every page it changes: the
// fewer statements, the fewer copies. An IN list is padded up to its size by repeating
// its first value, a VALUES list with rows of NULLs that the statement skips.
var batchSizes = []int{16, 128, 512, 1024} // ascending

// batchSize returns the size of the next statement for n values or rows, and how many of
// them it takes.
func batchSize(n int) (size, take int) {
	for _, s := range batchSizes {
		if s >= n {
			return s, n
		}
	}
	s := batchSizes[len(batchSizes)-1]
	return s, s
}

// batchStatements maps a size to the text of a statement for it.
type batchStatements map[int]string

func makeBatchStatements(sizes []int, text func(n int) string) batchStatements {
	m := make(batchStatements, len(sizes))
	for _, n := range sizes {
		m[n] = text(n)
	}
	return m
}

// inList returns "(?, ?, ..., ?)" with n placeholders. They are anonymous: the driver
// looks up every parameter's name when it binds, which for numbered ones (?1, ?2, ...) is
// a walk through all the statement's names, quadratic in a list this long.
func inList(n int) string {
	return "(" + strings.TrimSuffix(strings.Repeat("?, ", n), ", ") + ")"
}

// valuesRows returns n rows of cols placeholders: "(?, ?), (?, ?)".
func valuesRows(n, cols int) string {
	row := "(" + strings.TrimSuffix(strings.Repeat("?, ", cols), ", ") + ")"
	return strings.TrimSuffix(strings.Repeat(row+", ", n), ", ")
}

var (
	// The accounts of a batch, only the columns a transfer needs.
	batchAccountsQuery = makeBatchStatements(batchSizes, func(n int) string {
		return `SELECT id, type, currency, status, debits_posted, credits_posted, debits_pending, credits_pending
			FROM accounts WHERE id IN ` + inList(n)
	})
	// What a batch's keys name: transfers, and holds that are not posted (a posted hold's
	// key is its transfer's).
	batchKeysQuery = makeBatchStatements(batchSizes, func(n int) string {
		return `SELECT 't', ` + transferWithBalancesAsRow + ` WHERE t.key IN ` + inList(n) +
			` UNION ALL SELECT 'h', ` + holdColumnsAsRow + ` WHERE key IN ` + inList(n) + ` AND state <> 'posted'`
	})
	batchInsertTransfers = makeBatchStatements(batchSizes, func(n int) string {
		return `INSERT INTO transfers (id, key, debit, credit, amount, currency, payment_id, kind, time)
			SELECT * FROM (VALUES ` + valuesRows(n, 9) + `) WHERE column1 IS NOT NULL`
	})
	batchInsertEntries = makeBatchStatements(batchSizes, func(n int) string {
		return insertEntriesColumns[:len(insertEntriesColumns)-len("VALUES ")] +
			`SELECT * FROM (VALUES ` + valuesRows(n, 11) + `) WHERE column1 IS NOT NULL`
	})
	batchUpdateAccounts = makeBatchStatements(batchSizes, func(n int) string {
		return `UPDATE accounts SET debits_posted = debits_posted + v.column2, credits_posted = credits_posted + v.column3
			FROM (VALUES ` + valuesRows(n, 3) + `) AS v WHERE accounts.id = v.column1`
	})
)

// inArgs returns the arguments of a statement with lists IN lists of size: vals, padded
// with vals[0], lists times over.
func inArgs(args []any, vals []string, size, lists int) []any {
	args = args[:0]
	for range lists {
		for i := range size {
			if i < len(vals) {
				args = append(args, vals[i])
			} else {
				args = append(args, vals[0])
			}
		}
	}
	return args
}

// scanAccounts reads the accounts with ids into accounts.
func (t *Tx) scanAccounts(ctx context.Context, ids []string, accounts map[string]*batchAccount) error {
	args := make([]any, 0, batchSizes[len(batchSizes)-1])
	for len(ids) > 0 {
		size, take := batchSize(len(ids))
		args = inArgs(args, ids[:take], size, 1)
		ids = ids[take:]
		rows, err := t.tx.QueryContext(ctx, batchAccountsQuery[size], args...)
		if err != nil {
			return fmt.Errorf("ledger: read accounts: %w", err)
		}
		for rows.Next() {
			a := &batchAccount{}
			if err := rows.Scan(&a.id, &a.typ, &a.currency, &a.status, &a.debitsPosted, &a.creditsPosted,
				&a.debitsPending, &a.creditsPending); err != nil {
				rows.Close()
				return fmt.Errorf("ledger: read accounts: %w", err)
			}
			a.debitsRead, a.creditsRead = a.debitsPosted, a.creditsPosted
			accounts[a.id] = a
		}
		err = rows.Err()
		rows.Close()
		if err != nil {
			return fmt.Errorf("ledger: read accounts: %w", err)
		}
	}
	return nil
}

// scanKeys runs batchKeysQuery over keys, calling fn with each row.
func (t *Tx) scanKeys(ctx context.Context, keys []string, fn func(r *lookupRow)) error {
	args := make([]any, 0, 2*batchSizes[len(batchSizes)-1])
	for len(keys) > 0 {
		size, take := batchSize(len(keys))
		args = inArgs(args, keys[:take], size, 2)
		keys = keys[take:]
		if err := t.scanLookup(ctx, batchKeysQuery[size], fn, args...); err != nil {
			return err
		}
	}
	return nil
}

// writeRows writes n rows with the multi-row statements q (by size); add appends the
// arguments of row i. A statement's unused rows are all NULL, which its WHERE skips.
// Each statement must change as many rows as it was given.
func (t *Tx) writeRows(ctx context.Context, q batchStatements, n, cols int, add func(args []any, i int) []any) error {
	var args []any
	for done := 0; done < n; {
		size, take := batchSize(n - done)
		if cap(args) < size*cols {
			args = make([]any, 0, size*cols)
		}
		args = args[:0]
		for i := done; i < done+take; i++ {
			args = add(args, i)
		}
		for range (size - take) * cols {
			args = append(args, nil)
		}
		res, err := t.tx.ExecContext(ctx, q[size], args...)
		if err != nil {
			return err
		}
		if got, err := res.RowsAffected(); err != nil || got != int64(take) {
			return fmt.Errorf("%d rows changed of %d (%v)", got, take, err)
		}
		done += take
	}
	return nil
}
