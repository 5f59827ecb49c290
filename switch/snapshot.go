package payswitch

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"

	"github.com/payswitch/payswitch/ledger"
	"github.com/payswitch/payswitch/otp"
	"github.com/payswitch/payswitch/store"
)

// snapshotSource is where an applier reads its decision's snapshot inside the write:
// with the ledger's own reads of accounts, the only reads on a decision's path.
// sqliteSnapshots reads them on the store's single writer, where nothing else can change
// them before the commit; pgSnapshots (snapshot_postgres.go), for PostgreSQL, which
// several nodes write at once, reads the same rows after a lock on what they are about,
// so that what the decision saw holds until its commit there too.
type snapshotSource interface {
	// serialise makes the rest of the write wait for, and then exclude, every other
	// decision about what: the reads that no method below makes (an account's balance
	// checked against a cap, LOCK's counts). Nothing on SQLite, whose one writer
	// serialises every decision already.
	serialise(what lockKind, key string) error

	// payment is the payment id, or ErrNotFound.
	payment(id string) (*Payment, error)
	// pending is msisdn's payment waiting for its code, or nil.
	pending(msisdn string) (*Payment, error)
	// booked is the payment an operator booked under request key, or nil.
	booked(key string) (*Payment, error)
	// waiting is what a confirmation reads of msisdn's waiting payments: its own
	// (pending_otp) first, then a merchant's request (requested); none, one or both.
	waiting(msisdn, origin string) ([]waiting, error)
	// requested is msisdn's merchant's request waiting for its code, or nil.
	requested(msisdn string) (*Payment, error)
	// items are payment id's items, nil when it has none.
	items(id string) ([]Item, error)
	// requestState is what a request to pay from merchant (an account ID, "" for an
	// airtime reminder) reads of the number msisdn.
	requestState(msisdn, merchant string) (requestState, error)
	// stopState is whether msisdn refused merchant's requests (STOP), and how many
	// merchants it refused.
	stopState(msisdn, merchant string) (stopped bool, stops int, err error)
	// spent is what msisdn has committed on day (Unix µs of its midnight).
	spent(msisdn string, day int64) (int64, error)
	// lockedUntil is msisdn's number_locks.locked_until (Unix µs), 0 for none.
	lockedUntil(msisdn string) (int64, error)
	// numberState is what a request reads of msisdn on day, and of its account.
	numberState(msisdn, account string, day int64) (numberState, error)

	// refundState is the refund merchant made under reference, or nil, and how many
	// refunds payment has (refund.go).
	refundState(payment, merchant, reference string) (*Refund, int, error)

	// kyc is account id's row of wallet_kyc: its tier and id number's digest (kyc.go).
	kyc(id string) (walletKYC, error)
}

// sqliteSnapshots reads snapshots in tx, a transaction of the store's single writer.
type sqliteSnapshots struct {
	ctx     context.Context
	tx      store.Tx
	locksOn bool // the wrong-code lock is configured: otherwise no lock is read
}

var _ snapshotSource = (*sqliteSnapshots)(nil)

func (q sqliteSnapshots) serialise(lockKind, string) error { return nil }

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

// waiting is a number's payment waiting for its code as a confirmation reads it: its
// ID and state (pending_otp: the payer's own; requested: a merchant's request), what of
// it can change while it waits, its code, the number's wrong codes and lock, and the
// wrong codes that the confirmation's origin has counted against the number.
type waiting struct {
	id                   string
	state                State
	expiresAt, updatedAt int64
	code                 otp.Stored
	lock                 numberLock
	originWrong          wrongWindow
}

// waitingOne reads, for number ?1 and origin ?2, the payment in state {state} with its
// code and the number's counts.
const waitingOne = `SELECT p.id, p.state, p.expires_at, p.updated_at, {code},
		COALESCE(l.window_start, 0), COALESCE(l.wrong_codes, 0), COALESCE(l.locked_until, 0),
		COALESCE(w.window_start, 0), COALESCE(w.wrong_codes, 0)
	FROM payments AS p {join}
		LEFT JOIN number_locks AS l ON l.msisdn = ?1
		LEFT JOIN origin_wrong_codes AS w ON w.msisdn = ?1 AND w.origin = ?2
	WHERE p.payer_msisdn = ?1 AND p.state = '{state}'`

// waitingQuery reads what waiting returns for number ?1 and origin ?2: each branch finds
// its payment through its own partial unique index (one_pending_per_number,
// one_request_per_number), so that a number with a long history costs no more. (A var
// only because otp names its columns; nothing changes it.)
var waitingQuery = strings.NewReplacer("{code}", otp.StoredColumns("c"), "{join}", otp.StoredJoin("c", "p.id"),
	"{state}", string(StatePendingOTP)).Replace(waitingOne) + "\nUNION ALL\n" +
	strings.NewReplacer("{code}", otp.StoredColumns("c"), "{join}", otp.StoredJoin("c", "p.id"),
		"{state}", string(StateRequested)).Replace(waitingOne)

