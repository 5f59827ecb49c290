package settlement_test

import (
	"bytes"
	"context"
	"encoding/csv"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/payswitch/payswitch/internal/dbtest"

	"github.com/payswitch/payswitch/internal/pgtest"
	"github.com/payswitch/payswitch/ledger"
	"github.com/payswitch/payswitch/settlement"
	"github.com/payswitch/payswitch/store"
)

var ctx = context.Background()

type clock struct {
	mu sync.Mutex // guards t
	t  time.Time
}

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) set(t time.Time) {
	c.mu.Lock()
	c.t = t
	c.mu.Unlock()
}

type books struct {
	db    *store.DB
	l     *ledger.Ledger
	clock *clock
}

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

// driverOf is the driver of the pgtest.Both subtest tb is, or runs inside.
var driverOf = dbtest.Dialect

// mustOpenBooks opens the ledger on a new database of tb's driver: a real SQLite file in
// a temporary directory, or a new PostgreSQL database.
func mustOpenBooks(tb testing.TB) *books {
	tb.Helper()
	return openNodes(tb, 1)[0]
}

// openNodes opens n books on one new database of tb's driver, as n switch nodes would,
// each with its own clock. SQLite has one writer per file, so there the n "nodes" are
// one DB.
func openNodes(tb testing.TB, n int) []*books {
	tb.Helper()
	nodes := make([]*books, n)
	var url string
	if driverOf(tb) == store.Postgres {
		url = pgtest.URL(tb)
	}
	for i := range nodes {
		var db *store.DB
		var err error
		switch {
		case url != "":
			db, err = store.OpenPostgres(ctx, url, store.Options{}, ledger.Schema)
		case i == 0:
			db, err = store.Open(filepath.Join(tb.TempDir(), "payswitch.db"), store.Options{}, ledger.Schema)
		default:
			db = nodes[0].db
		}
		if err != nil {
			tb.Fatal(err)
		}
		if i == 0 || url != "" {
			tb.Cleanup(func() { db.Close() })
		}
		c := &clock{}
		nodes[i] = &books{db: db, l: ledger.New(db, c.now), clock: c}
	}
	return nodes
}

func (b *books) pay(tb testing.TB, at time.Time, key, from, to string, amount int64, kind string) ledger.Transfer {
	tb.Helper()
	b.clock.set(at)
	tr, err := b.l.Transfer(ctx, ledger.TransferRequest{Key: key, Debit: from, Credit: to, Amount: amount,
		PaymentID: key, Kind: kind})
	if err != nil {
		tb.Fatalf("%s: %v", key, err)
	}
	return tr
}

func (b *books) reverse(tb testing.TB, at time.Time, tr ledger.Transfer) {
	tb.Helper()
	b.clock.set(at)
	if _, err := b.l.Reverse(ctx, tr.ID, tr.Key+":reverse"); err != nil {
		tb.Fatal(err)
	}
}

func (b *books) count(tb testing.TB, q string, args ...any) int64 {
	tb.Helper()
	var n int64
	if err := b.db.Reader().QueryRowContext(ctx, q, args...).Scan(&n); err != nil {
		tb.Fatal(err)
	}
	return n
}

var nairobi = mustLocation("Africa/Nairobi")

func mustLocation(name string) *time.Location {
	loc, err := time.LoadLocation(name)
	if err != nil {
		panic(err)
	}
	return loc
}

// at is a local time in Nairobi on March 2025.
func at(day, hour, minute int) time.Time {
	return time.Date(2025, 3, day, hour, minute, 0, 0, nairobi)
}

