package settlement_test

import (
	"encoding/csv"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/payswitch/payswitch/internal/pgtest"

	"github.com/payswitch/payswitch/internal/csvcell"
	"github.com/payswitch/payswitch/ledger"
	"github.com/payswitch/payswitch/settlement"
)

// formulaNames are merchant names that a spreadsheet would run, one per character that
// starts a formula, and one that starts with the quote itself.
var formulaNames = []string{`=HYPERLINK("http://x","a")`, "+254700000001", "-2+3", "@SUM(A1)", "\tTabbed", "\rReturned", "'Quoted"}

func TestSettlementFileQuotesFormulaNames(t *testing.T) {
	pgtest.Both(t, testSettlementFileQuotesFormulaNames)
}

func testSettlementFileQuotesFormulaNames(t *testing.T) {
	b := mustOpenBooks(t)
	b.clock.set(at(1, 8, 0))
	if _, err := b.l.SystemAccount(ctx, ledger.Cash, "KES", "KES"); err != nil {
		t.Fatal(err)
	}
	if _, err := b.l.CreateAccount(ctx, ledger.NewAccount{ID: "W-ALICE", Type: ledger.Wallet, Currency: "KES", Name: "Alice"}); err != nil {
		t.Fatal(err)
	}
	b.pay(t, at(1, 8, 0), "dep", "cash:KES", "W-ALICE", 1000000, "deposit")
	mp := settlement.KindMerchantPayment
	for i, name := range formulaNames {
		if _, err := b.l.CreateAccount(ctx, ledger.NewAccount{ID: "M" + strconv.Itoa(i), Type: ledger.Merchant,
			Currency: "KES", Name: name, Code: "5550" + strconv.Itoa(i)}); err != nil {
			t.Fatal(err)
		}
	}
	// A payment of the day before, reversed in the day, makes M0's takings negative: a
	// number column, which keeps its minus sign.
	before := b.pay(t, at(9, 9, 0), "before", "W-ALICE", "M0", 1500, mp)
	for i := range formulaNames {
		id := "M" + strconv.Itoa(i)
		b.pay(t, at(10, 9, i), "p"+id, "W-ALICE", id, 1000, mp)
	}
	b.reverse(t, at(10, 12, 0), before)

	runAt := at(11, 1, 0)
	b.clock.set(runAt)
	r, err := settlement.Settle(ctx, b.l, mustDay(t, "2025-03-10"), runAt)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "settlement-2025-03-10.csv")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.WriteCSV(f); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	f, err = os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	recs, err := csv.NewReader(f).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != len(formulaNames)+1 {
		t.Fatalf("%d rows, want %d", len(recs)-1, len(formulaNames))
	}
	for i, rec := range recs[1:] {
		name := rec[3]
		if name != "'"+formulaNames[i] {
			t.Errorf("row %d: merchant_name %q, want %q", i+1, name, "'"+formulaNames[i])
		}
		if csvcell.Value(name) != formulaNames[i] {
			t.Errorf("row %d: merchant_name %q does not read back as %q", i+1, name, formulaNames[i])
		}
		for j, cell := range rec {
			if csvcell.Risky(cell) && j != 9 {
				t.Errorf("row %d: %s %q starts a formula", i+1, recs[0][j], cell)
			}
		}
	}
	// M0 was paid 1000 in the day and had 1500 reversed.
	if got := recs[1][9]; got != "-500" {
		t.Errorf("takings of M0 = %q, want -500 as a plain number", got)
	}
}
