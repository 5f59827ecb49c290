package ledger_test

import (
	"testing"

	"github.com/payswitch/payswitch/ledger"
)

// AccountsNamed finds accounts by part of their name, ignoring case, and takes % and _
// literally.
func TestAccountsNamed(t *testing.T) {
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
}
