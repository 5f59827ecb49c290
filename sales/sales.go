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
// refund counts when it is made, against the store of the payment it refunds. A
// payment's store is the payments table's, which package switch owns: a StoresOf
// answers it. Periods with nothing are left out.
package sales

import (
	"context"
	"database/sql"
	"fmt"
	"sort"
	"time"

	"github.com/payswitch/payswitch/ledger"
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
	storesOf StoresOf
	loc      *time.Location
}

var _ payswitch.SalesReader = (*Reports)(nil)

// New returns reports read from db (the store's reader pool) in the business time zone
// loc; storesOf nil reports every payment under MainStore.
func New(db *sql.DB, storesOf StoresOf, loc *time.Location) *Reports {
	if loc == nil {
		loc = time.UTC
	}
	return &Reports{db: db, storesOf: storesOf, loc: loc}
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
	err := r.walk(ctx, q.Merchant, q.From, q.To, func(at time.Time, store string, credit bool, amount int64) {
		if q.Store != "" && store != q.Store {
			return
		}
		k := bucketKey{period: r.periodOf(at, q.By), store: store}
		row := buckets[k]
		if row == nil {
			row = &Row{Period: k.period, Store: store}
			buckets[k] = row
		}
		add(row, credit, amount)
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
	err := r.walk(ctx, merchantID, from, to, func(_ time.Time, store string, credit bool, amount int64) {
		if storeID == "" || store == storeID {
			add(&row, credit, amount)
		}
	})
	finish(&row)
	return payswitch.SalesTotals{Payments: row.Payments, Gross: row.Gross, Refunds: row.Refunds, Net: row.Net}, err
}

func add(row *Row, credit bool, amount int64) {
	if credit {
		row.Payments++
		row.Gross += amount
	} else {
		row.Refunds += amount
	}
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

// walk calls fn with each of merchantID's entries in [from, to) that sales count, in
// one read transaction: credit for what makes gross, not for a refund or reversal.
func (r *Reports) walk(ctx context.Context, merchantID string, from, to time.Time,
	fn func(at time.Time, store string, credit bool, amount int64)) error {
	tx, err := r.db.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return fmt.Errorf("sales: %w", err)
	}
	defer tx.Rollback()
	span, err := ledger.JournalSpan(ctx, tx, from, to)
	if err != nil {
		return fmt.Errorf("sales: %w", err)
	}
	var es []counted
	for e, err := range ledger.AccountEntriesOfKinds(ctx, tx, merchantID, span,
		KindMerchantPayment, KindEscrowRelease, KindRefund, ledger.KindReversal) {
		if err != nil {
			return fmt.Errorf("sales: %w", err)
		}
		switch {
		case e.Direction == ledger.Credit && (e.Kind == KindMerchantPayment || e.Kind == KindEscrowRelease):
			es = append(es, counted{e, true})
		case e.Direction == ledger.Debit && (e.Kind == KindRefund || e.Kind == ledger.KindReversal):
			es = append(es, counted{e, false})
		}
	}
	ids := make([]string, 0, len(es))
	for _, c := range es {
		ids = append(ids, c.e.PaymentID)
	}
	stores, err := r.stores(ctx, tx, ids)
	if err != nil {
		return err
	}
	for _, c := range es {
		store := stores[c.e.PaymentID]
		if store == "" {
			store = MainStore
		}
		fn(c.e.Time, store, c.credit, c.e.Amount)
	}
	return nil
}

// storesBatch is how many payments one question to StoresOf names.
const storesBatch = 500

// counted is an entry that sales count: credit for gross, else a refund.
type counted struct {
	e      ledger.AccountEntry
	credit bool
}

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
