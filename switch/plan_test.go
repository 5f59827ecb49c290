package payswitch_test

import (
	"context"
	"strings"
	"testing"
	"time"

	. "github.com/payswitch/payswitch/switch"
)

// TestHotReadsUseIndexes checks that the reads every payment makes, and the mini
// statement, find their rows through an index: a scan would grow with the tables.
func TestHotReadsUseIndexes(t *testing.T) {
	h := newHarness(t)
	tables := map[string]bool{}
	rows, err := h.db.Reader().QueryContext(context.Background(), `SELECT name FROM sqlite_master WHERE type = 'table'`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var name string
		if err := rows.Scan(&name); err != nil {
			t.Fatal(err)
		}
		tables[name] = true
	}
	if rows.Close(); len(tables) < 10 || !tables["payments"] {
		t.Fatalf("tables %v", tables)
	}
	for _, tc := range HotQueries {
		t.Run(tc.Name, func(t *testing.T) {
			plan, err := h.db.QueryPlan(context.Background(), tc.Query, make([]any, tc.Args)...)
			if err != nil || len(plan) == 0 {
				t.Fatalf("plan %v: %v", plan, err)
			}
			for _, detail := range plan {
				// Walking a subquery's few rows is fine (SQLite names it by its alias, or
				// "(subquery-n)"); walking a table is not.
				if f := strings.Fields(detail); len(f) > 1 && f[0] == "SCAN" && tables[f[1]] {
					t.Errorf("%s scans: %s", tc.Name, detail)
				}
			}
		})
	}
}

// TestPaymentsOfANumberAreTheNewestOfBothSides checks the list that MINI and the API show:
// the newest payments a number made or received, whichever side has more.
func TestPaymentsOfANumberAreTheNewestOfBothSides(t *testing.T) {
	ctx := context.Background()
	h := newHarness(t)
	h.wallet(alice, 1000000)
	h.wallet(bob, 1000000)
	h.merchant("55501", mama)
	var want []string // newest first
	step := func(from, text string) {
		h.clock.Advance(time.Second)
		h.sms(from, text)
		p := h.pendingOf(from)
		h.sms(from, h.code(from))
		want = append([]string{p.ID}, want...)
	}
	for range 4 {
		step(alice, "PAY 55501 10") // alice pays
	}
	for range 4 {
		step(bob, "SEND 0700000001 10") // alice receives
	}
	step(alice, "PAY 55501 10")
	for _, limit := range []int{3, 5, 20} {
		ps, err := h.engine.Payments(ctx, alice, limit)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, p := range ps {
			got = append(got, p.ID)
		}
		// Alice's list also holds the seed deposit, oldest of all.
		n := min(limit, len(want))
		if len(got) != min(limit, len(want)+1) || strings.Join(got[:n], ",") != strings.Join(want[:n], ",") {
			t.Fatalf("limit %d: got %v, want %v", limit, got, want[:n])
		}
	}
}
