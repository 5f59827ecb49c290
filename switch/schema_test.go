package payswitch_test

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/payswitch/payswitch/internal/pgtest"
	"github.com/payswitch/payswitch/store"

	. "github.com/payswitch/payswitch/switch"
)

// TestPartialUniqueIndexes checks the payments that have a request key or a reversal
// reference: each value is taken once, any number of payments have none, and a lookup
// by request key (an operator's retried request) finds its payment through the partial
// index, not by reading every payment.
func TestPartialUniqueIndexes(t *testing.T) {
	pgtest.Both(t, func(t *testing.T) {
		ctx := context.Background()
		h := newHarness(t)
		const insert = `INSERT INTO payments (id, type, channel, state, payer_account, payee_account, amount, currency,
		request_key, reversal_ref, created_at, updated_at) VALUES (?, 'airtime', 'api', 'completed', 'a', 'b', 1, 'KES', ?, ?, 1, 1)`
		for _, c := range []struct {
			name     string
			id       string
			key, ref any
			wantErr  string
		}{
			{"neither", "PAYA", nil, nil, ""},
			{"neither again", "PAYB", nil, nil, ""},
			{"a request key", "PAYC", "op-1", nil, ""},
			{"another request key", "PAYD", "op-2", nil, ""},
			{"a request key taken", "PAYE", "op-1", nil, "payments.request_key"},
			{"a reversal reference", "PAYF", nil, "rv-1", ""},
			{"a reversal reference taken", "PAYG", nil, "rv-1", "payments.reversal_ref"},
		} {
			err := h.db.Write(ctx, func(tx store.Tx) error {
				_, err := tx.ExecContext(ctx, insert, c.id, c.key, c.ref)
				return err
			})
			switch {
			case c.wantErr == "" && err != nil:
				t.Errorf("%s: %v", c.name, err)
			case c.wantErr != "" && !store.IsUniqueViolation(err, c.wantErr):
				t.Errorf("%s: %v, want a unique violation of %s", c.name, err, c.wantErr)
			}
		}
		plan, err := h.db.QueryPlan(ctx, `SELECT `+PaymentColumns+` FROM payments WHERE request_key = ?`, "op-1")
		want := "USING INDEX payments_request_key" // SQLite's words; PostgreSQL's follow
		if h.db.Dialect() == store.Postgres {
			want = "Index Scan using payments_request_key"
		}
		if err != nil || len(plan) == 0 || !strings.Contains(plan[0], want) {
			t.Errorf("payment by request key: plan %v, %v", plan, err)
		}
	})
}

// TestOneRequestPerNumber: a number has at most one merchant's request waiting, beside
// at most one payment of its own, as a fact of the schema.
func TestOneRequestPerNumber(t *testing.T) {
	pgtest.Both(t, func(t *testing.T) {
		ctx := context.Background()
		h := newHarness(t)
		const insert = `INSERT INTO payments (id, type, channel, state, payer_msisdn, payer_account, payee_account, amount,
		currency, created_at, updated_at) VALUES (?, 'merchant_payment', 'api', ?, ?, 'a', 'b', 1, 'KES', 1, 1)`
		for _, c := range []struct {
			id, state, payer string
			wantErr          bool
		}{
			{"PAYA", "pending_otp", alice, false},
			{"PAYB", "requested", alice, false},
			{"PAYC", "requested", alice, true},
			{"PAYD", "requested", bob, false},
			{"PAYE", "declined", alice, false},
			{"PAYF", "pending_otp", alice, true},
		} {
			err := h.db.Write(ctx, func(tx store.Tx) error {
				_, err := tx.ExecContext(ctx, insert, c.id, c.state, c.payer)
				return err
			})
			if (err != nil) != c.wantErr || err != nil && !store.IsUniqueViolation(err, "payments.payer_msisdn") {
				t.Errorf("%s %s for %s: %v, want refused %v", c.id, c.state, c.payer, err, c.wantErr)
			}
		}
	})
}

// TestPostgresSchemaMatchesSQLite: the tables of Schema.Postgres have the columns, and
// the indexes, that SQLite's migrations leave, so that a migration added on one side
// only is found here.
func TestPostgresSchemaMatchesSQLite(t *testing.T) {
	var sqlite, postgres map[string][]string
	pgtest.Both(t, func(t *testing.T) {
		h := newHarness(t)
		q := `SELECT m.name, p.name FROM sqlite_master AS m, pragma_table_info(m.name) AS p
			WHERE m.type = 'table' UNION ALL SELECT tbl_name, 'index ' || name FROM sqlite_master
			WHERE type = 'index' AND name NOT LIKE 'sqlite_autoindex%'`
		if h.db.Dialect() == store.Postgres {
			q = `SELECT table_name, column_name FROM information_schema.columns WHERE table_schema = 'public'
				UNION ALL SELECT tablename, 'index ' || indexname FROM pg_indexes
				WHERE schemaname = 'public' AND indexname NOT IN (SELECT conname FROM pg_constraint)`
		}
		rows, err := h.db.Reader().QueryContext(context.Background(), q)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		got := map[string][]string{}
		for rows.Next() {
			var table, column string
			if err := rows.Scan(&table, &column); err != nil {
				t.Fatal(err)
			}
			got[table] = append(got[table], column)
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		for _, cols := range got {
			slices.Sort(cols)
		}
		if h.db.Dialect() == store.Postgres {
			postgres = got
		} else {
			// SQLite's payments have their rowid without a column for it; PostgreSQL's
			// have one (the console pages by it).
			got["payments"] = append(got["payments"], "rowid")
			slices.Sort(got["payments"])
			sqlite = got
		}
	})
	if postgres == nil {
		return // no PostgreSQL here
	}
	for _, table := range []string{"payments", "payment_events", "daily_totals", "number_locks", "origin_wrong_codes",
		"account_changes", "payment_items", "request_stops", "request_counts", "refunds", "wallet_kyc", "lock_attempts"} {
		if !slices.Equal(sqlite[table], postgres[table]) || len(sqlite[table]) == 0 {
			t.Errorf("%s:\nSQLite     %v\nPostgreSQL %v", table, sqlite[table], postgres[table])
		}
	}
}
