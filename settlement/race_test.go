package settlement_test

import (
	"errors"
	"sync"
	"testing"

	"github.com/payswitch/payswitch/internal/pgtest"

	"github.com/payswitch/payswitch/settlement"
)

// Two nodes settling one day at once move each merchant's takings once: the ledger's
// idempotency key (the day and the merchant) makes the second node's transfer the first
// one's, and both reports agree on what was settled. On SQLite both "nodes" are one DB.
func TestNodesSettleADayOnce(t *testing.T) { pgtest.Both(t, testNodesSettleADayOnce) }

func testNodesSettleADayOnce(t *testing.T) {
	nodes := openNodes(t, 2)
	seedDay(t, nodes[0])
	day := mustDay(t, "2025-03-10")
	transfers := nodes[0].count(t, `SELECT count(*) FROM transfers`)
	const runs = 4 // per node
	reports := make([]settlement.Report, 2*runs)
	errs := make([]error, 2*runs)
	var wg sync.WaitGroup
	for i := range reports {
		node := nodes[i%2]
		node.clock.set(at(11, 1, 0))
		wg.Add(1)
		go func() {
			defer wg.Done()
			reports[i], errs[i] = settlement.Settle(ctx, node.l, day, at(11, 1, 0))
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if !errors.Is(err, settlement.ErrIncomplete) { // M3 is frozen
			t.Fatalf("run %d: %v, want ErrIncomplete", i, err)
		}
	}
	// M1, M2 and M5 settle (M4's takings are negative, M3 is frozen): three transfers.
	if got := nodes[0].count(t, `SELECT count(*) FROM transfers`); got != transfers+3 {
		t.Fatalf("%d runs booked %d transfers, want 3", len(reports), got-transfers)
	}
	settled := nodes[0].count(t, `SELECT credits_posted - debits_posted FROM accounts WHERE type = 'settlement'`)
	for i, r := range reports {
		if tot := r.Totals["KES"]; tot.Settled != settled {
			t.Errorf("run %d reports %d settled, the settlement account holds %d: %+v", i, tot.Settled, settled, r.Lines)
		}
	}
	if settled != 15000+5000+500 {
		t.Errorf("settled %d, want %d", settled, 15000+5000+500)
	}
}
