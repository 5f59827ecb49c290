package ledger

import (
	"context"
	"fmt"

	"github.com/payswitch/payswitch/store"
)

// On PostgreSQL the journal's head is one row that every booking locks until its
// transaction commits, so whatever a transaction does between its booking and its COMMIT
// is done by every node's bookings one after another. The switch books in the middle of
// a payment's transaction (then it moves the payment, queues its messages, records its
// events), so a booking does not append at once: it writes the accounts' totals and the
// transfer's row (both need no head), and the transaction's end (a store.Finisher, before
// COMMIT) locks the head and appends the entries of every transfer the transaction
// booked, in one statement. The head is then held for that statement and the COMMIT.
//
// A booking's time is the later of the clock and the latest journal time this ledger has
// seen, and its transfer's row keeps it. Its entries have it too, unless another node's
// transaction appended a later time in between: then they get that one (the journal's
// times never go back), so on PostgreSQL an entry's time may be a little later than its
// transfer's. Reading a transfer inside the transaction that booked it appends first,
// so that its entries (and balances after) are there. An append that fails fails the
// whole Write, not only the booking.

// appended is tr, found again by its key in the transaction that booked it, with its
// balances after: its entries are appended first when they still wait (PostgreSQL).
func (t *Tx) appended(ctx context.Context, tr Transfer) (Transfer, error) {
	if tr.BalancesAfterKnown || !t.l.pg {
		return tr, nil
	}
	if err := t.appendNow(ctx); err != nil {
		return Transfer{}, err
	}
	return transferBy(ctx, t.tx, "id", tr.ID)
}

// appendNow appends what this transaction booked so far (PostgreSQL; nothing else).
func (t *Tx) appendNow(ctx context.Context) error {
	if !t.l.pg {
		return nil
	}
	if p := t.waiting(); p != nil {
		return p.Finish(ctx, t.tx)
	}
	return nil
}

// waiting is tx's pending appends if a booking made them, else nil; it makes none.
func (t *Tx) waiting() *pendingAppends {
	if !t.l.pg {
		return nil
	}
	if f, ok := store.Deferred(t.tx, appendKey{}, nil); ok && f != nil {
		return f.(*pendingAppends)
	}
	return nil
}

// appendKey is the key of a transaction's pending appends (store.Deferred).
type appendKey struct{}

// pendingAppends are the transfers a PostgreSQL transaction booked and has not appended.
type pendingAppends struct {
	l       *Ledger
	trs     []Transfer
	credits []deferredCredit // their credit accounts' changes (postgres_credits.go)
	applied []int            // indexes in credits applied, in the order they were
}

// pending is tx's pending appends, or nil when the booking must append at once.
func (t *Tx) pending() *pendingAppends {
	// A ledger operation in a Write of its own (bare) has nothing after its booking to
	// keep the head from, and appends at once: a batch's fallback then fails a refused
	// entry's request alone.
	if !t.l.pg || t.bare {
		return nil
	}
	f, ok := store.Deferred(t.tx, appendKey{}, func() store.Finisher { return &pendingAppends{l: t.l} })
	if !ok {
		return nil
	}
	return f.(*pendingAppends)
}

// marked is how much waits, for undoing an operation's own with truncate.
func (t *Tx) marked() appendMark {
	if p := t.waiting(); p != nil {
		return appendMark{trs: len(p.trs), credits: len(p.credits), applied: len(p.applied)}
	}
	return appendMark{}
}

// truncate forgets the appends and credits booked after mark, and lets the credits
// applied after it wait again: their operation was rolled back, and the savepoint's
// rollback undid those statements too.
func (t *Tx) truncate(mark appendMark) {
	p := t.waiting()
	if p == nil {
		return
	}
	if len(p.applied) > mark.applied {
		for _, i := range p.applied[mark.applied:] {
			p.credits[i].applied = false
		}
		p.applied = p.applied[:mark.applied]
	}
	if len(p.credits) > mark.credits {
		p.credits = p.credits[:mark.credits]
	}
	if len(p.trs) > mark.trs {
		p.trs = p.trs[:mark.trs]
	}
}

