package main

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/payswitch/payswitch/console"
)

// The console's reads of the engine's payment tables. They live here, beside the
// console's adapter, not in the engine: they only read, and the engine is being
// reshaped while the tables stay as they are.

// consolePaymentCols are the payment columns the console shows, after the rowid.
const consolePaymentCols = `rowid AS rid, id, type, channel, state, payer_msisdn, payer_account, payee_account,
	payee_name, payee_code, payee_msisdn, target_msisdn, amount, currency, reference, reason,
	COALESCE(reversal_ref, ''), expires_at, created_at, updated_at,
	store, refunded, escrow, release_at, fee, risk, risk_rules`

func scanConsolePayment(s interface{ Scan(...any) error }) (p console.Payment, rid int64, err error) {
	var expires, created, updated, release int64
	err = s.Scan(&rid, &p.ID, &p.Type, &p.Channel, &p.State, &p.PayerMSISDN, &p.PayerAccount, &p.PayeeAccount,
		&p.PayeeName, &p.PayeeCode, &p.PayeeMSISDN, &p.Target, &p.Amount, &p.Currency, &p.Reference, &p.Reason,
		&p.ReversalRef, &expires, &created, &updated,
		&p.Store, &p.Refunded, &p.Escrow, &release, &p.Fee, &p.Risk, &p.RiskRules)
	p.ExpiresAt, p.CreatedAt, p.UpdatedAt = fromMicros(expires), fromMicros(created), fromMicros(updated)
	p.ReleaseAt = fromMicros(release)
	return p, rid, err
}

func fromMicros(v int64) time.Time {
	if v == 0 {
		return time.Time{}
	}
	return time.UnixMicro(v).UTC()
}

// numberPaymentsQuery is a page of the payments a number made or received, newest
// first, before the cursor (created_at, rowid): keyset pagination, each half read
// backwards along its index (payments_by_payer, payments_by_payee), which end in the
// rowid, so a page costs its rows whatever page it is and however many payments the
// number has. The second half leaves out what the first has (a payment to oneself).
// One text serves both databases: PostgreSQL (before 16) wants each subquery in FROM
// named, and its payments table has a rowid column of its own (switch's schema).
const numberPaymentsQuery = `SELECT * FROM (
	SELECT ` + consolePaymentCols + ` FROM payments
	WHERE payer_msisdn = ?1 AND (created_at, rowid) < (?2, ?3)
	ORDER BY created_at DESC, rowid DESC LIMIT ?4) AS made
UNION ALL
SELECT * FROM (
	SELECT ` + consolePaymentCols + ` FROM payments
	WHERE payee_msisdn = ?1 AND payee_msisdn <> '' AND payer_msisdn <> ?1 AND (created_at, rowid) < (?2, ?3)
	ORDER BY created_at DESC, rowid DESC LIMIT ?4) AS received
ORDER BY created_at DESC, rid DESC LIMIT ?4`

// numberPayments is a page of limit payments of msisdn before cursor ("" for the first
// page, else "created_at.rowid" of the last payment shown); next is the cursor of the
// page after, "" when this one is the last.
func numberPayments(ctx context.Context, db *sql.DB, msisdn, cursor string, limit int) (ps []console.Payment, next string, err error) {
	before, beforeRow := int64(1<<62), int64(1<<62)
	if cursor != "" {
		a, b, ok := strings.Cut(cursor, ".")
		before, err = strconv.ParseInt(a, 10, 64)
		if err == nil {
			beforeRow, err = strconv.ParseInt(b, 10, 64)
		}
		if !ok || err != nil {
			return nil, "", fmt.Errorf("%w: page cursor %q", console.ErrRefused, cursor)
		}
	}
	rows, err := db.QueryContext(ctx, numberPaymentsQuery, msisdn, before, beforeRow, limit+1)
	if err != nil {
		return nil, "", fmt.Errorf("payments of a number: %w", err)
	}
	defer rows.Close()
	var rids []int64
	for rows.Next() {
		p, rid, err := scanConsolePayment(rows)
		if err != nil {
			return nil, "", fmt.Errorf("payments of a number: %w", err)
		}
		ps, rids = append(ps, p), append(rids, rid)
	}
	if err := rows.Err(); err != nil {
		return nil, "", fmt.Errorf("payments of a number: %w", err)
	}
	if len(ps) > limit {
		ps = ps[:limit]
		last := ps[limit-1]
		next = strconv.FormatInt(last.CreatedAt.UnixMicro(), 10) + "." + strconv.FormatInt(rids[limit-1], 10)
	}
	return ps, next, nil
}

