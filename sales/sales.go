// Package sales reports a merchant's takings by hour or day, per store (contract section
// 11), computed from the ledger so that they agree with it and with settlement:
//
//	gross    = merchant_payment and escrow_release credits to the merchant's account
//	refunds  = refund and reversal debits from it (both give a payment's money back)
//	net      = gross - refunds
//	payments = how many credits make gross
//	average_ticket = gross / payments, rounded half up to a minor unit (0 without payments)
//
// Each entry falls in the period of its journal time, in the business time zone: a
// refund counts when it is made, against the store of the payment it refunds (the
// refund's transfer names the refunded payment). Periods with nothing are left out.
//
// Whole hours are read from sales_hourly (Schema), which triggers keep in the
// transaction of each entry, so that a month of a busy merchant reads a few hundred
// rows; the ends of a range that are not whole hours, a business time zone that is not
// a whole number of hours from UTC, and a database without the table are read from the
// ledger's entries, where a payment's store is the payments table's, which package
// switch owns: a StoresOf answers it.
package sales

import (
	"context"
	"database/sql"
	"fmt"
	"sort"
	"time"

	"github.com/payswitch/payswitch/ledger"
	"github.com/payswitch/payswitch/store"
	payswitch "github.com/payswitch/payswitch/switch"
)

// The ledger kinds sales count, as package switch names them (KindEscrowRelease,
// KindRefund; ledger.KindReversal).
const (
	KindMerchantPayment = "merchant_payment"
	KindEscrowRelease   = "escrow_release"
	KindRefund          = "refund"
)

// MainStore names the merchant's own code among its stores: the payments made to it
// rather than to a store's till.
const MainStore = "main"

// MaxRange is the longest range a report covers.
const MaxRange = 366 * 24 * time.Hour

// Periods a report is grouped by.
const (
	ByHour = "hour"
	ByDay  = "day"
)

// StoresOf returns the store of each payment of ids that was paid to a store's till
// (payswitch.PaymentStores); a payment to the merchant's own code is left out.
type StoresOf func(ctx context.Context, q ledger.Querier, ids []string) (map[string]string, error)

// Query asks for a report of Merchant's sales in [From, To), by By, of one store when
// Store is not "" (MainStore for the merchant's own code).
type Query struct {
	Merchant string
	From, To time.Time
	By       string
	Store    string
}

// Row is one period of one store.
type Row struct {
	Period        time.Time // the period's start, in the business time zone
	Store         string    // a store's ID, or MainStore
	Payments      int64
	Gross         int64
	Refunds       int64
	Net           int64
	AverageTicket int64
}

// Reports reads sales from the ledger. It is safe for concurrent use.
type Reports struct {
	db       *sql.DB // a reader: each report reads one snapshot in a read transaction
	dialect  store.Dialect
	storesOf StoresOf
	loc      *time.Location
}

var _ payswitch.SalesReader = (*Reports)(nil)

// New returns reports read from db (the store's reader pool, SQLite's or PostgreSQL's) in the business time zone
// loc; storesOf nil reports every payment under MainStore.
func New(db *sql.DB, storesOf StoresOf, loc *time.Location) *Reports {
	if loc == nil {
		loc = time.UTC
	}
	return &Reports{db: db, dialect: dialectOf(db), storesOf: storesOf, loc: loc}
}

// Check refuses a query that cannot be answered (payswitch.ErrInvalid): no range, a range
// that ends before it starts or spans more than MaxRange, or a period that is neither
// hour nor day.
func (q Query) Check() error {
	switch {
	case q.By != ByHour && q.By != ByDay:
		return fmt.Errorf("%w: by: %q or %q", payswitch.ErrInvalid, ByHour, ByDay)
	case q.From.IsZero() || q.To.IsZero():
		return fmt.Errorf("%w: from and to are required (RFC 3339)", payswitch.ErrInvalid)
	case !q.From.Before(q.To):
		return fmt.Errorf("%w: from must be before to", payswitch.ErrInvalid)
	case q.To.Sub(q.From) > MaxRange:
		return fmt.Errorf("%w: a report covers at most 366 days", payswitch.ErrInvalid)
	}
	return nil
}

