package ledger_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"path/filepath"

	"github.com/payswitch/payswitch/ledger"
	"github.com/payswitch/payswitch/store"
)

// A deposit funds a wallet from the cash float; a payment holds the funds until the payer
// confirms, then posts them.
func Example() {
	dir, err := os.MkdirTemp("", "ledger-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	l, err := ledger.Open(filepath.Join(dir, "ledger.db"), store.Options{})
	if err != nil {
		log.Fatal(err)
	}
	defer l.Close()
	ctx := context.Background()

	cash, _ := l.SystemAccount(ctx, ledger.Cash, "KES", "KES")
	alice, _ := l.CreateAccount(ctx, ledger.NewAccount{Type: ledger.Wallet, Currency: "KES", Name: "Alice", MSISDN: "254700000001"})
	shop, _ := l.CreateAccount(ctx, ledger.NewAccount{Type: ledger.Merchant, Currency: "KES", Name: "Mama Mboga", Code: "55501"})

	l.Transfer(ctx, ledger.TransferRequest{Key: "CASHIN-1", Debit: cash.ID, Credit: alice.ID, Amount: 100000, Kind: "deposit"})
	l.Hold(ctx, ledger.HoldRequest{Key: "PAY0000001:hold", Debit: alice.ID, Credit: shop.ID, Amount: 15000, PaymentID: "PAY0000001", Kind: "merchant_payment"})
	a, _ := l.Account(ctx, alice.ID)
	fmt.Printf("held:   %+v\n", a.Balance)

	l.Post(ctx, "PAY0000001:hold")
	a, _ = l.Account(ctx, alice.ID)
	fmt.Printf("posted: %+v\n", a.Balance)

	tb, _ := l.TrialBalance(ctx)
	fmt.Printf("KES: %+v\n", tb["KES"])
	// Output:
	// held:   {Posted:100000 Held:15000 Available:85000}
	// posted: {Posted:85000 Held:0 Available:85000}
	// KES: {Debits:115000 Credits:115000}
}
