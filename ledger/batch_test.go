package ledger_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/payswitch/payswitch/ledger"
)

func TestTransferBatchOneBadCommitsTheRest(t *testing.T) {
	l := mustOpen(t)
	cash := mustCash(t, l, "KES")
	alice, bob, carol := mustWallet(t, l, "KES"), mustWallet(t, l, "KES"), mustWallet(t, l, "KES")
	rs := []ledger.TransferRequest{
		{Key: "dep", Debit: cash.ID, Credit: alice.ID, Amount: 100, Kind: "deposit"},
		{Key: "a1", Debit: alice.ID, Credit: bob.ID, Amount: 60, Kind: "transfer"},                 // uses the deposit above
		{Key: "a2", Debit: alice.ID, Credit: bob.ID, Amount: 60, Kind: "transfer"},                 // only 40 left
		{Key: "dep", Debit: cash.ID, Credit: alice.ID, Amount: 100, Kind: "deposit"},               // a repeat: the first
		{Key: "dep", Debit: cash.ID, Credit: alice.ID, Amount: 999, Kind: "deposit"},               // a conflict
		{Key: "x", Debit: alice.ID, Credit: "ACNOSUCHONE0", Amount: 1, Kind: "transfer"},           // unknown
		{Key: "b1", Debit: bob.ID, Credit: carol.ID, Amount: 60, PaymentID: "P", Kind: "transfer"}, // spends a1
	}
	want := []error{nil, nil, ledger.ErrInsufficientFunds, nil, ledger.ErrIdempotencyConflict, ledger.ErrNotFound, nil}
	trs, errs := l.TransferBatch(ctx, rs)
	if len(trs) != len(rs) || len(errs) != len(rs) {
		t.Fatalf("got %d transfers and %d errors for %d requests", len(trs), len(errs), len(rs))
	}
	for i := range rs {
		if !errors.Is(errs[i], want[i]) {
			t.Errorf("request %d (%s): err = %v, want %v", i, rs[i].Key, errs[i], want[i])
		}
		if (errs[i] == nil) != (trs[i].ID != "") {
			t.Errorf("request %d: transfer %+v with err %v", i, trs[i], errs[i])
		}
	}
	if trs[3] != trs[0] {
		t.Errorf("repeated key in the batch gave %+v, want the first %+v", trs[3], trs[0])
	}
	wantBalance(t, l, alice.ID, posted(40))
	wantBalance(t, l, bob.ID, posted(0))
	wantBalance(t, l, carol.ID, posted(60))
	if n := countRows(t, l, "transfers"); n != 3 {
		t.Errorf("%d transfers, want 3", n)
	}
	r := mustVerify(t, l)
	if r.Entries != 6 {
		t.Errorf("%d entries, want 6", r.Entries)
	}

	// The next batch continues the same chain.
	trs, errs = l.TransferBatch(ctx, []ledger.TransferRequest{{Key: "c1", Debit: carol.ID, Credit: alice.ID, Amount: 10, Kind: "transfer"}})
	if errs[0] != nil {
		t.Fatal(errs[0])
	}
	mustVerify(t, l)
	if trs, errs := l.TransferBatch(ctx, nil); len(trs) != 0 || len(errs) != 0 {
		t.Errorf("empty batch = %v, %v", trs, errs)
	}
}

// TestTransferBatchFailureAfterWritingFailsAlone makes one request fail after it has
// written its transfer row and balances (a trigger refuses its journal entry), which is
// the case the batch's per-request savepoints exist for.
func TestTransferBatchFailureAfterWritingFailsAlone(t *testing.T) {
	l := mustOpen(t)
	cash := mustCash(t, l, "KES")
	alice, bob := mustWallet(t, l, "KES"), mustWallet(t, l, "KES")
	tamper(t, l, `CREATE TRIGGER test_refuse_entry BEFORE INSERT ON entries WHEN NEW.payment_id = 'BOOM'
		BEGIN SELECT RAISE(ABORT, 'test: entry refused'); END`)
	rs := []ledger.TransferRequest{
		{Key: "d1", Debit: cash.ID, Credit: alice.ID, Amount: 100, Kind: "deposit"},
		{Key: "boom", Debit: cash.ID, Credit: bob.ID, Amount: 50, PaymentID: "BOOM", Kind: "deposit"},
		{Key: "t1", Debit: alice.ID, Credit: bob.ID, Amount: 30, Kind: "transfer"},
		{Key: "t2", Debit: alice.ID, Credit: bob.ID, Amount: 300, Kind: "transfer"}, // refused before writing
	}
	trs, errs := l.TransferBatch(ctx, rs)
	if errs[0] != nil || errs[2] != nil {
		t.Fatalf("good requests failed: %v", errs)
	}
	if errs[1] == nil || !strings.Contains(errs[1].Error(), "entry refused") {
		t.Errorf("request 1: err = %v, want the trigger's refusal", errs[1])
	}
	if !errors.Is(errs[3], ledger.ErrInsufficientFunds) {
		t.Errorf("request 3: err = %v, want ErrInsufficientFunds", errs[3])
	}
	if trs[1].ID != "" {
		t.Errorf("failed request returned %+v", trs[1])
	}
	wantBalance(t, l, cash.ID, posted(-100))
	wantBalance(t, l, alice.ID, posted(70))
	wantBalance(t, l, bob.ID, posted(30))
	if n := countRows(t, l, "transfers"); n != 2 {
		t.Errorf("%d transfers, want 2: the failed one left its row", n)
	}
	mustVerify(t, l)
}