// consolePayment reads one payment by ID through its primary key.
func consolePayment(ctx context.Context, db *sql.DB, id string) (console.Payment, error) {
	p, _, err := scanConsolePayment(db.QueryRowContext(ctx, `SELECT `+consolePaymentCols+` FROM payments WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return console.Payment{}, fmt.Errorf("%w: payment %s", console.ErrNotFound, id)
	}
	if err != nil {
		return console.Payment{}, fmt.Errorf("payment %s: %w", id, err)
	}
	return p, nil
}

// paymentTimeline is a payment's state changes, oldest first, through
// payment_events_by_payment.
func paymentTimeline(ctx context.Context, db *sql.DB, id string) ([]console.StateChange, error) {
	rows, err := db.QueryContext(ctx, `SELECT time, event, from_state, to_state, detail FROM payment_events
		WHERE payment_id = ? ORDER BY seq`, id)
	if err != nil {
		return nil, fmt.Errorf("timeline of %s: %w", id, err)
	}
	defer rows.Close()
	var out []console.StateChange
	for rows.Next() {
		var sc console.StateChange
		var t int64
		if err := rows.Scan(&t, &sc.Event, &sc.From, &sc.To, &sc.Detail); err != nil {
			return nil, fmt.Errorf("timeline of %s: %w", id, err)
		}
		sc.Time = fromMicros(t)
		out = append(out, sc)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("timeline of %s: %w", id, err)
	}
	return out, nil
}

// activityMaxRows bounds the payments the overview's chart counts: an hour at 1,000
// payments a second is 3.6 million rows, more than a page that redraws every few
// seconds should read. Past it, the chart shows the hour's first activityMaxRows.
const activityMaxRows = 300000

// paymentActivity counts the payments created since, per minute, state and channel.
// No index holds payments by time, but rowids are given in the order payments are
// created, so the first payment of the period is found by bisecting the rowids, and
// the count reads from there on.
func paymentActivity(ctx context.Context, db *sql.DB, since time.Time) ([]console.ActivityRow, error) {
	from, err := firstPaymentAt(ctx, db, since.UnixMicro())
	if err != nil || from == 0 {
		return nil, err
	}
	rows, err := db.QueryContext(ctx, `SELECT created_at / 60000000, state, channel, count(*) FROM payments
		WHERE rowid >= ? AND rowid < ? AND created_at >= ? GROUP BY 1, 2, 3`, from, from+activityMaxRows, since.UnixMicro())
	if err != nil {
		return nil, fmt.Errorf("payment activity: %w", err)
	}
	defer rows.Close()
	var out []console.ActivityRow
	for rows.Next() {
		var r console.ActivityRow
		var minute int64
		if err := rows.Scan(&minute, &r.State, &r.Channel, &r.Count); err != nil {
			return nil, fmt.Errorf("payment activity: %w", err)
		}
		r.Minute = time.Unix(minute*60, 0).UTC()
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("payment activity: %w", err)
	}
	return out, nil
}

// firstPaymentAt is the lowest rowid of a payment created at or after at (0: none).
func firstPaymentAt(ctx context.Context, db *sql.DB, at int64) (int64, error) {
	var lo, hi sql.NullInt64
	if err := db.QueryRowContext(ctx, `SELECT min(rowid), max(rowid) FROM payments`).Scan(&lo, &hi); err != nil {
		return 0, fmt.Errorf("payment rowids: %w", err)
	}
	if !hi.Valid {
		return 0, nil
	}
	// Every rowid below l was created before at; no rowid in [h, best) exists.
	l, h, best := lo.Int64, hi.Int64+1, int64(0)
	for l < h {
		mid := l + (h-l)/2
		var rid, created int64
		err := db.QueryRowContext(ctx, `SELECT rowid, created_at FROM payments WHERE rowid >= ? ORDER BY rowid LIMIT 1`, mid).Scan(&rid, &created)
		if errors.Is(err, sql.ErrNoRows) {
			h = mid
			continue
		}
		if err != nil {
			return 0, fmt.Errorf("payment at rowid %d: %w", mid, err)
		}
		if created >= at {
			best, h = rid, mid
		} else {
			l = rid + 1
		}
	}
	return best, nil
}
