package ledger

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
)

// On PostgreSQL an account's row is locked by the first statement that changes its
// totals and stays locked until COMMIT. A merchant's row is credited by every payment to
// it (its hold, then its post), so with the row changed at the booking, that merchant's
// payments take turns for everything their transactions do after it: the payment's row,
// its events and messages, the journal's append, the COMMIT. A credit needs no check that
// a concurrent change could spoil (the balance only grows; the account must be active,
// which the change itself can check), so inside a PostgreSQL Write a booking changes its
// debit account at once, under the lock its funds check needs, and leaves the credit
// account's change for the transaction's end (the same store.Finisher that appends the
// entries), where it is one UPDATE per account, conditional on the account being active.
// The credit account's row is then locked only for that statement, the append and COMMIT.
//
// The credit's balance after is known only then (the UPDATE returns it), so a booking
// whose credit waits returns its transfer with BalancesAfterKnown false, and its entries
// get the balance when they are appended. Whatever reads or locks an account in the
// transaction first applies that account's waiting credits (Account, a lock taken to
// debit it, a status change), so the transaction always sees its own credits, and an
// account's changes are applied in the order they were made. A failed operation's
// savepoint rollback also undoes the credits it applied; they wait again.
//
// A credit refused at the end (the account was frozen or closed in between) fails the
// whole Write with ErrAccountInactive, as the booking would have failed had it come
// later: nothing of the transaction is written, and the caller may try again.
//
// Locks are no longer taken in one order: a transaction that debits a merchant and
// credits a wallet at its end (a refund) and one that debits that wallet and credits
// that merchant at its end (a payment) can each hold what the other waits for.
// PostgreSQL breaks such a deadlock after deadlock_timeout by aborting one, and the store
// runs that Write again (store.Write on PostgreSQL); it costs the two a wait, never a
// wrong answer.

// deferredCredit is a change a booking makes to its credit account's totals, waiting for
// the transaction's end.
type deferredCredit struct {
	id      string
	posted  int64 // added to credits_posted
	pending int64 // added to credits_pending (negative to release a hold)
	active  bool  // the account must be active (a void releases a hold on any account)
	tr      int   // index in pendingAppends.trs of the transfer it credits; -1 for none
	applied bool
}

// appendMark is how much a transaction had waiting when an operation began, so that the
// operation's rollback forgets what it added and waits again for what it applied.
type appendMark struct{ trs, credits, applied int }

// deferCredit leaves the credit of a booking for the transaction's end when it can wait
// (PostgreSQL, inside a caller's Write), and reports whether it did.
func (t *Tx) deferCredit(id string, posted, pending int64, active bool, tr int) bool {
	p := t.pending()
	if p == nil {
		return false
	}
	p.credits = append(p.credits, deferredCredit{id: id, posted: posted, pending: pending, active: active, tr: tr})
	return true
}

// creditsWait reports whether the booking of a credit to an account may wait, so that
// its caller locks only the debit account now.
func (t *Tx) creditsWait() bool { return t.pending() != nil }

// CreditWaits reports whether account id has credits this transaction booked and has not
// applied yet (PostgreSQL only): its balance, read now, applies them first, which locks
// its row until COMMIT. A caller that can read it later, at the transaction's end, does.
func (t *Tx) CreditWaits(id string) bool {
	p := t.waiting()
	if p == nil {
		return false
	}
	for i := range p.credits {
		if c := &p.credits[i]; c.id == id && !c.applied {
			return true
		}
	}
	return false
}

// applyCredits applies the waiting credits of the accounts with ids (all of them when ids
// is nil), account by account in id order, each in one UPDATE that returns the posted
// balance from which the credited transfers' balances after are worked out.
func (t *Tx) applyCredits(ctx context.Context, ids []string) error {
	p := t.waiting()
	if p == nil {
		return nil
	}
	var todo []string
	for i := range p.credits {
		c := &p.credits[i]
		if !c.applied && (ids == nil || slices.Contains(ids, c.id)) {
			todo = append(todo, c.id)
		}
	}
	if len(todo) == 0 {
		return nil
	}
	slices.Sort(todo)
	for _, id := range slices.Compact(todo) {
		if err := p.applyAccount(ctx, t, id); err != nil {
			return err
		}
	}
	return nil
}

// applyAccount applies account id's waiting credits.
func (p *pendingAppends) applyAccount(ctx context.Context, t *Tx, id string) error {
	var posted, pending int64
	active := false
	var mine []int
	for i := range p.credits {
		if c := &p.credits[i]; c.id == id && !c.applied {
			posted += c.posted
			pending += c.pending
			active = active || c.active
			mine = append(mine, i)
		}
	}
	var balance int64
	err := t.tx.QueryRowContext(ctx, `UPDATE accounts SET credits_posted = credits_posted + ?, credits_pending = credits_pending + ?
		WHERE id = ? AND (status = 'active' OR ?) RETURNING credits_posted - debits_posted`,
		posted, pending, id, !active).Scan(&balance)
	if errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("%w: %s is no longer active", ErrAccountInactive, id)
	}
	if err != nil {
		return fmt.Errorf("ledger: update balance of %s: %w", id, err)
	}
	// The account's last change is the last credit: walk back from its balance now.
	for k := len(mine) - 1; k >= 0; k-- {
		c := &p.credits[mine[k]]
		if c.tr >= 0 {
			tr := &p.trs[c.tr]
			tr.CreditBalanceAfter, tr.BalancesAfterKnown = balance, true
		}
		balance -= c.posted
		c.applied = true
		p.applied = append(p.applied, mine[k])
	}
	return nil
}
