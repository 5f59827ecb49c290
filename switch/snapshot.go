package payswitch

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/payswitch/payswitch/otp"
	"github.com/payswitch/payswitch/store"
)

// snapshotSource is where an applier reads its decision's snapshot inside the write:
// with the ledger's own reads of accounts, the only reads on a decision's path.
// sqliteSnapshots reads them on the store's single writer, where nothing else can change
// them before the commit; a driver for a database that several processes write at once
// (PostgreSQL) would read the same rows under row locks (SELECT ... FOR UPDATE), so that
// what the decision saw holds until its commit.
type snapshotSource interface {
	// payment is the payment id, or ErrNotFound.
	payment(id string) (*Payment, error)
	// pending is msisdn's payment waiting for its code, or nil.
	pending(msisdn string) (*Payment, error)
	// booked is the payment an operator booked under request key, or nil.
	booked(key string) (*Payment, error)
	// waiting is what a confirmation reads of msisdn's waiting payment, or nil.
	waiting(msisdn, origin string) (*waiting, error)
	// lockedUntil is msisdn's number_locks.locked_until (Unix µs), 0 for none.
	lockedUntil(msisdn string) (int64, error)
	// numberState is what a request reads of msisdn on day.
	numberState(msisdn string, day int64) (numberState, error)
}

// sqliteSnapshots reads snapshots in tx, a transaction of the store's single writer.
type sqliteSnapshots struct {
	ctx     context.Context
	tx      store.Tx
	locksOn bool // the wrong-code lock is configured: otherwise no lock is read
}

var _ snapshotSource = (*sqliteSnapshots)(nil)

func (q sqliteSnapshots) payment(id string) (*Payment, error) { return loadPayment(q.ctx, q.tx, id) }

func (q sqliteSnapshots) pending(msisdn string) (*Payment, error) {
	return loadPending(q.ctx, q.tx, msisdn)
}

func (q sqliteSnapshots) booked(key string) (*Payment, error) {
	p, err := scanPayment(q.tx.QueryRowContext(q.ctx, `SELECT `+paymentColumns+` FROM payments WHERE request_key = ?`, key))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	return p, err
}

// waiting is a number's pending payment as a confirmation reads it: its ID, what of it
// can change while it waits, its code, the number's wrong codes and lock, and the wrong
// codes that the confirmation's origin has counted against the number.
type waiting struct {
	id                   string
	expiresAt, updatedAt int64
	code                 otp.Stored
	lock                 numberLock
	originWrong          wrongWindow
}

// waitingQuery reads what waiting returns for number ?1 and origin ?2. (A var only
// because otp names its columns; nothing changes it.)
var waitingQuery = `SELECT p.id, p.expires_at, p.updated_at, ` + otp.StoredColumns("c") + `,
		COALESCE(l.window_start, 0), COALESCE(l.wrong_codes, 0), COALESCE(l.locked_until, 0),
		COALESCE(w.window_start, 0), COALESCE(w.wrong_codes, 0)
	FROM payments AS p ` + otp.StoredJoin("c", "p.id") + `
		LEFT JOIN number_locks AS l ON l.msisdn = ?1
		LEFT JOIN origin_wrong_codes AS w ON w.msisdn = ?1 AND w.origin = ?2
	WHERE p.payer_msisdn = ?1 AND p.state = 'pending_otp'`

// waiting reads, in one statement, msisdn's pending payment with its code, its
// wrong-code counts and lock and what origin counted against it; nil when nothing waits.
func (q sqliteSnapshots) waiting(msisdn, origin string) (*waiting, error) {
	var w waiting
	dest := append([]any{&w.id, &w.expiresAt, &w.updatedAt}, w.code.Dest()...)
	dest = append(dest, &w.lock.Start, &w.lock.Count, &w.lock.Until, &w.originWrong.Start, &w.originWrong.Count)
	err := q.tx.QueryRowContext(q.ctx, waitingQuery, msisdn, origin).Scan(dest...)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("pending payment: %w", err)
	}
	return &w, nil
}

// lockedUntil is msisdn's number_locks.locked_until (Unix µs), 0 when it has none or
// locks are off.
func (q sqliteSnapshots) lockedUntil(msisdn string) (int64, error) {
	if !q.locksOn {
		return 0, nil
	}
	var until int64
	err := q.tx.QueryRowContext(q.ctx, `SELECT locked_until FROM number_locks WHERE msisdn = ?`, msisdn).Scan(&until)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return 0, fmt.Errorf("number lock: %w", err)
	}
	return until, nil
}

// numberState is what a new request from a number must know inside its transaction.
type numberState struct {
	pending     string // the ID of its payment waiting for a code, or ""
	lockedUntil int64  // its number_locks.locked_until (Unix µs), 0 for none
	spent       int64  // what it has committed on the day asked for
}

// numberStateQuery reads a number's (?1) pending payment, lock and total for day ?2.
const numberStateQuery = `SELECT
	COALESCE((SELECT id FROM payments WHERE payer_msisdn = ?1 AND state = 'pending_otp'), ''),
	COALESCE((SELECT locked_until FROM number_locks WHERE msisdn = ?1), 0),
	COALESCE((SELECT amount FROM daily_totals WHERE msisdn = ?1 AND day = ?2), 0)`

// numberState reads, in one statement, the number's pending payment, its wrong-code lock
// and its total for day.
func (q sqliteSnapshots) numberState(msisdn string, day int64) (numberState, error) {
	var n numberState
	err := q.tx.QueryRowContext(q.ctx, numberStateQuery, msisdn, day).Scan(&n.pending, &n.lockedUntil, &n.spent)
	if err != nil {
		return numberState{}, fmt.Errorf("number state: %w", err)
	}
	return n, nil
}
