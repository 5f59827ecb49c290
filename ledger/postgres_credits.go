package ledger

import (
	"context"
	"fmt"
	"slices"

	"github.com/payswitch/payswitch/store"
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
// is nil). Several accounts are locked in id order first (the lock rides in the UPDATE's
// round trip, store.Later), so that transactions crediting the same accounts wait for
// each other instead of deadlocking; then one UPDATE changes them all and returns their
// posted balances, from which the credited transfers' balances after are worked out. A
// group's end credits all its merchants this way in one round trip, not one each.
func (t *Tx) applyCredits(ctx context.Context, ids []string) error {
	p := t.waiting()
	if p == nil {
		return nil
	}
	sums := map[string]*creditSum{}
	var todo []string
	for i := range p.credits {
		c := &p.credits[i]
		if c.applied || ids != nil && !slices.Contains(ids, c.id) {
			continue
		}
		s := sums[c.id]
		if s == nil {
			s = &creditSum{}
			sums[c.id] = s
			todo = append(todo, c.id)
		}
		s.posted += c.posted
		s.pending += c.pending
		s.active = s.active || c.active
		s.credits = append(s.credits, i)
	}
	if len(todo) == 0 {
		return nil
	}
	slices.Sort(todo)
	posted, pending, anyStatus := make([]int64, len(todo)), make([]int64, len(todo)), make([]bool, len(todo))
	for i, id := range todo {
		s := sums[id]
		posted[i], pending[i], anyStatus[i] = s.posted, s.pending, !s.active
	}
	if len(todo) > 1 { // one row needs no order: the UPDATE locks it
		query, args := lockAccountsStatement(todo)
		if err := store.Later(ctx, t.tx, query, args...); err != nil {
			return fmt.Errorf("ledger: lock accounts: %w", err)
		}
	}
	rows, err := t.tx.QueryContext(ctx, pgApplyCredits, todo, posted, pending, anyStatus)
	if err != nil {
		return fmt.Errorf("ledger: apply credits: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var id string
		var balance int64
		if err := rows.Scan(&id, &balance); err != nil {
			return fmt.Errorf("ledger: apply credits: %w", err)
		}
		if s := sums[id]; s != nil {
			s.balance, s.done = balance, true
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("ledger: apply credits: %w", err)
	}
	for _, id := range todo {
		if !sums[id].done {
			return fmt.Errorf("%w: %s is no longer active", ErrAccountInactive, id)
		}
	}
	for _, id := range todo {
		p.applied = append(p.applied, sums[id].walkBack(p)...)
	}
	return nil
}

// pgApplyCredits adds each account's waiting credits to its totals, if it is active or
// its credits do not ask it to be (a void releases a hold on any account), and returns
// the posted balances.
const pgApplyCredits = `UPDATE accounts SET credits_posted = credits_posted + j.posted, credits_pending = credits_pending + j.pending
	FROM unnest(?::text[], ?::bigint[], ?::bigint[], ?::boolean[]) AS j (id, posted, pending, any_status)
	WHERE accounts.id = j.id AND (accounts.status = 'active' OR j.any_status)
	RETURNING accounts.id, accounts.credits_posted - accounts.debits_posted`

// creditSum is one account's waiting credits, summed for its UPDATE.
type creditSum struct {
	posted, pending int64
	active          bool  // one of them needs the account active
	credits         []int // their indexes in pendingAppends.credits, in the order made
	balance         int64 // the posted balance the UPDATE returned
	done            bool  // the UPDATE changed the account
}

// walkBack marks the account's credits applied and gives each credited transfer its
// balance after: the account's last change is its last credit, so from the balance now
// it walks back. It returns the credits' indexes, last first, as they were applied.
func (s *creditSum) walkBack(p *pendingAppends) []int {
	balance := s.balance
	order := make([]int, 0, len(s.credits))
	for k := len(s.credits) - 1; k >= 0; k-- {
		c := &p.credits[s.credits[k]]
		if c.tr >= 0 {
			tr := &p.trs[c.tr]
			tr.CreditBalanceAfter, tr.BalancesAfterKnown = balance, true
		}
		balance -= c.posted
		c.applied = true
		order = append(order, s.credits[k])
	}
	return order
}