// seedDay books payments around business day 2025-03-10 in Nairobi (UTC+3):
//
//	M1 55501: 17000 paid in the day (two payments), 2000 of it reversed in the day, a
//	          deposit (not takings), and a payment the evening before (not this day)
//	M2 55502: 5000 paid in the day, 400 just after midnight (the next day)
//	M3 55503: 700 paid in the day, then the account is frozen
//	M4 55504: 3000 paid the day before, reversed in the day: takings -3000
//	M5 55505: 1000 paid in the day, reversed the next morning before settlement,
//	          after 500 more came in: only 500 is available
//	M6 55506: no payments at all
func seedDay(tb testing.TB, b *books) {
	tb.Helper()
	b.clock.set(at(1, 8, 0))
	if _, err := b.l.SystemAccount(ctx, ledger.Cash, "KES", "KES"); err != nil {
		tb.Fatal(err)
	}
	for i, id := range []string{"W-ALICE", "W-BOB"} {
		if _, err := b.l.CreateAccount(ctx, ledger.NewAccount{ID: id, Type: ledger.Wallet, Currency: "KES",
			Name: id, MSISDN: "25470000000" + strconv.Itoa(i)}); err != nil {
			tb.Fatal(err)
		}
		b.pay(tb, at(1, 8, 0), "dep:"+id, "cash:KES", id, 1000000, "deposit")
	}
	for i := 1; i <= 6; i++ {
		if _, err := b.l.CreateAccount(ctx, ledger.NewAccount{ID: "M" + strconv.Itoa(i), Type: ledger.Merchant,
			Currency: "KES", Name: "Merchant " + strconv.Itoa(i), Code: "5550" + strconv.Itoa(i)}); err != nil {
			tb.Fatal(err)
		}
	}
	mp := settlement.KindMerchantPayment
	b.pay(tb, at(9, 23, 59), "p1", "W-ALICE", "M1", 1000, mp) // the day before
	m4 := b.pay(tb, at(9, 23, 59), "p2", "W-BOB", "M4", 3000, mp)
	b.pay(tb, at(10, 0, 0), "p3", "W-ALICE", "M1", 15000, mp) // midnight opens the day
	bob := b.pay(tb, at(10, 9, 30), "p4", "W-BOB", "M1", 2000, mp)
	b.reverse(tb, at(10, 10, 0), bob)
	b.pay(tb, at(10, 11, 0), "dep:M1", "cash:KES", "M1", 9999, "deposit")
	b.pay(tb, at(10, 12, 0), "p5", "W-ALICE", "M2", 5000, mp)
	b.pay(tb, at(10, 13, 0), "p6", "W-ALICE", "M3", 700, mp)
	b.reverse(tb, at(10, 14, 0), m4)
	m5 := b.pay(tb, at(10, 23, 59), "p7", "W-ALICE", "M5", 1000, mp)
	b.pay(tb, at(11, 0, 0), "p8", "W-ALICE", "M2", 400, mp) // midnight closes the day
	b.pay(tb, at(11, 0, 10), "p9", "W-BOB", "M5", 500, mp)
	b.reverse(tb, at(11, 0, 20), m5)
	if err := b.l.SetStatus(ctx, "M3", ledger.Frozen); err != nil {
		tb.Fatal(err)
	}
}

func mustDay(tb testing.TB, date string) settlement.Day {
	tb.Helper()
	d, err := settlement.ParseDay(date, nairobi)
	if err != nil {
		tb.Fatal(err)
	}
	return d
}

func TestSettleMovesEachMerchantsTakings(t *testing.T) {
	pgtest.Both(t, testSettleMovesEachMerchantsTakings)
}