// waiting reads, in one statement, msisdn's payments waiting for a code (its own first,
// then a merchant's request), each with its code, and the number's wrong-code counts and
// lock and what origin counted against it; none when nothing waits.
func (q sqliteSnapshots) waiting(msisdn, origin string) ([]waiting, error) {
	rows, err := q.tx.QueryContext(q.ctx, waitingQuery, msisdn, origin)
	if err != nil {
		return nil, fmt.Errorf("waiting payments: %w", err)
	}
	defer rows.Close()
	var out []waiting
	for rows.Next() {
		out = append(out, waiting{})
		w := &out[len(out)-1]
		dest := append([]any{&w.id, &w.state, &w.expiresAt, &w.updatedAt}, w.code.Dest()...)
		dest = append(dest, &w.lock.Start, &w.lock.Count, &w.lock.Until, &w.originWrong.Start, &w.originWrong.Count)
		if err := rows.Scan(dest...); err != nil {
			return nil, fmt.Errorf("waiting payments: %w", err)
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("waiting payments: %w", err)
	}
	return out, nil
}

func (q sqliteSnapshots) requested(msisdn string) (*Payment, error) {
	return loadRequested(q.ctx, q.tx, msisdn)
}

func (q sqliteSnapshots) items(id string) ([]Item, error) { return itemsOf(q.ctx, q.tx, id) }

// requestState is what a request to pay reads of its number inside its write.
type requestState struct {
	waiting          string // the ID of the number's request waiting for its code, or ""
	stopped          bool   // the number refused the merchant's requests
	merchant, number requestCount
}

// requestStateQuery reads number ?1's waiting request, its STOP for merchant ?2, and the
// request counts of subjects ?3 (the merchant) and ?4 (the number).
const requestStateQuery = `SELECT
	COALESCE((SELECT id FROM payments WHERE payer_msisdn = ?1 AND state = 'requested'), ''),
	EXISTS (SELECT 1 FROM request_stops WHERE msisdn = ?1 AND merchant = ?2),
	COALESCE((SELECT window_start FROM request_counts WHERE subject = ?3), 0),
	COALESCE((SELECT count FROM request_counts WHERE subject = ?3), 0),
	COALESCE((SELECT window_start FROM request_counts WHERE subject = ?4), 0),
	COALESCE((SELECT count FROM request_counts WHERE subject = ?4), 0)`

// requestState reads, in one statement, what a request to pay from merchant decides on
// of the number msisdn.
func (q sqliteSnapshots) requestState(msisdn, merchant string) (requestState, error) {
	r := requestState{merchant: requestCount{Subject: merchantSubject(merchant)}, number: requestCount{Subject: numberSubject(msisdn)}}
	err := q.tx.QueryRowContext(q.ctx, requestStateQuery, msisdn, merchant, r.merchant.Subject, r.number.Subject).Scan(
		&r.waiting, &r.stopped, &r.merchant.Start, &r.merchant.Count, &r.number.Start, &r.number.Count)
	if err != nil {
		return requestState{}, fmt.Errorf("request state: %w", err)
	}
	return r, nil
}

// stopStateQuery reads whether number ?1 refused merchant ?2's requests, and how many
// merchants' it refused.
const stopStateQuery = `SELECT EXISTS (SELECT 1 FROM request_stops WHERE msisdn = ?1 AND merchant = ?2),
	(SELECT count(*) FROM request_stops WHERE msisdn = ?1)`

func (q sqliteSnapshots) stopState(msisdn, merchant string) (stopped bool, stops int, err error) {
	err = q.tx.QueryRowContext(q.ctx, stopStateQuery, msisdn, merchant).Scan(&stopped, &stops)
	if err != nil {
		return false, 0, fmt.Errorf("requests stopped: %w", err)
	}
	return stopped, stops, nil
}

func (q sqliteSnapshots) spent(msisdn string, day int64) (int64, error) {
	var amount int64
	err := q.tx.QueryRowContext(q.ctx, `SELECT amount FROM daily_totals WHERE msisdn = ? AND day = ?`, msisdn, day).Scan(&amount)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return 0, fmt.Errorf("daily total: %w", err)
	}
	return amount, nil
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
	tier        int    // its account's KYC tier (wallet_kyc; DefaultTier without a row)
	// payerStatus is its account's status ("" if the account is not there).
	payerStatus ledger.Status
}

// numberStateQuery reads a number's (?1) pending payment, lock and total for day ?2, and
// the tier and status of its account ?3 (point lookups by wallet_kyc's and accounts'
// primary keys).
const numberStateQuery = `SELECT
	COALESCE((SELECT id FROM payments WHERE payer_msisdn = ?1 AND state = 'pending_otp'), ''),
	COALESCE((SELECT locked_until FROM number_locks WHERE msisdn = ?1), 0),
	COALESCE((SELECT amount FROM daily_totals WHERE msisdn = ?1 AND day = ?2), 0),
	COALESCE((SELECT tier FROM wallet_kyc WHERE account_id = ?3), ` + defaultTierSQL + `),
	COALESCE((SELECT status FROM accounts WHERE id = ?3), '')`

// numberState reads, in one statement, the number's pending payment, its wrong-code lock
// and its total for day, and the tier and status of its account.
func (q sqliteSnapshots) numberState(msisdn, account string, day int64) (numberState, error) {
	var n numberState
	err := q.tx.QueryRowContext(q.ctx, numberStateQuery, msisdn, day, account).Scan(&n.pending, &n.lockedUntil, &n.spent, &n.tier, &n.payerStatus)
	if err != nil {
		return numberState{}, fmt.Errorf("number state: %w", err)
	}
	return n, nil
}