type bucketKey struct {
	period time.Time
	store  string
}

// Report returns q's rows, by period then store.
func (r *Reports) Report(ctx context.Context, q Query) ([]Row, error) {
	if err := q.Check(); err != nil {
		return nil, err
	}
	buckets := map[bucketKey]*Row{}
	err := r.walk(ctx, q.Merchant, q.From, q.To, func(c cell) {
		if q.Store != "" && c.store != q.Store {
			return
		}
		k := bucketKey{period: r.periodOf(c.at, q.By), store: c.store}
		row := buckets[k]
		if row == nil {
			row = &Row{Period: k.period, Store: c.store}
			buckets[k] = row
		}
		add(row, c)
	})
	if err != nil {
		return nil, err
	}
	rows := make([]Row, 0, len(buckets))
	for _, row := range buckets {
		finish(row)
		rows = append(rows, *row)
	}
	sort.Slice(rows, func(i, j int) bool {
		if !rows[i].Period.Equal(rows[j].Period) {
			return rows[i].Period.Before(rows[j].Period)
		}
		return rows[i].Store < rows[j].Store
	})
	return rows, nil
}

// Totals are merchantID's takings in [from, to), of its store storeID when not "" (SALES
// by SMS).
func (r *Reports) Totals(ctx context.Context, merchantID, storeID string, from, to time.Time) (payswitch.SalesTotals, error) {
	var row Row
	err := r.walk(ctx, merchantID, from, to, func(c cell) {
		if storeID == "" || c.store == storeID {
			add(&row, c)
		}
	})
	finish(&row)
	return payswitch.SalesTotals{Payments: row.Payments, Gross: row.Gross, Refunds: row.Refunds, Net: row.Net}, err
}

// cell is what walk yields: a store's takings at a time (an entry's) or in the UTC hour
// that starts at it (sales_hourly's).
type cell struct {
	at                       time.Time
	store                    string
	payments, gross, refunds int64
}

func add(row *Row, c cell) {
	row.Payments += c.payments
	row.Gross += c.gross
	row.Refunds += c.refunds
}

func finish(row *Row) {
	row.Net = row.Gross - row.Refunds
	if row.Payments > 0 {
		row.AverageTicket = (row.Gross + row.Payments/2) / row.Payments
	}
}

// periodOf is the start of the hour or day of at in the business time zone.
func (r *Reports) periodOf(at time.Time, by string) time.Time {
	l := at.In(r.loc)
	if by == ByDay {
		return time.Date(l.Year(), l.Month(), l.Day(), 0, 0, 0, 0, r.loc)
	}
	return time.Date(l.Year(), l.Month(), l.Day(), l.Hour(), 0, 0, 0, r.loc)
}

// walk calls fn with merchantID's takings in [from, to), in one read transaction: the
// whole UTC hours from sales_hourly, when the business time zone keeps whole hours
// (its offset is a number of hours at both ends), and the rest from the ledger's entries.
func (r *Reports) walk(ctx context.Context, merchantID string, from, to time.Time, fn func(cell)) error {
	tx, err := r.db.BeginTx(ctx, readOptions(r.dialect))
	if err != nil {
		return fmt.Errorf("sales: %w", err)
	}
	defer tx.Rollback()
	hours, err := r.hasHours(ctx, tx)
	if err != nil {
		return err
	}
	first, last := from.UTC().Truncate(time.Hour), to.UTC().Truncate(time.Hour)
	if first.Before(from) {
		first = first.Add(time.Hour)
	}
	if !hours || !wholeHours(from.In(r.loc)) || !wholeHours(to.In(r.loc)) || !first.Before(last) {
		return r.walkEntries(ctx, tx, merchantID, from, to, fn)
	}
	if err := r.walkEntries(ctx, tx, merchantID, from, first, fn); err != nil {
		return err
	}
	if err := r.walkHours(ctx, tx, merchantID, first, last, fn); err != nil {
		return err
	}
	return r.walkEntries(ctx, tx, merchantID, last, to, fn)
}

// wholeHours reports whether t's zone is a whole number of hours from UTC.
func wholeHours(t time.Time) bool {
	_, off := t.Zone()
	return off%3600 == 0
}

