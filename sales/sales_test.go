package sales_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/payswitch/payswitch/internal/dbtest"

	"github.com/payswitch/payswitch/internal/pgtest"
	"github.com/payswitch/payswitch/ledger"
	"github.com/payswitch/payswitch/sales"
	"github.com/payswitch/payswitch/store"
	payswitch "github.com/payswitch/payswitch/switch"
)

var ctx = context.Background()

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

// driverOf is the driver of the pgtest.Both subtest tb is, or runs inside.
var driverOf = dbtest.Dialect

var nairobi = func() *time.Location {
	l, err := time.LoadLocation("Africa/Nairobi")
	if err != nil {
		panic(err)
	}
	return l
}()

type clock struct {
	mu sync.Mutex // guards t
	t  time.Time
}

func (c *clock) now() time.Time  { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) set(t time.Time) { c.mu.Lock(); c.t = t; c.mu.Unlock() }

// books are the ledger and the payments table on a real SQLite file, with a payer
// (W), a merchant (M1, code 55501), another merchant (M2) and the cash account.
type books struct {
	db    *store.DB
	l     *ledger.Ledger
	clock *clock
}

// openBooksWith opens the books with sales_hourly (sales.Schema) when hours is set, on a
// new database of tb's driver (driverOf); without it, every report is read from the
// ledger's entries.
func openBooksWith(tb testing.TB, hours bool) *books {
	tb.Helper()
	return openBooksAt(tb, newDatabase(tb), hours)
}

// newDatabase is where a new database of tb's driver is: a SQLite file in a temporary
// directory, or the URL of a new PostgreSQL database.
func newDatabase(tb testing.TB) string {
	tb.Helper()
	if driverOf(tb) == store.Postgres {
		return pgtest.URL(tb)
	}
	return filepath.Join(tb.TempDir(), "payswitch.db")
}

// openBooksAt is openBooksWith on the database at where (a file path or a postgres://
// URL); a database that has the accounts already keeps them.
func openBooksAt(tb testing.TB, where string, hours bool) *books {
	tb.Helper()
	db := openStore(tb, where, hours)
	c := &clock{t: time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)}
	b := &books{db: db, l: ledger.New(db, c.now), clock: c}
	var accounts int
	if err := db.Reader().QueryRowContext(ctx, `SELECT count(*) FROM accounts`).Scan(&accounts); err != nil {
		tb.Fatal(err)
	}
	if accounts > 0 {
		return b
	}
	if _, err := b.l.SystemAccount(ctx, ledger.Cash, "KES", "KES"); err != nil {
		tb.Fatal(err)
	}
	for _, a := range []ledger.NewAccount{
		{ID: "W", Type: ledger.Wallet, Currency: "KES", Name: "Alice", MSISDN: "254700000001"},
		{ID: "M1", Type: ledger.Merchant, Currency: "KES", Name: "Mama Mboga", Code: "55501"},
		{ID: "M2", Type: ledger.Merchant, Currency: "KES", Name: "Kiosk", Code: "55502"},
	} {
		if _, err := b.l.CreateAccount(ctx, a); err != nil {
			tb.Fatal(err)
		}
	}
	b.move(tb, c.t, "dep", "cash:KES", "W", 1_000_000_000_00, "deposit", "")
	return b
}

// openStore opens the ledger's and the payments' tables, and sales_hourly when hours is
// set, at where: a SQLite file, or a postgres:// URL (another node each time).
func openStore(tb testing.TB, where string, hours bool) *store.DB {
	tb.Helper()
	schemas := []store.Schema{ledger.Schema, payswitch.Schema}
	if hours {
		schemas = append(schemas, sales.Schema)
	}
	var db *store.DB
	var err error
	if strings.HasPrefix(where, "postgres") {
		db, err = store.OpenPostgres(ctx, where, store.Options{}, schemas...)
	} else {
		db, err = store.Open(where, store.Options{Synchronous: "OFF"}, schemas...)
	}
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { db.Close() })
	return db
}