// deferBook is bookPG's booking when the append can wait: tr's debit account is
// written; its row is written now, and its credit account's change and its entries wait
// for the transaction's end.
func (t *Tx) deferBook(ctx context.Context, p *pendingAppends, tr Transfer, pending int64) (Transfer, error) {
	ts := FormatTime(tr.Time)
	if last, _ := t.l.lastTime.Load().(string); last > ts {
		ts = last
		tr.Time = parseTime(ts)
	}
	if err := t.insertTransfer(ctx, &tr, ts); err != nil {
		return Transfer{}, err
	}
	tr.CreditBalanceAfter, tr.BalancesAfterKnown = 0, false
	p.trs = append(p.trs, tr)
	t.deferCredit(tr.Credit, tr.Amount, -pending, true, len(p.trs)-1)
	tr.CreditWaits = true // the caller's copy; the one kept gets its balance at the end
	return tr, nil
}

// pgAppend appends the entries and moves the head to the last entry, in one statement
// (columns as arrays; the head's seq, time and hash last).
const pgAppend = `WITH appended AS (INSERT INTO entries (seq, time, transfer_id, payment_id, account_id, direction,
		amount, currency, balance_after, prev_hash, hash)
		SELECT * FROM unnest(?::bigint[], ?::text[], ?::text[], ?::text[], ?::text[], ?::text[], ?::bigint[], ?::text[], ?::bigint[], ?::text[], ?::text[])
		RETURNING seq)
	UPDATE ledger_head SET seq = ?, time = ?, hash = ?
	WHERE (SELECT count(*) FROM appended) = ?`

// Finish appends the pending transfers' entries (store.Finisher).
func (p *pendingAppends) Finish(ctx context.Context, tx store.Tx) error {
	ctx = sqlCtx(ctx)
	t := &Tx{l: p.l, tx: tx}
	if err := t.applyCredits(ctx, nil); err != nil {
		return err
	}
	p.credits, p.applied = p.credits[:0], p.applied[:0]
	if len(p.trs) == 0 {
		return nil
	}
	head, err := t.readHeadLocked(ctx)
	if err != nil {
		return err
	}
	n := len(p.trs)
	seq, eamount, after := make([]int64, 2*n), make([]int64, 2*n), make([]int64, 2*n)
	etime, tid, epay, acc, dir, ecur, prev, hash := make([]string, 2*n), make([]string, 2*n), make([]string, 2*n),
		make([]string, 2*n), make([]string, 2*n), make([]string, 2*n), make([]string, 2*n), make([]string, 2*n)
	for i := range p.trs {
		tr := &p.trs[i]
		ts := max(FormatTime(tr.Time), head.time) // the journal's times never go back
		de, ce := entriesOf(head, ts, tr)
		for j, e := range []*Entry{&de, &ce} {
			k := 2*i + j
			seq[k], etime[k], tid[k], epay[k], acc[k], dir[k], eamount[k], ecur[k], after[k], prev[k], hash[k] =
				e.Seq, e.TimeText, e.TransferID, e.PaymentID, e.AccountID, e.Direction, e.Amount, e.Currency, e.BalanceAfter, e.PrevHash, e.Hash
		}
		head = chainHead{seq: ce.Seq, time: ts, hash: ce.Hash}
	}
	res, err := tx.ExecContext(ctx, pgAppend, seq, etime, tid, epay, acc, dir, eamount, ecur, after, prev, hash,
		head.seq, head.time, head.hash, 2*n)
	if err != nil {
		return fmt.Errorf("ledger: append entries: %w", err)
	}
	if got, err := res.RowsAffected(); err != nil || got != 1 {
		return fmt.Errorf("ledger: append entries: the head moved %d rows (%v)", got, err)
	}
	p.trs = p.trs[:0]
	if last, _ := p.l.lastTime.Load().(string); head.time > last {
		p.l.lastTime.Store(head.time)
	}
	return nil
}

// readHeadLocked reads the journal's head FOR UPDATE.
func (t *Tx) readHeadLocked(ctx context.Context) (chainHead, error) {
	var h chainHead
	if err := t.tx.QueryRowContext(ctx, `SELECT seq, time, hash FROM ledger_head FOR UPDATE`).Scan(&h.seq, &h.time, &h.hash); err != nil {
		return chainHead{}, fmt.Errorf("ledger: lock the journal's head: %w", err)
	}
	return h, nil
}
