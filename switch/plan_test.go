package payswitch

import (
	"context"
	"strings"
	"testing"
)

// TestHotReadsUseIndexes checks that the reads every payment makes find their rows
// through an index: a scan would grow with the tables, on the store's one writer.
func TestHotReadsUseIndexes(t *testing.T) {
	h := newHarness(t)
	for _, tc := range []struct {
		name, query string
		args        int
	}{
		{"number state", numberStateQuery, 2},
		{"waiting payment", waitingQuery, 1},
		{"pending payment", pendingQuery, 1},
		{"payment by id", paymentQuery, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rows, err := h.db.Reader().QueryContext(context.Background(), "EXPLAIN QUERY PLAN "+tc.query, make([]any, tc.args)...)
			if err != nil {
				t.Fatal(err)
			}
			defer rows.Close()
			var plan []string
			for rows.Next() {
				var id, parent, unused int
				var detail string
				if err := rows.Scan(&id, &parent, &unused, &detail); err != nil {
					t.Fatal(err)
				}
				plan = append(plan, detail)
				if strings.HasPrefix(detail, "SCAN") && detail != "SCAN CONSTANT ROW" {
					t.Errorf("%s scans: %s", tc.name, detail)
				}
			}
			if err := rows.Err(); err != nil || len(plan) == 0 {
				t.Fatalf("plan %v: %v", plan, err)
			}
		})
	}
}
