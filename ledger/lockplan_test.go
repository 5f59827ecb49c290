package ledger_test

import (
	"fmt"
	"testing"

	"github.com/payswitch/payswitch/internal/pgtest"
	"github.com/payswitch/payswitch/ledger"
	"github.com/payswitch/payswitch/store"
)

// TestBookingLockKeepsAGenericPlanOnPostgres checks that the lock a booking takes on its
// debit account is not planned again at every call: PostgreSQL keeps re-planning a
// prepared statement whose generic plan looks dearer than its custom ones, which an array
// of unknown length (id = ANY($1)) always does, and that planning was a tenth of the
// server's statement time per payment under loadgen. Ten holds in one transaction (one
// connection, so one prepared statement) must leave that statement with generic plans
// after the planner's first five custom ones.
func TestBookingLockKeepsAGenericPlanOnPostgres(t *testing.T) {
	pgtest.Both(t, func(t *testing.T) {
		if !pgtest.OnPostgres(t) {
			t.Skip("SQLite takes no lock per account")
		}
		l := mustOpen(t)
		mustCash(t, l, "KES")
		shop, err := l.CreateAccount(ctx, ledger.NewAccount{Type: ledger.Merchant, Currency: "KES", Code: "55501"})
		if err != nil {
			t.Fatal(err)
		}
		payers := make([]string, 10)
		for i := range payers {
			payers[i] = mustWallet(t, l, "KES").ID
			mustDeposit(t, l, payers[i], 1_000)
		}
		// Statistics of a table of some size: on a page or two every plan costs the same,
		// and even the array's generic plan is kept.
		for range 3000 {
			mustWallet(t, l, "KES")
		}
		if _, err := l.DB().Reader().ExecContext(ctx, `ANALYZE accounts`); err != nil {
			t.Fatal(err)
		}
		var generic, custom, runs int64 // custom: the most any one statement was planned for its arguments
		err = l.DB().Write(ctx, func(tx store.Tx) error {
			lt := l.In(tx)
			for i, p := range payers {
				if _, err := lt.Hold(ctx, ledger.HoldRequest{Key: fmt.Sprintf("P%d:hold", i), Debit: p, Credit: shop.ID,
					Amount: 10, PaymentID: fmt.Sprintf("P%d", i), Kind: "merchant_payment"}); err != nil {
					return err
				}
			}
			// Every account lock this connection prepared: the holds', and the deposits' when
			// they ran here. None may have been planned for its arguments past the first five.
			return tx.QueryRowContext(ctx, `SELECT COALESCE(sum(generic_plans), 0), COALESCE(max(custom_plans), 0),
				COALESCE(sum(generic_plans + custom_plans), 0) FROM pg_prepared_statements
				WHERE statement LIKE 'SELECT id FROM accounts WHERE id %FOR NO KEY UPDATE'`).Scan(&generic, &custom, &runs)
		})
		if err != nil {
			t.Fatal(err)
		}
		if runs < int64(len(payers)) {
			t.Fatalf("the account locks ran %d times on this connection, want at least %d", runs, len(payers))
		}
		if generic == 0 || custom > 5 {
			t.Errorf("an account lock was planned for its arguments %d times, and the locks used a generic plan %d times; want a generic plan after the first five",
				custom, generic)
		}
	})
}
