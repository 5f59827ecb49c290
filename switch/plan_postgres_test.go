package payswitch_test

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"testing"

	"github.com/payswitch/payswitch/internal/pgtest"
	. "github.com/payswitch/payswitch/switch"
)

// TestWaitingPaymentLookupsSkipTheExpiryIndexesOnPostgres checks the plans PostgreSQL
// makes for the lookups of a number's waiting payment when its statistics were taken
// while no payment was waiting (a quiet hour, or just after start): each must go by the
// number (one_pending_per_number, one_request_per_number), never walk an expiry index
// and every waiting payment of every number in it; and the sweeper's reads must still
// go along the expiry indexes. Before migrationExpiryPredicatesPG the planner took
// payments_pending_expiry for the lookups, as it did under loadgen.
func TestWaitingPaymentLookupsSkipTheExpiryIndexesOnPostgres(t *testing.T) {
	pgtest.Both(t, func(t *testing.T) {
		if !pgtest.OnPostgres(t) {
			t.Skip("SQLite's plans are TestHotReadsUseIndexes'")
		}
		ctx := context.Background()
		h := newHarness(t)
		h.merchant("55501", mama)
		payers := make([]string, 60)
		for i := range payers {
			payers[i] = fmt.Sprintf("2547001%05d", i)
			h.wallet(payers[i], 1_000_000)
			h.sms(payers[i], "PAY 55501 10")
			h.sms(payers[i], h.code(payers[i]))
		}
		if _, err := h.db.Reader().ExecContext(ctx, `ANALYZE payments`); err != nil {
			t.Fatal(err)
		}
		for _, p := range payers[:5] { // waiting now, unknown to the statistics
			h.sms(p, "PAY 55501 10")
		}
		if h.pendingOf(payers[0]) == nil {
			t.Fatal("no payment waiting")
		}
		// One connection, table scans ruled out: the tables of a test are too small for
		// an index to beat a scan, and the question is which index serves which read.
		conn, err := h.db.Reader().Conn(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		if _, err := conn.ExecContext(ctx, `SET enable_seqscan = off`); err != nil {
			t.Fatal(err)
		}
		// The hot queries checked: true for the sweeper's, false for the lookups by number.
		sweeper := map[string]bool{"number state": false, "waiting payment": false, "pending payment": false,
			"waiting payments": false, "waiting request": false, "request state": false,
			"due for expiry": true, "next expiry": true}
		for _, q := range HotQueries {
			bySweeper, checked := sweeper[q.Name]
			if !checked {
				continue
			}
			delete(sweeper, q.Name)
			args := make([]any, q.Args)
			for i := range args {
				args[i] = payers[0]
			}
			if bySweeper && q.Args > 0 {
				args[0] = int64(1 << 62) // every deadline is before it
			}
			text := explain(t, conn, q.Query, args...)
			usesExpiry := strings.Contains(text, "payments_pending_expiry") || strings.Contains(text, "payments_requested_expiry")
			switch {
			case !bySweeper && usesExpiry:
				t.Errorf("%s walks an expiry index:\n%s", q.Name, text)
			case bySweeper && !strings.Contains(text, "payments_pending_expiry"):
				t.Errorf("%s does not use payments_pending_expiry:\n%s", q.Name, text)
			}
		}
		if len(sweeper) > 0 {
			t.Fatalf("not among the hot queries: %v", sweeper)
		}
	})
}

// explain returns PostgreSQL's plan of query on conn.
func explain(t *testing.T, conn *sql.Conn, query string, args ...any) string {
	t.Helper()
	rows, err := conn.QueryContext(context.Background(), "EXPLAIN "+query, args...)
	if err != nil {
		t.Fatalf("explain: %v", err)
	}
	defer rows.Close()
	var plan []string
	for rows.Next() {
		var line string
		if err := rows.Scan(&line); err != nil {
			t.Fatal(err)
		}
		plan = append(plan, line)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return strings.Join(plan, "\n")
}
