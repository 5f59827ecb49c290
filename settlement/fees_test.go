package settlement_test

import (
	"bytes"
	"encoding/csv"
	"errors"
	"testing"

	"github.com/payswitch/payswitch/internal/pgtest"

	"github.com/payswitch/payswitch/ledger"
	"github.com/payswitch/payswitch/settlement"
)

// The settlement file's fees line sums the day's fees into the fees account, the agents'
// commissions out of it and the fees given back, and ties to the account's entries.
func TestFeesLine(t *testing.T) { pgtest.Both(t, testFeesLine) }

func testFeesLine(t *testing.T) {
	b := mustOpenBooks(t)
	b.clock.set(at(1, 8, 0))
	for _, typ := range []ledger.AccountType{ledger.Cash, ledger.Fees} {
		if _, err := b.l.SystemAccount(ctx, typ, "KES", "KES"); err != nil {
			t.Fatal(err)
		}
	}
	for _, a := range []ledger.NewAccount{{ID: "W-ALICE", Type: ledger.Wallet, MSISDN: "254700000001"},
		{ID: "W-BOB", Type: ledger.Wallet, MSISDN: "254700000002"}, {ID: "A-KAMAU", Type: ledger.Agent, MSISDN: "254700000777"},
		{ID: "M1", Type: ledger.Merchant, Code: "55501"}} {
		a.Currency, a.Name = "KES", a.ID
		if _, err := b.l.CreateAccount(ctx, a); err != nil {
			t.Fatal(err)
		}
	}
	b.pay(t, at(1, 8, 0), "dep", "cash:KES", "W-ALICE", 1000000, "deposit")
	fee, commission := settlement.KindFee, settlement.KindCommission
	b.pay(t, at(9, 23, 59), "fee:before", "W-ALICE", "fees:KES", 100, fee) // the day before
	// The day: a SEND with its fee, the fee given back by an operator's reversal; a
	// withdrawal at an agent with its fee and the agent's commission; a free merchant payment.
	b.pay(t, at(10, 9, 0), "send", "W-ALICE", "W-BOB", 30000, "transfer")
	sendFee := b.pay(t, at(10, 9, 0), "fee:send", "W-ALICE", "fees:KES", 700, fee)
	b.reverse(t, at(10, 11, 0), sendFee)
	b.pay(t, at(10, 12, 0), "fee:wd", "W-ALICE", "fees:KES", 2900, fee)
	b.pay(t, at(10, 12, 0), "commission:wd", "fees:KES", "A-KAMAU", 1400, commission)
	b.pay(t, at(10, 12, 0), "wd", "W-ALICE", "A-KAMAU", 100000, "withdrawal")
	b.pay(t, at(10, 13, 0), "pay", "W-ALICE", "M1", 5000, settlement.KindMerchantPayment)
	b.pay(t, at(11, 0, 1), "fee:after", "W-ALICE", "fees:KES", 300, fee) // the next day

	day, err := settlement.ParseDay("2025-03-10", nairobi)
	if err != nil {
		t.Fatal(err)
	}
	r, err := settlement.Settle(ctx, b.l, day, at(11, 1, 0))
	if err != nil {
		t.Fatal(err)
	}
	want := settlement.FeesLine{AccountID: "fees:KES", Currency: "KES", Fees: 2, FeesAmount: 3600,
		Commissions: 1, CommissionsAmount: 1400, Reversals: 1, ReversalsAmount: 700, Net: 1500}
	if len(r.Fees) != 1 || r.Fees[0] != want {
		t.Fatalf("fees lines %+v, want %+v", r.Fees, want)
	}
	if tot := r.Totals["KES"]; tot.PaymentsAmount != 5000 || tot.Merchants != 1 {
		t.Fatalf("merchants' totals %+v: the fees are not takings", tot)
	}

	// The ledger's own sums over the day.
	from, to := day.Start.UTC().Format(ledgerTime), day.End.UTC().Format(ledgerTime)
	sum := func(q string) int64 { return b.count(t, q, from, to) }
	if got := sum(`SELECT COALESCE(SUM(amount), 0) FROM transfers WHERE kind = 'fee' AND credit = 'fees:KES' AND time >= ? AND time < ?`); got != want.FeesAmount {
		t.Errorf("fee transfers %d, line %d", got, want.FeesAmount)
	}
	if got := sum(`SELECT COALESCE(SUM(amount), 0) FROM transfers WHERE kind = 'commission' AND debit = 'fees:KES' AND time >= ? AND time < ?`); got != want.CommissionsAmount {
		t.Errorf("commission transfers %d, line %d", got, want.CommissionsAmount)
	}
	balanceAt := func(end string) int64 {
		return b.count(t, `SELECT COALESCE((SELECT balance_after FROM entries WHERE account_id = 'fees:KES' AND time < ?
			ORDER BY seq DESC LIMIT 1), 0)`, end)
	}
	if got := balanceAt(to) - balanceAt(from); got != want.Net {
		t.Errorf("the fees account moved %d over the day, line net %d", got, want.Net)
	}

	var buf bytes.Buffer
	if err := r.WriteCSV(&buf); err != nil {
		t.Fatal(err)
	}
	rows, err := csv.NewReader(&buf).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	last := rows[len(rows)-1]
	wantRow := []string{"2025-03-10", "fees:KES", "", "fees", "KES", "2", "3600", "1", "700", "1500", "0", "", "fees"}
	for i, w := range wantRow {
		if last[i] != w {
			t.Fatalf("fees row %q, want %q at column %d", last, w, i)
		}
	}
	if last[14] != "1" || last[15] != "1400" || last[16] != "" || len(rows) != 3 {
		t.Fatalf("fees row %q (of %d rows)", last, len(rows))
	}
}

// A day with no fees has no fees line.
func TestNoFeesNoLine(t *testing.T) { pgtest.Both(t, testNoFeesNoLine) }

func testNoFeesNoLine(t *testing.T) {
	b := mustOpenBooks(t)
	seedDay(t, b)
	day, err := settlement.ParseDay("2025-03-10", nairobi)
	if err != nil {
		t.Fatal(err)
	}
	r, err := settlement.Settle(ctx, b.l, day, at(11, 1, 0))
	if len(r.Fees) != 0 || (err != nil && !errors.Is(err, settlement.ErrIncomplete)) {
		t.Fatalf("fees %+v, %v", r.Fees, err)
	}
}

const ledgerTime = "2006-01-02T15:04:05.000000Z"
