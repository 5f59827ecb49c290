package settlement_test

import (
	"bytes"
	"context"
	"encoding/csv"
	"reflect"
	"strings"
	"testing"

	"github.com/payswitch/payswitch/internal/pgtest"

	"github.com/payswitch/payswitch/ledger"
	"github.com/payswitch/payswitch/settlement"
)

// storesOfMap is a StoresOf over a map of payment IDs to stores, which counts its calls.
func storesOfMap(m map[string]string, calls *int) settlement.StoresOf {
	return func(_ context.Context, _ ledger.Querier, ids []string) (map[string]string, error) {
		*calls++
		out := map[string]string{}
		for _, id := range ids {
			if s, ok := m[id]; ok {
				out[id] = s
			}
		}
		return out, nil
	}
}

// A merchant paid at its own code and at two stores' tills, with a reversal, a refund
// and an escrow release in the day: its line counts them all, one line per store adds
// up to it, and the takings are what the day moved on the merchant's account.
func TestSettleByStore(t *testing.T) { pgtest.Both(t, testSettleByStore) }

func testSettleByStore(t *testing.T) {
	b := mustOpenBooks(t)
	b.clock.set(at(1, 8, 0))
	if _, err := b.l.SystemAccount(ctx, ledger.Cash, "KES", "KES"); err != nil {
		t.Fatal(err)
	}
	for _, a := range []ledger.NewAccount{
		{ID: "W-ALICE", Type: ledger.Wallet, Currency: "KES", Name: "Alice", MSISDN: "254700000001"},
		{ID: "M1", Type: ledger.Merchant, Currency: "KES", Name: "Mama Mboga", Code: "55501"},
		{ID: "M2", Type: ledger.Merchant, Currency: "KES", Name: "Kiosk", Code: "55502"},
	} {
		if _, err := b.l.CreateAccount(ctx, a); err != nil {
			t.Fatal(err)
		}
	}
	b.pay(t, at(1, 8, 0), "dep", "cash:KES", "W-ALICE", 1000000, "deposit")
	main1 := b.pay(t, at(10, 9, 0), "P-MAIN1", "W-ALICE", "M1", 10000, settlement.KindMerchantPayment)
	b.pay(t, at(10, 9, 5), "P-MAIN2", "W-ALICE", "M1", 2000, settlement.KindMerchantPayment)
	b.pay(t, at(10, 10, 0), "P-WEST1", "W-ALICE", "M1", 20000, settlement.KindMerchantPayment)
	b.pay(t, at(10, 11, 0), "P-WEST2", "W-ALICE", "M1", 5000, settlement.KindEscrowRelease)
	b.pay(t, at(10, 12, 0), "P-EAST1", "W-ALICE", "M1", 7000, settlement.KindMerchantPayment)
	b.clock.set(at(10, 13, 0))
	if _, err := b.l.Transfer(ctx, ledger.TransferRequest{Key: "P-WEST1:refund:1", Debit: "M1", Credit: "W-ALICE",
		Amount: 3000, PaymentID: "P-WEST1", Kind: settlement.KindRefund}); err != nil {
		t.Fatal(err)
	}
	b.reverse(t, at(10, 14, 0), main1)
	b.pay(t, at(10, 15, 0), "P-KIOSK", "W-ALICE", "M2", 700, settlement.KindMerchantPayment)
	stores := map[string]string{"P-WEST1": "st_west", "P-WEST2": "st_west", "P-EAST1": "st_east"}
	calls := 0

	r, err := settlement.SettleByStore(ctx, b.l, mustDay(t, "2025-03-10"), at(11, 1, 0), storesOfMap(stores, &calls))
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Lines) != 2 {
		t.Fatalf("lines %+v", r.Lines)
	}
	m1 := r.Lines[0]
	if m1.MerchantID != "M1" || m1.Payments != 5 || m1.PaymentsAmount != 44000 || m1.Reversals != 1 ||
		m1.ReversalsAmount != 10000 || m1.Refunds != 1 || m1.RefundsAmount != 3000 || m1.Takings != 31000 ||
		m1.Settled != 31000 || m1.Status != settlement.StatusSettled {
		t.Fatalf("M1 line %+v", m1)
	}
	want := []settlement.StoreLine{
		{Store: settlement.MainStore, Payments: 2, PaymentsAmount: 12000, Reversals: 1, ReversalsAmount: 10000, Takings: 2000},
		{Store: "st_east", Payments: 1, PaymentsAmount: 7000, Takings: 7000},
		{Store: "st_west", Payments: 2, PaymentsAmount: 25000, Refunds: 1, RefundsAmount: 3000, Takings: 22000},
	}
	if !reflect.DeepEqual(m1.Stores, want) {
		t.Fatalf("M1 stores\n%+v\nwant\n%+v", m1.Stores, want)
	}
	var sum settlement.StoreLine
	for _, sl := range m1.Stores {
		sum.Payments += sl.Payments
		sum.PaymentsAmount += sl.PaymentsAmount
		sum.Reversals += sl.Reversals
		sum.ReversalsAmount += sl.ReversalsAmount
		sum.Refunds += sl.Refunds
		sum.RefundsAmount += sl.RefundsAmount
		sum.Takings += sl.Takings
	}
	if sum.Payments != m1.Payments || sum.PaymentsAmount != m1.PaymentsAmount || sum.Reversals != m1.Reversals ||
		sum.ReversalsAmount != m1.ReversalsAmount || sum.Refunds != m1.Refunds || sum.RefundsAmount != m1.RefundsAmount ||
		sum.Takings != m1.Takings {
		t.Fatalf("store lines add up to %+v, not the merchant's line %+v", sum, m1)
	}
	// The ledger agrees: the day's takings are all M1 held before the settlement.
	acc, err := b.l.Account(ctx, "M1")
	if err != nil || acc.Balance.Posted != 0 {
		t.Fatalf("M1 after settlement: %+v, %v", acc.Balance, err)
	}
	if r.Lines[1].MerchantID != "M2" || r.Lines[1].Stores != nil {
		t.Fatalf("a merchant paid only at its code has no store lines: %+v", r.Lines[1])
	}

	var buf bytes.Buffer
	if err := r.WriteCSV(&buf); err != nil {
		t.Fatal(err)
	}
	recs, err := csv.NewReader(&buf).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	got := make([]string, len(recs))
	for i, rec := range recs {
		if i > 0 {
			rec[11] = strings.Repeat("*", min(len(rec[11]), 1))
		}
		got[i] = strings.Join(rec, ",")
	}
	wantCSV := []string{
		"date,merchant_id,merchant_code,merchant_name,currency,payments,payments_amount,reversals,reversals_amount,takings,settled,transfer_id,status,note,refunds,refunds_amount,store",
		"2025-03-10,M1,55501,Mama Mboga,KES,5,44000,1,10000,31000,31000,*,settled,,1,3000,",
		"2025-03-10,M1,55501,Mama Mboga,KES,2,12000,1,10000,2000,,,store,,0,0,main",
		"2025-03-10,M1,55501,Mama Mboga,KES,1,7000,0,0,7000,,,store,,0,0,st_east",
		"2025-03-10,M1,55501,Mama Mboga,KES,2,25000,0,0,22000,,,store,,1,3000,st_west",
		"2025-03-10,M2,55502,Kiosk,KES,1,700,0,0,700,700,*,settled,,0,0,",
	}
	if !reflect.DeepEqual(got, wantCSV) {
		t.Fatalf("file\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(wantCSV, "\n"))
	}
}