// hourLayout is how sales_hourly names an hour: the start of ledger.TimeLayout.
const hourLayout = "2006-01-02T15"

// hasHours reports whether sales_hourly exists (Schema was opened); without it every
// report is read from the entries.
func (r *Reports) hasHours(ctx context.Context, tx *sql.Tx) (bool, error) {
	var n int
	if err := tx.QueryRowContext(ctx, hasHoursSQL(r.dialect)).Scan(&n); err != nil {
		return false, fmt.Errorf("sales: %w", err)
	}
	return n > 0, nil
}

// walkHours yields the rows of sales_hourly of merchantID from hour first to before
// hour last (UTC).
func (r *Reports) walkHours(ctx context.Context, tx *sql.Tx, merchantID string, first, last time.Time, fn func(cell)) error {
	rows, err := tx.QueryContext(ctx, `SELECT hour, store, payments, gross, refunds FROM sales_hourly
		WHERE merchant_id = ? AND hour >= ? AND hour < ?`, merchantID, first.Format(hourLayout), last.Format(hourLayout))
	if err != nil {
		return fmt.Errorf("sales: read hours: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var c cell
		var hour string
		if err := rows.Scan(&hour, &c.store, &c.payments, &c.gross, &c.refunds); err != nil {
			return fmt.Errorf("sales: read hours: %w", err)
		}
		if c.at, err = time.Parse(hourLayout, hour); err != nil {
			return fmt.Errorf("sales: read hours: hour %q: %w", hour, err)
		}
		fn(c)
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("sales: read hours: %w", err)
	}
	return nil
}

// walkEntries yields merchantID's entries in [from, to) that sales count, each under
// the store of its payment.
func (r *Reports) walkEntries(ctx context.Context, tx *sql.Tx, merchantID string, from, to time.Time, fn func(cell)) error {
	if !from.Before(to) {
		return nil
	}
	span, err := ledger.JournalSpan(ctx, tx, from, to)
	if err != nil {
		return fmt.Errorf("sales: %w", err)
	}
	var es []cell
	var ids []string
	for e, err := range ledger.AccountEntriesOfKinds(ctx, tx, merchantID, span,
		KindMerchantPayment, KindEscrowRelease, KindRefund, ledger.KindReversal) {
		if err != nil {
			return fmt.Errorf("sales: %w", err)
		}
		switch {
		case e.Direction == ledger.Credit && (e.Kind == KindMerchantPayment || e.Kind == KindEscrowRelease):
			es = append(es, cell{at: e.Time, payments: 1, gross: e.Amount})
		case e.Direction == ledger.Debit && (e.Kind == KindRefund || e.Kind == ledger.KindReversal):
			es = append(es, cell{at: e.Time, refunds: e.Amount})
		default:
			continue
		}
		ids = append(ids, e.PaymentID)
	}
	stores, err := r.stores(ctx, tx, ids)
	if err != nil {
		return err
	}
	for i, c := range es {
		if c.store = stores[ids[i]]; c.store == "" {
			c.store = MainStore
		}
		fn(c)
	}
	return nil
}

// storesBatch is how many payments one question to StoresOf names.
const storesBatch = 500

// stores asks StoresOf the store of each payment of ids, a batch at a time.
func (r *Reports) stores(ctx context.Context, tx *sql.Tx, ids []string) (map[string]string, error) {
	out := map[string]string{}
	if r.storesOf == nil {
		return out, nil
	}
	seen := map[string]bool{}
	batch := make([]string, 0, storesBatch)
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		m, err := r.storesOf(ctx, tx, batch)
		if err != nil {
			return fmt.Errorf("sales: stores of payments: %w", err)
		}
		for k, v := range m {
			out[k] = v
		}
		batch = batch[:0]
		return nil
	}
	for _, pid := range ids {
		if pid == "" || seen[pid] {
			continue
		}
		seen[pid] = true
		if batch = append(batch, pid); len(batch) == storesBatch {
			if err := flush(); err != nil {
				return nil, err
			}
		}
	}
	if err := flush(); err != nil {
		return nil, err
	}
	return out, nil
}
