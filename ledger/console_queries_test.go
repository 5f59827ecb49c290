package ledger_test

import (
	"testing"

	"github.com/payswitch/payswitch/internal/pgtest"

	"github.com/payswitch/payswitch/ledger"
)

// AccountsNamed finds accounts by part of their name, ignoring case, and takes % and _
// literally.
func TestAccountsNamed(t *testing.T) {
	pgtest.Both(t, func(t *testing.T) {
		l := mustOpen(t)
		for i, name := range []string{"Mama Mboga", "mama ntilie", "Bob", "100% Juice_Bar"} {
			if _, err := l.CreateAccount(ctx, ledger.NewAccount{Type: ledger.Wallet, Currency: "KES", Name: name,
				MSISDN: "25470000000" + string(rune('1'+i))}); err != nil {
				t.Fatal(err)
			}
		}
		for q, want := range map[string]int{"MAMA": 2, "mboga": 1, "%": 1, "_": 1, "e_B": 1, "zzz": 0, "": 4} {
			as, err := l.AccountsNamed(ctx, q, 0)
			if err != nil {
				t.Fatal(err)
			}
			if len(as) != want {
				t.Errorf("AccountsNamed(%q): %d accounts, want %d", q, len(as), want)
			}
		}
	})
}

// KeyDateRuns sums the transfers of a key prefix by the date after it, newest first,
// and leaves out keys that merely sort near the prefix.
func TestKeyDateRuns(t *testing.T) {
	pgtest.Both(t, func(t *testing.T) {
		l := mustOpen(t)
		a, b, sink := mustWallet(t, l, "KES"), mustWallet(t, l, "KES"), mustWallet(t, l, "KES")
		mustDeposit(t, l, a.ID, 10000)
		mustDeposit(t, l, b.ID, 10000)
		for _, tr := range []struct {
			key  string
			from string
			n    int64
		}{
			{"run:2025-03-09:" + a.ID, a.ID, 100}, {"run:2025-03-09:" + b.ID, b.ID, 200},
			{"run:2025-03-10:" + a.ID, a.ID, 50}, {"run;2025-03-11", a.ID, 7}, {"ru:2025-03-11", a.ID, 7},
		} {
			if _, err := l.Transfer(ctx, ledger.TransferRequest{Key: tr.key, Debit: tr.from, Credit: sink.ID,
				Amount: tr.n, Kind: "test"}); err != nil {
				t.Fatal(err)
			}
		}
		runs, err := l.KeyDateRuns(ctx, "run:", 0)
		if err != nil {
			t.Fatal(err)
		}
		want := []ledger.KeyDateRun{{"2025-03-10", "KES", 1, 50}, {"2025-03-09", "KES", 2, 300}}
		if len(runs) != len(want) || runs[0] != want[0] || runs[1] != want[1] {
			t.Fatalf("runs %+v, want %+v", runs, want)
		}
		if runs, err := l.KeyDateRuns(ctx, "run:", 1); err != nil || len(runs) != 1 || runs[0].Date != "2025-03-10" {
			t.Fatalf("limit 1: %+v %v", runs, err)
		}
	})
}