func testSettleMovesEachMerchantsTakings(t *testing.T) {
	b := mustOpenBooks(t)
	seedDay(t, b)
	day := mustDay(t, "2025-03-10")
	runAt := at(11, 1, 0)
	b.clock.set(runAt)

	r, err := settlement.Settle(ctx, b.l, day, runAt)
	if !errors.Is(err, settlement.ErrIncomplete) {
		t.Fatalf("settle with a frozen merchant: %v, want ErrIncomplete", err)
	}
	want := []settlement.Line{
		{MerchantID: "M1", Code: "55501", Payments: 2, PaymentsAmount: 17000, Reversals: 1, ReversalsAmount: 2000,
			Takings: 15000, Settled: 15000, Status: settlement.StatusSettled},
		{MerchantID: "M2", Code: "55502", Payments: 1, PaymentsAmount: 5000, Takings: 5000, Settled: 5000,
			Status: settlement.StatusSettled},
		{MerchantID: "M3", Code: "55503", Payments: 1, PaymentsAmount: 700, Takings: 700, Status: settlement.StatusFailed},
		{MerchantID: "M4", Code: "55504", Reversals: 1, ReversalsAmount: 3000, Takings: -3000, Status: settlement.StatusNothing},
		{MerchantID: "M5", Code: "55505", Payments: 1, PaymentsAmount: 1000, Takings: 1000, Settled: 500,
			Status: settlement.StatusShort},
	}
	checkLines(t, r, want)
	if r.Lines[2].Note == "" || r.Lines[4].Note != "available 500 of takings 1000" {
		t.Errorf("notes: frozen %q, short %q", r.Lines[2].Note, r.Lines[4].Note)
	}
	tot := r.Totals["KES"]
	if tot.PaymentsAmount != 23700 || tot.ReversalsAmount != 5000 || tot.Settled != 20500 || tot.Merchants != 5 {
		t.Errorf("totals = %+v", tot)
	}

	// The report's totals are the ledger's: the day's merchant payments and reversals
	// from the transfers table, and what the settlement account received.
	dayArgs := []any{ledger.FormatTime(day.Start), ledger.FormatTime(day.End)}
	if got := b.count(t, `SELECT COALESCE(SUM(t.amount), 0) FROM transfers t JOIN accounts a ON a.id = t.credit
		WHERE a.type = 'merchant' AND t.kind = 'merchant_payment' AND t.time >= ? AND t.time < ?`, dayArgs...); got != tot.PaymentsAmount {
		t.Errorf("ledger has %d of merchant payments in the day, report %d", got, tot.PaymentsAmount)
	}
	if got := b.count(t, `SELECT COALESCE(SUM(t.amount), 0) FROM transfers t JOIN accounts a ON a.id = t.debit
		WHERE a.type = 'merchant' AND t.kind = 'reversal' AND t.time >= ? AND t.time < ?`, dayArgs...); got != tot.ReversalsAmount {
		t.Errorf("ledger has %d of merchant reversals in the day, report %d", got, tot.ReversalsAmount)
	}
	acc, err := b.l.Account(ctx, "settlement:KES")
	if err != nil {
		t.Fatal(err)
	}
	if acc.Balance.Posted != tot.Settled {
		t.Errorf("settlement account holds %d, report settled %d", acc.Balance.Posted, tot.Settled)
	}
	for _, ln := range r.Lines {
		if ln.Settled == 0 {
			continue
		}
		tr, err := b.l.TransferByID(ctx, ln.TransferID)
		if err != nil {
			t.Fatal(err)
		}
		if tr.Key != "settlement:2025-03-10:"+ln.MerchantID || tr.Amount != ln.Settled || tr.Debit != ln.MerchantID ||
			tr.Credit != "settlement:KES" || tr.Kind != settlement.KindSettlement {
			t.Errorf("transfer of %s = %+v", ln.MerchantID, tr)
		}
	}

	// The CSV carries the same numbers.
	var buf bytes.Buffer
	if err := r.WriteCSV(&buf); err != nil {
		t.Fatal(err)
	}
	recs, err := csv.NewReader(&buf).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != len(want)+1 || recs[0][0] != "date" || recs[0][10] != "settled" {
		t.Fatalf("csv: %v", recs)
	}
	var csvPaid, csvSettled int64
	for _, rec := range recs[1:] {
		p, _ := strconv.ParseInt(rec[6], 10, 64)
		s, _ := strconv.ParseInt(rec[10], 10, 64)
		csvPaid, csvSettled = csvPaid+p, csvSettled+s
	}
	if csvPaid != tot.PaymentsAmount || csvSettled != tot.Settled {
		t.Errorf("csv sums paid %d settled %d, report %d and %d", csvPaid, csvSettled, tot.PaymentsAmount, tot.Settled)
	}
}

func TestSettleTwiceSettlesNothingMore(t *testing.T) {
	pgtest.Both(t, testSettleTwiceSettlesNothingMore)
}

