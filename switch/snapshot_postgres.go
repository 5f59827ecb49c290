package payswitch

import (
	"database/sql"
	"errors"
	"fmt"
	"slices"

	"github.com/payswitch/payswitch/store"
)

// On PostgreSQL several switch nodes decide at once, each in a READ COMMITTED
// transaction of its own, so a snapshot read inside the write no longer holds until the
// commit by itself, as it does on SQLite's single writer. pgSnapshots makes it hold: it
// reads the same rows with the same statements as sqliteSnapshots, each after a
// transaction-scoped advisory lock on what the rows are about, so that every decision
// about one thing waits for the one before it to commit and then reads what it left
// (at READ COMMITTED each statement sees every commit before it). The locks are:
//
//   - a number ("payswitch number <msisdn>"): everything decided about it, its payment
//     and its request waiting for a code, its daily total, its wrong codes and lock, its
//     requests received and STOPs, and (through its account, which only its own
//     operations debit) its tier. A payment read by ID (a sweeper's, a refund's, an
//     operator's) locks its payer's number, or the payment itself when it has no payer
//     number (a deposit);
//   - an idempotency key ("payswitch key <key>"): an operator's booking or a merchant's
//     request under one reference, so that two nodes asked at once make one payment;
//   - a refund reference ("payswitch refund <merchant> <reference>");
//   - a merchant's request count ("payswitch merchant requests <id>"), only while the
//     per-merchant cap is on, for it is the one count that many numbers share;
//   - an account credited up to its tier's balance cap ("payswitch account <id>"), so
//     that two payers crediting one wallet at once cannot both fit under it;
//   - LOCK's attempt counts ("payswitch lock attempts"), which one global row caps.
//
// An operation takes them in that order (key, number, refund or merchant, account; no
// operation locks two numbers), so that two operations wait for each other instead of
// deadlocking; should they still (with the ledger's row locks), PostgreSQL aborts one
// and the store runs it again. The ledger locks its own rows (holds, accounts, the
// journal's head) inside, and the payment's state transitions stay conditional on the
// state read (move), the backstop of the locks.
type pgSnapshots struct {
	sqliteSnapshots
	merchantCap bool     // Requests.PerMerchantPerMinute is on: the merchant's count is locked
	held        []string // the locks this transaction holds, taken once each
}

var _ snapshotSource = (*pgSnapshots)(nil)

// lockKind names what a lock serialises (see pgSnapshots).
type lockKind string

const (
	lockNumber       lockKind = "number"
	lockKey          lockKind = "key"
	lockRefund       lockKind = "refund"
	lockMerchant     lockKind = "merchant requests"
	lockAccount      lockKind = "account"
	lockLockAttempts lockKind = "lock attempts"
)

// lockName is the advisory lock's name of what, as the SQL of paymentLockSQL spells it.
func lockName(what lockKind, key string) string { return "payswitch " + string(what) + " " + key }

// serialise takes the lock of what for the rest of the transaction, once.
func (q *pgSnapshots) serialise(what lockKind, key string) error {
	name := lockName(what, key)
	if slices.Contains(q.held, name) {
		return nil
	}
	// Sent with the read that follows it, in one round trip (store.Later): the read is
	// a statement of its own, so it still sees every commit made before the lock.
	if err := store.Later(q.ctx, q.tx, `SELECT pg_advisory_xact_lock(hashtextextended(?, 0))`, name); err != nil {
		return fmt.Errorf("lock %s: %w", what, err)
	}
	q.held = append(q.held, name)
	return nil
}

// paymentLockSQL locks payment ?1's payer's number (lockName(lockNumber, ...)), or the
// payment itself when it has no payer number, and returns the payer's number.
const paymentLockSQL = `SELECT payer_msisdn, pg_advisory_xact_lock(hashtextextended(
		CASE WHEN payer_msisdn = '' THEN 'payswitch payment ' || id ELSE 'payswitch number ' || payer_msisdn END, 0))::text
	FROM payments WHERE id = ?`

// payment locks payment id's number, then reads it: two statements, the second after
// the lock, so that it reads what the last decision about the number committed.
func (q *pgSnapshots) payment(id string) (*Payment, error) {
	var payer, void string
	err := q.tx.QueryRowContext(q.ctx, paymentLockSQL, id).Scan(&payer, &void)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return nil, ErrNotFound
	case err != nil:
		return nil, fmt.Errorf("lock payment %s: %w", id, err)
	}
	if payer != "" {
		q.held = append(q.held, lockName(lockNumber, payer))
	}
	return q.sqliteSnapshots.payment(id)
}

func (q *pgSnapshots) pending(msisdn string) (*Payment, error) {
	if err := q.serialise(lockNumber, msisdn); err != nil {
		return nil, err
	}
	return q.sqliteSnapshots.pending(msisdn)
}

func (q *pgSnapshots) booked(key string) (*Payment, error) {
	if err := q.serialise(lockKey, key); err != nil {
		return nil, err
	}
	return q.sqliteSnapshots.booked(key)
}

func (q *pgSnapshots) waiting(msisdn, origin string) ([]waiting, error) {
	if err := q.serialise(lockNumber, msisdn); err != nil {
		return nil, err
	}
	return q.sqliteSnapshots.waiting(msisdn, origin)
}

func (q *pgSnapshots) requested(msisdn string) (*Payment, error) {
	if err := q.serialise(lockNumber, msisdn); err != nil {
		return nil, err
	}
	return q.sqliteSnapshots.requested(msisdn)
}

// requestState locks the number, and the merchant's count while its cap is on.
func (q *pgSnapshots) requestState(msisdn, merchant string) (requestState, error) {
	if err := q.serialise(lockNumber, msisdn); err != nil {
		return requestState{}, err
	}
	if q.merchantCap && merchant != "" {
		if err := q.serialise(lockMerchant, merchant); err != nil {
			return requestState{}, err
		}
	}
	return q.sqliteSnapshots.requestState(msisdn, merchant)
}

func (q *pgSnapshots) stopState(msisdn, merchant string) (bool, int, error) {
	if err := q.serialise(lockNumber, msisdn); err != nil {
		return false, 0, err
	}
	return q.sqliteSnapshots.stopState(msisdn, merchant)
}

func (q *pgSnapshots) spent(msisdn string, day int64) (int64, error) {
	if err := q.serialise(lockNumber, msisdn); err != nil {
		return 0, err
	}
	return q.sqliteSnapshots.spent(msisdn, day)
}

func (q *pgSnapshots) lockedUntil(msisdn string) (int64, error) {
	if err := q.serialise(lockNumber, msisdn); err != nil {
		return 0, err
	}
	return q.sqliteSnapshots.lockedUntil(msisdn)
}

func (q *pgSnapshots) numberState(msisdn, account string, day int64) (numberState, error) {
	if err := q.serialise(lockNumber, msisdn); err != nil {
		return numberState{}, err
	}
	return q.sqliteSnapshots.numberState(msisdn, account, day)
}

// refundState locks merchant's reference: the payment's number is locked already (the
// payment was read first), and two refunds of other payments under one reference
// must find each other.
func (q *pgSnapshots) refundState(payment, merchant, reference string) (*Refund, int, error) {
	if err := q.serialise(lockRefund, merchant+" "+reference); err != nil {
		return nil, 0, err
	}
	return q.sqliteSnapshots.refundState(payment, merchant, reference)
}
