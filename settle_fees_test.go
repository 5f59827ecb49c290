package main

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/payswitch/payswitch/ledger"
)

// The settlement file ends with the day's fees line: a SEND's fee and a withdrawal's fee
// into the fees account, the agent's commission out of it, equal to the ledger's sums;
// the merchants' lines are as without fees, and the ledger still verifies.
func TestSettleCommandCarriesFees(t *testing.T) {
	f := newBooksFixture(t)
	seedMerchantDay(t, f)
	ctx := context.Background()
	if _, err := f.l.SystemAccount(ctx, ledger.Fees, "KES", "KES"); err != nil {
		t.Fatal(err)
	}
	f.account(t, ledger.NewAccount{ID: "A-KAMAU", Type: ledger.Agent, Name: "Kamau", MSISDN: "254700000777"})
	f.clock.set(time.Date(2025, 3, 10, 8, 0, 0, 0, time.UTC))
	f.transfer(t, "send:1", "W-ALICE", "W-BOB", 300, "transfer")
	f.transfer(t, "fee:send:1", "W-ALICE", "fees:KES", 7, "fee")
	f.transfer(t, "fee:wd:1", "W-ALICE", "fees:KES", 29, "fee")
	f.transfer(t, "commission:wd:1", "fees:KES", "A-KAMAU", 14, "commission")
	f.transfer(t, "wd:1", "W-ALICE", "A-KAMAU", 1000, "withdrawal")

	out := filepath.Join(f.dir, "settlements")
	stdout, stderr, err := runCmd("settle", "-config", f.config, "-date", "2025-03-10", "-out", out)
	if err != nil {
		t.Fatalf("settle: %v\n%s", err, stderr)
	}
	if !strings.Contains(stdout, "KES  fees 2 KES 0.36, agents' commissions 1 KES 0.14, net KES 0.22") {
		t.Errorf("stdout:\n%s", stdout)
	}
	recs := readSettlement(t, filepath.Join(out, "settlement-2025-03-10.csv"))
	want := []string{
		"date,merchant_id,merchant_code,merchant_name,currency,payments,payments_amount,reversals,reversals_amount,takings,settled,transfer_id,status,note,refunds,refunds_amount,store",
		"2025-03-10,M-MAMA,55501,Mama Mboga,KES,2,17000,1,2000,15000,15000,*,settled,,0,0,",
		"2025-03-10,M-KIOSK,55502,Kiosk,KES,1,700,0,0,700,700,*,settled,,0,0,",
		"2025-03-10,fees:KES,,fees,KES,2,36,0,0,22,0,,fees,*,1,14,",
	}
	checkRecords(t, recs, want)

	// The fees line against the ledger: the day's fee and commission transfers, and what
	// the fees account holds (it had nothing before the day).
	var fees, commissions int64
	if err := f.db.Reader().QueryRow(`SELECT
		(SELECT SUM(amount) FROM transfers WHERE kind = 'fee' AND credit = 'fees:KES'),
		(SELECT SUM(amount) FROM transfers WHERE kind = 'commission' AND debit = 'fees:KES')`).Scan(&fees, &commissions); err != nil {
		t.Fatal(err)
	}
	acct, err := f.l.Account(ctx, "fees:KES")
	if err != nil || fees != 36 || commissions != 14 || acct.Balance.Posted != 22 {
		t.Fatalf("ledger: fees %d, commissions %d, fees account %+v (%v)", fees, commissions, acct.Balance, err)
	}
	if report, err := f.l.Verify(ctx); err != nil || !report.OK {
		t.Errorf("ledger verify after settlement: %+v %v", report, err)
	}
}