func testSettleTwiceSettlesNothingMore(t *testing.T) {
	b := mustOpenBooks(t)
	seedDay(t, b)
	day := mustDay(t, "2025-03-10")
	b.clock.set(at(11, 1, 0))
	first, _ := settlement.Settle(ctx, b.l, day, at(11, 1, 0))
	transfers := b.count(t, `SELECT count(*) FROM transfers`)

	b.clock.set(at(11, 2, 0))
	second, err := settlement.Settle(ctx, b.l, day, at(11, 2, 0))
	if !errors.Is(err, settlement.ErrIncomplete) {
		t.Fatalf("rerun: %v, want ErrIncomplete (M3 is still frozen)", err)
	}
	if got := b.count(t, `SELECT count(*) FROM transfers`); got != transfers {
		t.Fatalf("the rerun booked %d transfers", got-transfers)
	}
	if second.Totals["KES"] != first.Totals["KES"] {
		t.Errorf("rerun totals %+v, first run %+v", second.Totals["KES"], first.Totals["KES"])
	}
	for i, ln := range second.Lines {
		if ln.Settled > 0 && (ln.Status != settlement.StatusAlreadySettled || ln.TransferID != first.Lines[i].TransferID) {
			t.Errorf("rerun line %s: %s %s, first run's transfer %s", ln.MerchantID, ln.Status, ln.TransferID, first.Lines[i].TransferID)
		}
	}

	// Once M3 is unfrozen, a third run settles M3 alone.
	if err := b.l.SetStatus(ctx, "M3", ledger.Active); err != nil {
		t.Fatal(err)
	}
	third, err := settlement.Settle(ctx, b.l, day, at(11, 3, 0))
	if err != nil {
		t.Fatal(err)
	}
	if got := b.count(t, `SELECT count(*) FROM transfers`); got != transfers+1 {
		t.Errorf("third run booked %d transfers, want 1 (M3)", got-transfers)
	}
	if m3 := third.Lines[2]; m3.MerchantID != "M3" || m3.Status != settlement.StatusSettled || m3.Settled != 700 {
		t.Errorf("M3 after unfreezing: %+v", m3)
	}
}

func TestSettleRefusesADayNotOver(t *testing.T) { pgtest.Both(t, testSettleRefusesADayNotOver) }

func testSettleRefusesADayNotOver(t *testing.T) {
	b := mustOpenBooks(t)
	day := mustDay(t, "2025-03-10")
	_, err := settlement.Settle(ctx, b.l, day, at(10, 23, 59))
	if !errors.Is(err, settlement.ErrDayNotOver) {
		t.Fatalf("settle before midnight: %v, want ErrDayNotOver", err)
	}
}

func TestSettleAnEmptyLedger(t *testing.T) { pgtest.Both(t, testSettleAnEmptyLedger) }

func testSettleAnEmptyLedger(t *testing.T) {
	b := mustOpenBooks(t)
	r, err := settlement.Settle(ctx, b.l, mustDay(t, "2025-03-10"), at(12, 0, 0))
	if err != nil || len(r.Lines) != 0 {
		t.Fatalf("settle an empty ledger: %+v, %v", r, err)
	}
}

func TestParseDay(t *testing.T) {
	ny := mustLocation("America/New_York")
	tests := []struct {
		name  string
		date  string
		loc   *time.Location
		hours float64 // 0: an error is wanted
		start string
	}{
		{"nairobi", "2025-03-10", nairobi, 24, "2025-03-09T21:00:00Z"},
		{"spring forward", "2025-03-09", ny, 23, "2025-03-09T05:00:00Z"},
		{"fall back", "2025-11-02", ny, 25, "2025-11-02T04:00:00Z"},
		{"not a date", "10/03/2025", nairobi, 0, ""},
		{"no such day", "2025-02-30", nairobi, 0, ""},
		{"no padding", "2025-3-10", nairobi, 0, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := settlement.ParseDay(tt.date, tt.loc)
			if tt.hours == 0 {
				if !errors.Is(err, settlement.ErrBadDate) {
					t.Fatalf("ParseDay(%q) = %+v, %v; want ErrBadDate", tt.date, d, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := d.End.Sub(d.Start).Hours(); got != tt.hours {
				t.Errorf("day is %v hours, want %v", got, tt.hours)
			}
			if got := d.Start.UTC().Format(time.RFC3339); got != tt.start {
				t.Errorf("day starts %s, want %s", got, tt.start)
			}
		})
	}
}

func checkLines(t *testing.T, r settlement.Report, want []settlement.Line) {
	t.Helper()
	if len(r.Lines) != len(want) {
		t.Fatalf("%d lines, want %d: %+v", len(r.Lines), len(want), r.Lines)
	}
	for i, w := range want {
		got := r.Lines[i]
		got.Name, got.Currency, got.Note = "", "", ""
		hasTransfer := got.TransferID != ""
		got.TransferID = ""
		if !reflect.DeepEqual(got, w) {
			t.Errorf("line %d = %+v\nwant      %+v", i, got, w)
		}
		if hasTransfer != (w.Settled > 0) {
			t.Errorf("line %s: transfer %q for settled %d", w.MerchantID, r.Lines[i].TransferID, w.Settled)
		}
	}
}