// move books a transfer at t for payment pid and, for a payment of kind
// merchant_payment, its row in the payments table with store first, as the engine
// does (a payment is held, then posted).
func (b *books) move(tb testing.TB, t time.Time, pid, from, to string, amount int64, kind, store string) ledger.Transfer {
	tb.Helper()
	b.clock.set(t)
	if kind == sales.KindMerchantPayment { // a payment is made before its money moves
		b.insertPayments(tb, []paymentRow{{pid, to, amount, store, t}})
	}
	tr, err := b.l.Transfer(ctx, ledger.TransferRequest{Key: pid + ":" + kind, Debit: from, Credit: to,
		Amount: amount, PaymentID: pid, Kind: kind})
	if err != nil {
		tb.Fatalf("%s: %v", pid, err)
	}
	return tr
}

type paymentRow struct {
	id, payee string
	amount    int64
	store     string
	at        time.Time
}

func (b *books) insertPayments(tb testing.TB, ps []paymentRow) {
	tb.Helper()
	err := b.db.Write(ctx, func(tx store.Tx) error {
		for _, p := range ps {
			if _, err := tx.ExecContext(ctx, `INSERT INTO payments (id, type, channel, state, payer_account,
				payee_account, amount, currency, store, created_at, updated_at)
				VALUES (?, 'merchant_payment', 'sms', 'completed', 'W', ?, ?, 'KES', ?, ?, ?)`,
				p.id, p.payee, p.amount, p.store, p.at.UnixMicro(), p.at.UnixMicro()); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		tb.Fatal(err)
	}
}

// eat is a time in Nairobi (UTC+3) on December 2026.
func eat(day, hour, minute int) time.Time {
	return time.Date(2026, 12, day, hour, minute, 0, 0, nairobi)
}

// seedReport books M1's payments, release, refund and reversal around 1 December in
// Nairobi, and a payment of M2's.
func seedReport(t testing.TB, b *books) {
	t.Helper()
	p1 := b.move(t, eat(1, 9, 0), "P1", "W", "M1", 10000, sales.KindMerchantPayment, "")
	b.move(t, eat(1, 9, 40), "P2", "W", "M1", 20000, sales.KindMerchantPayment, "st_west")
	b.move(t, eat(1, 9, 50), "P3", "W", "M1", 5001, sales.KindMerchantPayment, "st_west")
	b.move(t, eat(1, 10, 0), "P4", "W", "M2", 99900, sales.KindMerchantPayment, "") // another merchant's
	b.move(t, eat(1, 23, 30), "P5", "W", "M1", 4000, sales.KindEscrowRelease, "")   // released: no row of its own here
	b.move(t, eat(2, 0, 30), "P2", "M1", "W", 3000, sales.KindRefund, "")           // the refund of P2, the next day
	b.clock.set(eat(2, 1, 0))
	if _, err := b.l.Reverse(ctx, p1.ID, "P1:reverse"); err != nil { // the reversal of P1
		t.Fatal(err)
	}
	b.move(t, eat(2, 2, 0), "X", "cash:KES", "M1", 50000, "deposit", "") // not sales
	r := sales.New(b.db.Reader(), payswitch.PaymentStores, nairobi)

	rows, err := r.Report(ctx, sales.Query{Merchant: "M1", From: eat(1, 0, 0), To: eat(3, 0, 0), By: sales.ByDay})
	if err != nil {
		t.Fatal(err)
	}
	want := []sales.Row{
		{Period: eat(1, 0, 0), Store: "main", Payments: 2, Gross: 14000, Net: 14000, AverageTicket: 7000},
		{Period: eat(1, 0, 0), Store: "st_west", Payments: 2, Gross: 25001, Net: 25001, AverageTicket: 12501}, // 12500.5 rounds up
		{Period: eat(2, 0, 0), Store: "main", Refunds: 10000, Net: -10000},
		{Period: eat(2, 0, 0), Store: "st_west", Refunds: 3000, Net: -3000},
	}
	if !equalRows(rows, want) {
		t.Fatalf("by day\n%+v\nwant\n%+v", rows, want)
	}
	// The rows agree with the ledger: their net is what these kinds moved on M1.
	var net int64
	for _, row := range rows {
		net += row.Net
	}
	acc, _ := b.l.Account(ctx, "M1")
	if net != acc.Balance.Posted-50000 {
		t.Fatalf("net %d, ledger %d", net, acc.Balance.Posted-50000)
	}

	rows, err = r.Report(ctx, sales.Query{Merchant: "M1", From: eat(1, 0, 0), To: eat(2, 0, 0), By: sales.ByHour, Store: "st_west"})
	if err != nil {
		t.Fatal(err)
	}
	want = []sales.Row{{Period: eat(1, 9, 0), Store: "st_west", Payments: 2, Gross: 25001, Net: 25001, AverageTicket: 12501}}
	if !equalRows(rows, want) {
		t.Fatalf("by hour of st_west\n%+v\nwant\n%+v", rows, want)
	}
	if rows[0].Period.Format(time.RFC3339) != "2026-12-01T09:00:00+03:00" {
		t.Fatalf("period %s", rows[0].Period.Format(time.RFC3339))
	}

	tot, err := r.Totals(ctx, "M1", "", eat(1, 0, 0), eat(2, 0, 0))
	if err != nil || tot != (payswitch.SalesTotals{Payments: 4, Gross: 39001, Net: 39001}) {
		t.Fatalf("totals %+v, %v", tot, err)
	}
	tot, err = r.Totals(ctx, "M1", "st_west", eat(1, 0, 0), eat(3, 0, 0))
	if err != nil || tot != (payswitch.SalesTotals{Payments: 2, Gross: 25001, Refunds: 3000, Net: 22001}) {
		t.Fatalf("st_west totals %+v, %v", tot, err)
	}
}

func equalRows(got, want []sales.Row) bool {
	if len(got) != len(want) {
		return false
	}
	for i := range got {
		g, w := got[i], want[i]
		if !g.Period.Equal(w.Period) {
			return false
		}
		g.Period, w.Period = time.Time{}, time.Time{}
		if !reflect.DeepEqual(g, w) {
			return false
		}
	}
	return true
}

func TestQueryCheck(t *testing.T) {
	from := eat(1, 0, 0)
	cases := []struct {
		name string
		q    sales.Query
	}{
		{"from after to", sales.Query{From: from, To: from.Add(-time.Hour), By: sales.ByDay}},
		{"empty range", sales.Query{From: from, To: from, By: sales.ByDay}},
		{"over 366 days", sales.Query{From: from, To: from.AddDate(0, 0, 367), By: sales.ByDay}},
		{"bad by", sales.Query{From: from, To: from.AddDate(0, 0, 1), By: "week"}},
		{"no range", sales.Query{By: sales.ByDay}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if err := c.q.Check(); !errors.Is(err, payswitch.ErrInvalid) {
				t.Fatalf("Check = %v, want ErrInvalid", err)
			}
		})
	}
	if err := (sales.Query{From: from, To: from.Add(sales.MaxRange), By: sales.ByHour}).Check(); err != nil {
		t.Fatalf("366 days: %v", err)
	}
}

// TestReportMonthOfBusyMerchant measures a month of a merchant with 100,000 payments,
// half of them at two stores' tills, on a real SQLite file: set SALES_BENCH=1 (or
// SALES_BENCH=entries for the books without sales_hourly, read from the entries). It builds
// the books through the ledger in batches, then times the report by day and by hour,
// three times each, and logs the times (the notes of branch stores have the figures).
func TestReportMonthOfBusyMerchant(t *testing.T) {
	if os.Getenv("SALES_BENCH") == "" {
		t.Skip("set SALES_BENCH=1 to measure a month of 100,000 payments")
	}
	const n, batch = 100_000, 1000
	hours := os.Getenv("SALES_BENCH") != "entries" // SALES_BENCH=entries: no sales_hourly, for comparison
	b := openBooksWith(t, hours)
	built := time.Now()
	start := eat(1, 0, 0).AddDate(0, -1, 0)
	step := 30 * 24 * time.Hour / n
	stores := []string{"", "st_west", "st_east", ""}
	for i := 0; i < n; i += batch {
		b.clock.set(start.Add(time.Duration(i) * step))
		rs := make([]ledger.TransferRequest, 0, batch)
		ps := make([]paymentRow, 0, batch)
		for j := i; j < i+batch; j++ {
			id := fmt.Sprintf("P%07d", j)
			rs = append(rs, ledger.TransferRequest{Key: id, Debit: "W", Credit: "M1", Amount: int64(100 + j%5000),
				PaymentID: id, Kind: sales.KindMerchantPayment})
			ps = append(ps, paymentRow{id, "M1", int64(100 + j%5000), stores[j%len(stores)], b.clock.now()})
		}
		b.insertPayments(t, ps)
		if _, errs := b.l.TransferBatch(ctx, rs); errs != nil {
			for _, err := range errs {
				if err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	t.Logf("sales_hourly %v: %d payments booked in %s", hours, n, time.Since(built))
	r := sales.New(b.db.Reader(), payswitch.PaymentStores, nairobi)
	// Each run may take another connection of the reader pool, whose page cache is cold
	// at first: the first runs read the pages from the file, later ones from memory.
	for _, by := range []string{sales.ByDay, sales.ByHour, sales.ByDay, sales.ByHour, sales.ByDay, sales.ByHour} {
		began := time.Now()
		rows, err := r.Report(ctx, sales.Query{Merchant: "M1", From: start, To: start.AddDate(0, 1, 0).Add(time.Hour), By: by})
		took := time.Since(began)
		if err != nil {
			t.Fatal(err)
		}
		var payments int64
		for _, row := range rows {
			payments += row.Payments
		}
		t.Logf("by %s: %d rows, %d payments in %s", by, len(rows), payments, took)
		if payments != n {
			t.Fatalf("%d payments, want %d", payments, n)
		}
	}
}

// The hours and the entries agree: the same books with and without sales_hourly give
// the same reports, for ranges on whole hours, ranges that cut hours, and a time zone
// half an hour off UTC (read from the entries alone).
func TestHoursAgreeWithEntries(t *testing.T) { pgtest.Both(t, testHoursAgreeWithEntries) }

func testHoursAgreeWithEntries(t *testing.T) {
	with, without := openBooksWith(t, true), openBooksWith(t, false)
	seedReport(t, with)
	seedReport(t, without)
	kolkata, err := time.LoadLocation("Asia/Kolkata")
	if err != nil {
		t.Fatal(err)
	}
	for _, loc := range []*time.Location{nairobi, kolkata, time.UTC} {
		for _, q := range []sales.Query{
			{Merchant: "M1", From: eat(1, 0, 0), To: eat(3, 0, 0), By: sales.ByDay},
			{Merchant: "M1", From: eat(1, 0, 0), To: eat(3, 0, 0), By: sales.ByHour},
			{Merchant: "M1", From: eat(1, 9, 30), To: eat(2, 0, 45), By: sales.ByHour},
			{Merchant: "M1", From: eat(1, 9, 45), To: eat(1, 9, 55), By: sales.ByHour, Store: "st_west"},
			{Merchant: "M2", From: eat(1, 0, 0), To: eat(2, 0, 0), By: sales.ByDay},
		} {
			a, err := sales.New(with.db.Reader(), payswitch.PaymentStores, loc).Report(ctx, q)
			if err != nil {
				t.Fatal(err)
			}
			b, err := sales.New(without.db.Reader(), payswitch.PaymentStores, loc).Report(ctx, q)
			if err != nil {
				t.Fatal(err)
			}
			if !equalRows(a, b) || len(a) == 0 {
				t.Errorf("%s %+v:\nhours   %+v\nentries %+v", loc, q, a, b)
			}
		}
	}
}

// sales_hourly starts with what the ledger booked before it existed: a switch upgraded
// to it reports the past from the hours too.
func TestHoursFilledFromTheLedger(t *testing.T) { pgtest.Both(t, testHoursFilledFromTheLedger) }

func testHoursFilledFromTheLedger(t *testing.T) {
	where := newDatabase(t)
	before := openBooksAt(t, where, false)
	seedReport(t, before)
	q := sales.Query{Merchant: "M1", From: eat(1, 0, 0), To: eat(3, 0, 0), By: sales.ByHour}
	want, err := sales.New(before.db.Reader(), payswitch.PaymentStores, nairobi).Report(ctx, q)
	if err != nil {
		t.Fatal(err)
	}
	before.db.Close()
	after := openBooksAt(t, where, true)
	var hours int
	if err := after.db.Reader().QueryRowContext(ctx, `SELECT count(*) FROM sales_hourly`).Scan(&hours); err != nil || hours == 0 {
		t.Fatalf("sales_hourly has %d rows, %v", hours, err)
	}
	got, err := sales.New(after.db.Reader(), payswitch.PaymentStores, nairobi).Report(ctx, q)
	if err != nil || !equalRows(got, want) {
		t.Fatalf("after the upgrade %+v, %v\nwant %+v", got, err, want)
	}
}

// The triggers keep sales_hourly as each entry is booked, on either driver, and the
// reports read whole hours from it (a changed row shows in the report).
func TestTriggersKeepHours(t *testing.T) { pgtest.Both(t, testTriggersKeepHours) }

func testTriggersKeepHours(t *testing.T) {
	b := openBooksWith(t, true)
	seedReport(t, b)
	type hourRow struct {
		merchant, hour, store    string
		payments, gross, refunds int64
	}
	rows, err := b.db.Reader().QueryContext(ctx, `SELECT merchant_id, hour, store, payments, gross, refunds
		FROM sales_hourly ORDER BY merchant_id, hour, store`)
	if err != nil {
		t.Fatal(err)
	}
	var got []hourRow
	for rows.Next() {
		var h hourRow
		if err := rows.Scan(&h.merchant, &h.hour, &h.store, &h.payments, &h.gross, &h.refunds); err != nil {
			t.Fatal(err)
		}
		got = append(got, h)
	}
	if err := rows.Close(); err != nil {
		t.Fatal(err)
	}
	want := []hourRow{ // UTC hours: Nairobi is 3 hours ahead
		{"M1", "2026-12-01T06", "main", 1, 10000, 0},
		{"M1", "2026-12-01T06", "st_west", 2, 25001, 0},
		{"M1", "2026-12-01T20", "main", 1, 4000, 0},    // the escrow release
		{"M1", "2026-12-01T21", "st_west", 0, 0, 3000}, // the refund of P2
		{"M1", "2026-12-01T22", "main", 0, 0, 10000},   // the reversal of P1
		{"M2", "2026-12-01T07", "main", 1, 99900, 0},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("sales_hourly\n%+v\nwant\n%+v", got, want)
	}
	err = b.db.Write(ctx, func(tx store.Tx) error {
		_, err := tx.ExecContext(ctx, `UPDATE sales_hourly SET gross = gross + 1
			WHERE merchant_id = 'M1' AND hour = '2026-12-01T06' AND store = 'main'`)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	tot, err := sales.New(b.db.Reader(), payswitch.PaymentStores, nairobi).Totals(ctx, "M1", "main", eat(1, 0, 0), eat(2, 0, 0))
	if err != nil || tot.Gross != 14001 {
		t.Fatalf("totals %+v, %v: want the hours' gross 14001", tot, err)
	}
}

// Two nodes booking payments to one merchant in one hour at once each add to the hour's
// row: none is lost (on SQLite both "nodes" are one DB).
func TestNodesCountEveryPayment(t *testing.T) { pgtest.Both(t, testNodesCountEveryPayment) }

func testNodesCountEveryPayment(t *testing.T) {
	where := newDatabase(t)
	first := openBooksAt(t, where, true)
	nodes := []*books{first, first}
	if driverOf(t) == store.Postgres {
		nodes[1] = openBooksAt(t, where, true)
	}
	const perNode = 40
	at := eat(3, 9, 0)
	var ps []paymentRow
	for n := range nodes {
		for i := 0; i < perNode; i++ {
			ps = append(ps, paymentRow{fmt.Sprintf("N%dP%03d", n, i), "M1", 100, []string{"", "st_west"}[i%2], at})
		}
	}
	first.insertPayments(t, ps)
	var wg sync.WaitGroup
	errs := make(chan error, len(ps))
	for n, node := range nodes {
		node.clock.set(at)
		for w := 0; w < 4; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := w; i < perNode; i += 4 {
					pid := fmt.Sprintf("N%dP%03d", n, i)
					_, err := node.l.Transfer(ctx, ledger.TransferRequest{Key: pid, Debit: "W", Credit: "M1",
						Amount: 100, PaymentID: pid, Kind: sales.KindMerchantPayment})
					if err != nil {
						errs <- fmt.Errorf("%s: %w", pid, err)
					}
				}
			}()
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	var payments, gross int64
	if err := first.db.Reader().QueryRowContext(ctx, `SELECT CAST(sum(payments) AS BIGINT), CAST(sum(gross) AS BIGINT)
		FROM sales_hourly WHERE merchant_id = 'M1' AND hour = '2026-12-03T06'`).Scan(&payments, &gross); err != nil {
		t.Fatal(err)
	}
	if payments != 2*perNode || gross != 2*perNode*100 {
		t.Fatalf("sales_hourly holds %d payments, %d gross; want %d, %d", payments, gross, 2*perNode, 2*perNode*100)
	}
}
