package payswitch

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/payswitch/payswitch/store"
)

// TestMerchantPaymentsUsesTheIndex checks that, with the schema's index, a page of a merchant's
// payments is a range of it read in order: no scan of the table, no sort.
func TestMerchantPaymentsUsesTheIndex(t *testing.T) {
	ctx := context.Background()
	db, err := store.Open(filepath.Join(t.TempDir(), "plan.db"), store.Options{Synchronous: "OFF"}, Schema)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, state := range []string{"", "completed"} {
		rows, err := db.Reader().QueryContext(ctx, `EXPLAIN QUERY PLAN `+merchantPaymentsQuery,
			"ACX", state, 0, int64(1)<<62, int64(1)<<62, "~", 21)
		if err != nil {
			t.Fatal(err)
		}
		var plan []string
		for rows.Next() {
			var id, parent, unused int
			var detail string
			if err := rows.Scan(&id, &parent, &unused, &detail); err != nil {
				t.Fatal(err)
			}
			plan = append(plan, detail)
		}
		rows.Close()
		p := strings.Join(plan, "; ")
		if !strings.Contains(p, "USING INDEX payments_by_payee_account (payee_account=? AND created_at>? AND created_at<?)") ||
			strings.Contains(p, "TEMP B-TREE") {
			t.Errorf("state %q: plan %q: want a range of payments_by_payee_account and no sort", state, p)
		}
	}
}
