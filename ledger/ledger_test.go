package ledger_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sync"
	"testing"
	"time"

	"github.com/payswitch/payswitch/internal/dbtest"

	"github.com/payswitch/payswitch/internal/pgtest"
	"github.com/payswitch/payswitch/ledger"
	"github.com/payswitch/payswitch/store"
)

var ctx = context.Background()

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

// driverOf is the driver of the pgtest.Both subtest tb is, or runs inside.
var driverOf = dbtest.Dialect

// openDB opens a new database of tb's driver with the ledger's schema.
func openDB(tb testing.TB, opts store.Options) *store.DB {
	tb.Helper()
	var db *store.DB
	var err error
	if driverOf(tb) == store.Postgres {
		db, err = store.OpenPostgres(ctx, pgtest.URL(tb), opts, ledger.Schema)
	} else {
		db, err = store.Open(filepath.Join(tb.TempDir(), "ledger.db"), opts, ledger.Schema)
	}
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { db.Close() })
	return db
}

// openPostgresAt opens a node (a store.DB) on the PostgreSQL database at url with the
// ledger's schema: tests of several nodes open one each on the same url.
func openPostgresAt(tb testing.TB, url string) *store.DB {
	tb.Helper()
	db, err := store.OpenPostgres(ctx, url, store.Options{}, ledger.Schema)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { db.Close() })
	return db
}

// mustOpen opens a ledger on a new database of tb's driver (driverOf).
func mustOpen(tb testing.TB) *ledger.Ledger {
	tb.Helper()
	return ledger.New(openDB(tb, store.Options{}), nil)
}

func mustOpenPath(tb testing.TB, path string) *ledger.Ledger {
	tb.Helper()
	l, err := ledger.Open(path, store.Options{})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { l.Close() })
	return l
}

func mustCash(tb testing.TB, l *ledger.Ledger, currency string) ledger.Account {
	tb.Helper()
	a, err := l.SystemAccount(ctx, ledger.Cash, currency, currency)
	if err != nil {
		tb.Fatal(err)
	}
	return a
}

var msisdnSeq struct {
	sync.Mutex
	n int
}

func mustWallet(tb testing.TB, l *ledger.Ledger, currency string) ledger.Account {
	tb.Helper()
	msisdnSeq.Lock()
	msisdnSeq.n++
	msisdn := fmt.Sprintf("2547%08d", msisdnSeq.n)
	msisdnSeq.Unlock()
	a, err := l.CreateAccount(ctx, ledger.NewAccount{Type: ledger.Wallet, Currency: currency, Name: "w", MSISDN: msisdn})
	if err != nil {
		tb.Fatal(err)
	}
	return a
}

// mustDeposit funds id from the cash account of its currency.
func mustDeposit(tb testing.TB, l *ledger.Ledger, id string, amount int64) ledger.Transfer {
	tb.Helper()
	a, err := l.Account(ctx, id)
	if err != nil {
		tb.Fatal(err)
	}
	cash := mustCash(tb, l, a.Currency)
	tr, err := l.Transfer(ctx, ledger.TransferRequest{Key: "dep:" + ledger.NewTransferID(), Debit: cash.ID,
		Credit: id, Amount: amount, Kind: "deposit"})
	if err != nil {
		tb.Fatal(err)
	}
	return tr
}

func balanceOf(tb testing.TB, l *ledger.Ledger, id string) ledger.Balance {
	tb.Helper()
	a, err := l.Account(ctx, id)
	if err != nil {
		tb.Fatal(err)
	}
	return a.Balance
}

func wantBalance(tb testing.TB, l *ledger.Ledger, id string, want ledger.Balance) {
	tb.Helper()
	if got := balanceOf(tb, l, id); got != want {
		tb.Errorf("balance of %s = %+v, want %+v", id, got, want)
	}
}

func posted(n int64) ledger.Balance { return ledger.Balance{Posted: n, Available: n} }

// mustVerify fails tb unless Verify finds the ledger sound.
func mustVerify(tb testing.TB, l *ledger.Ledger) ledger.Report {
	tb.Helper()
	r, err := l.Verify(ctx)
	if err != nil {
		tb.Fatal(err)
	}
	if !r.OK {
		tb.Fatalf("Verify: %v", r.Problems)
	}
	return r
}

func countRows(tb testing.TB, l *ledger.Ledger, table string) int {
	tb.Helper()
	var n int
	if err := l.DB().Reader().QueryRow("SELECT count(*) FROM " + table).Scan(&n); err != nil {
		tb.Fatal(err)
	}
	return n
}

func TestTransferPostsBalancedEntries(t *testing.T) {
	pgtest.Both(t, func(t *testing.T) {
		l := mustOpen(t)
		alice, bob := mustWallet(t, l, "KES"), mustWallet(t, l, "KES")
		dep := mustDeposit(t, l, alice.ID, 100_000)
		tr, err := l.Transfer(ctx, ledger.TransferRequest{Key: "p1:transfer", Debit: alice.ID, Credit: bob.ID,
			Amount: 40_000, PaymentID: "PAY0000001", Kind: "transfer"})
		if err != nil {
			t.Fatal(err)
		}
		if !regexp.MustCompile(`^TR[A-Z0-9]{12}$`).MatchString(tr.ID) {
			t.Errorf("transfer id %q, want TR and 12 letters or digits", tr.ID)
		}
		if tr.Currency != "KES" || tr.Amount != 40_000 || tr.Kind != "transfer" || tr.PaymentID != "PAY0000001" {
			t.Errorf("transfer = %+v", tr)
		}
		wantBalance(t, l, "cash:KES", posted(-100_000))
		wantBalance(t, l, alice.ID, posted(60_000))
		wantBalance(t, l, bob.ID, posted(40_000))

		es, err := l.Entries(ctx, alice.ID, 0, 10)
		if err != nil {
			t.Fatal(err)
		}
		if len(es) != 2 {
			t.Fatalf("alice has %d entries, want 2", len(es))
		}
		want := []struct {
			transfer, dir string
			amount, after int64
		}{{tr.ID, "D", 40_000, 60_000}, {dep.ID, "C", 100_000, 100_000}}
		for i, w := range want {
			e := es[i]
			if e.TransferID != w.transfer || e.Direction != w.dir || e.Amount != w.amount || e.BalanceAfter != w.after {
				t.Errorf("entry %d = %+v, want %+v", i, e, w)
			}
		}
		bobs, err := l.Entries(ctx, bob.ID, 0, 10)
		if err != nil {
			t.Fatal(err)
		}
		if len(bobs) != 1 || bobs[0].Seq != es[0].Seq+1 || bobs[0].Direction != "C" || bobs[0].PaymentID != "PAY0000001" {
			t.Errorf("bob's entries = %+v, want the credit right after alice's debit", bobs)
		}

		var sum int64
		if err := l.Accounts(ctx, func(a ledger.Account) error { sum += a.Balance.Posted; return nil }); err != nil {
			t.Fatal(err)
		}
		if sum != 0 {
			t.Errorf("posted balances sum to %d, want 0", sum)
		}
		r := mustVerify(t, l)
		if r.Entries != 4 || r.Transfers != 2 || r.Accounts != 3 {
			t.Errorf("report = %+v, want 4 entries, 2 transfers, 3 accounts", r)
		}
	})
}

func TestTransferIdempotency(t *testing.T) {
	pgtest.Both(t, func(t *testing.T) {
		l := mustOpen(t)
		alice, bob, carol := mustWallet(t, l, "KES"), mustWallet(t, l, "KES"), mustWallet(t, l, "KES")
		mustDeposit(t, l, alice.ID, 10_000)
		first := ledger.TransferRequest{Key: "k1", Debit: alice.ID, Credit: bob.ID, Amount: 1_000, PaymentID: "P1", Kind: "transfer"}
		tr, err := l.Transfer(ctx, first)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := l.Hold(ctx, ledger.HoldRequest{Key: "h1", Debit: alice.ID, Credit: bob.ID, Amount: 1, Kind: "transfer"}); err != nil {
			t.Fatal(err)
		}
		entries := countRows(t, l, "entries")

		again, err := l.Transfer(ctx, first)
		if err != nil {
			t.Fatalf("same request again: %v", err)
		}
		if again != tr {
			t.Errorf("same key again returned %+v, want the first %+v", again, tr)
		}

		for _, c := range []struct {
			name   string
			change func(*ledger.TransferRequest)
		}{
			{"other amount", func(r *ledger.TransferRequest) { r.Amount = 2_000 }},
			{"other credit account", func(r *ledger.TransferRequest) { r.Credit = carol.ID }},
			{"other debit account", func(r *ledger.TransferRequest) { r.Debit, r.Credit = bob.ID, alice.ID }},
			{"other kind", func(r *ledger.TransferRequest) { r.Kind = "merchant_payment" }},
			{"other payment", func(r *ledger.TransferRequest) { r.PaymentID = "P2" }},
			{"key of a hold", func(r *ledger.TransferRequest) { r.Key = "h1" }},
		} {
			t.Run(c.name, func(t *testing.T) {
				r := first
				c.change(&r)
				if _, err := l.Transfer(ctx, r); !errors.Is(err, ledger.ErrIdempotencyConflict) {
					t.Errorf("err = %v, want ErrIdempotencyConflict", err)
				}
			})
		}
		if n := countRows(t, l, "entries"); n != entries {
			t.Errorf("%d entries after the repeats, want %d: a repeat wrote", n, entries)
		}
		wantBalance(t, l, alice.ID, ledger.Balance{Posted: 9_000, Held: 1, Available: 8_999})
		wantBalance(t, l, bob.ID, posted(1_000))
	})
}

func TestInsufficientFunds(t *testing.T) {
	pgtest.Both(t, func(t *testing.T) {
		l := mustOpen(t)
		alice, bob := mustWallet(t, l, "KES"), mustWallet(t, l, "KES")
		mustDeposit(t, l, alice.ID, 100)
		_, err := l.Transfer(ctx, ledger.TransferRequest{Key: "k1", Debit: alice.ID, Credit: bob.ID, Amount: 101, Kind: "transfer"})
		if !errors.Is(err, ledger.ErrInsufficientFunds) {
			t.Fatalf("err = %v, want ErrInsufficientFunds", err)
		}
		wantBalance(t, l, alice.ID, posted(100))
		if n := countRows(t, l, "transfers"); n != 1 {
			t.Errorf("%d transfers, want only the deposit: the refusal booked something", n)
		}
		// The key is still free: the refusal booked nothing under it.
		if _, err := l.Transfer(ctx, ledger.TransferRequest{Key: "k1", Debit: alice.ID, Credit: bob.ID, Amount: 100, Kind: "transfer"}); err != nil {
			t.Fatalf("spending exactly the balance: %v", err)
		}
		wantBalance(t, l, alice.ID, posted(0))
		// A system account may go below zero.
		cash := mustCash(t, l, "KES")
		if _, err := l.Transfer(ctx, ledger.TransferRequest{Key: "k2", Debit: cash.ID, Credit: bob.ID, Amount: 5, Kind: "deposit"}); err != nil {
			t.Fatal(err)
		}
		wantBalance(t, l, cash.ID, posted(-105))
		mustVerify(t, l)
	})
}

func TestConcurrentSpendNeverOverdraws(t *testing.T) {
	pgtest.Both(t, func(t *testing.T) {
		l := mustOpen(t)
		alice, bob := mustWallet(t, l, "KES"), mustWallet(t, l, "KES")
		mustDeposit(t, l, alice.ID, 1_000)
		const spenders, amount = 50, 30
		errs := make([]error, spenders)
		var wg sync.WaitGroup
		for i := range spenders {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, errs[i] = l.Transfer(ctx, ledger.TransferRequest{Key: fmt.Sprintf("spend-%d", i), Debit: alice.ID,
					Credit: bob.ID, Amount: amount, Kind: "transfer"})
			}()
		}
		wg.Wait()
		ok := 0
		for i, err := range errs {
			switch {
			case err == nil:
				ok++
			case !errors.Is(err, ledger.ErrInsufficientFunds):
				t.Errorf("spender %d: %v", i, err)
			}
		}
		if ok != 1_000/amount {
			t.Errorf("%d spends succeeded, want %d", ok, 1_000/amount)
		}
		wantBalance(t, l, alice.ID, posted(1_000-int64(ok)*amount))
		wantBalance(t, l, bob.ID, posted(int64(ok)*amount))
		mustVerify(t, l)
	})
}

func TestCurrencyMismatch(t *testing.T) {
	pgtest.Both(t, func(t *testing.T) {
		l := mustOpen(t)
		kes, ugx := mustWallet(t, l, "KES"), mustWallet(t, l, "UGX")
		mustDeposit(t, l, kes.ID, 1_000)
		_, err := l.Transfer(ctx, ledger.TransferRequest{Key: "k", Debit: kes.ID, Credit: ugx.ID, Amount: 10, Kind: "transfer"})
		if !errors.Is(err, ledger.ErrCurrencyMismatch) {
			t.Errorf("transfer KES to UGX: err = %v, want ErrCurrencyMismatch", err)
		}
		_, err = l.Hold(ctx, ledger.HoldRequest{Key: "h", Debit: kes.ID, Credit: ugx.ID, Amount: 10, Kind: "transfer"})
		if !errors.Is(err, ledger.ErrCurrencyMismatch) {
			t.Errorf("hold KES to UGX: err = %v, want ErrCurrencyMismatch", err)
		}
		if _, err := l.SystemAccount(ctx, ledger.Cash, "KES", "UGX"); !errors.Is(err, ledger.ErrCurrencyMismatch) {
			t.Errorf("cash:KES asked in UGX: err = %v, want ErrCurrencyMismatch", err)
		}
		wantBalance(t, l, kes.ID, posted(1_000))
		wantBalance(t, l, ugx.ID, posted(0))
	})
}

func TestInactiveAccounts(t *testing.T) {
	pgtest.Both(t, func(t *testing.T) {
		l := mustOpen(t)
		for _, c := range []struct {
			name   string
			status ledger.Status
			side   string // "payer" or "payee" gets the status
		}{
			{"frozen payer", ledger.Frozen, "payer"},
			{"frozen payee", ledger.Frozen, "payee"},
			{"closed payee", ledger.Closed, "payee"},
		} {
			t.Run(c.name, func(t *testing.T) {
				payer, payee := mustWallet(t, l, "KES"), mustWallet(t, l, "KES")
				mustDeposit(t, l, payer.ID, 1_000)
				target := payer.ID
				if c.side == "payee" {
					target = payee.ID
				}
				if err := l.SetStatus(ctx, target, c.status); err != nil {
					t.Fatal(err)
				}
				if a, _ := l.Account(ctx, target); a.Status != c.status {
					t.Errorf("status = %s, want %s", a.Status, c.status)
				}
				_, err := l.Transfer(ctx, ledger.TransferRequest{Key: c.name, Debit: payer.ID, Credit: payee.ID, Amount: 10, Kind: "transfer"})
				if !errors.Is(err, ledger.ErrAccountInactive) {
					t.Errorf("transfer: err = %v, want ErrAccountInactive", err)
				}
				_, err = l.Hold(ctx, ledger.HoldRequest{Key: c.name + ":h", Debit: payer.ID, Credit: payee.ID, Amount: 10, Kind: "transfer"})
				if !errors.Is(err, ledger.ErrAccountInactive) {
					t.Errorf("hold: err = %v, want ErrAccountInactive", err)
				}
				wantBalance(t, l, payer.ID, posted(1_000))
			})
		}

		t.Run("unfreeze", func(t *testing.T) {
			a, b := mustWallet(t, l, "KES"), mustWallet(t, l, "KES")
			mustDeposit(t, l, a.ID, 100)
			if err := l.SetStatus(ctx, a.ID, ledger.Frozen); err != nil {
				t.Fatal(err)
			}
			if err := l.SetStatus(ctx, a.ID, ledger.Active); err != nil {
				t.Fatal(err)
			}
			if _, err := l.Transfer(ctx, ledger.TransferRequest{Key: "unfrozen", Debit: a.ID, Credit: b.ID, Amount: 10, Kind: "transfer"}); err != nil {
				t.Errorf("transfer after unfreezing: %v", err)
			}
		})
		t.Run("post to a payee frozen after the hold", func(t *testing.T) {
			a, b := mustWallet(t, l, "KES"), mustWallet(t, l, "KES")
			mustDeposit(t, l, a.ID, 100)
			if _, err := l.Hold(ctx, ledger.HoldRequest{Key: "hf", Debit: a.ID, Credit: b.ID, Amount: 10, Kind: "transfer"}); err != nil {
				t.Fatal(err)
			}
			if err := l.SetStatus(ctx, b.ID, ledger.Frozen); err != nil {
				t.Fatal(err)
			}
			if _, err := l.Post(ctx, "hf"); !errors.Is(err, ledger.ErrAccountInactive) {
				t.Errorf("post: err = %v, want ErrAccountInactive", err)
			}
			if _, err := l.Void(ctx, "hf"); err != nil {
				t.Errorf("void still releases: %v", err)
			}
			wantBalance(t, l, a.ID, posted(100))
		})
		t.Run("closing", func(t *testing.T) {
			a := mustWallet(t, l, "KES")
			mustDeposit(t, l, a.ID, 100)
			if err := l.SetStatus(ctx, a.ID, ledger.Closed); !errors.Is(err, ledger.ErrNotEmpty) {
				t.Errorf("closing a funded account: err = %v, want ErrNotEmpty", err)
			}
			empty := mustWallet(t, l, "KES")
			if err := l.SetStatus(ctx, empty.ID, ledger.Closed); err != nil {
				t.Fatal(err)
			}
			if err := l.SetStatus(ctx, empty.ID, ledger.Active); !errors.Is(err, ledger.ErrAccountInactive) {
				t.Errorf("reopening a closed account: err = %v, want ErrAccountInactive", err)
			}
		})
		t.Run("system accounts stay active", func(t *testing.T) {
			cash := mustCash(t, l, "KES")
			if err := l.SetStatus(ctx, cash.ID, ledger.Frozen); !errors.Is(err, ledger.ErrInvalidAccount) {
				t.Errorf("freezing cash: err = %v, want ErrInvalidAccount", err)
			}
		})
	})
}

func TestCreateAccount(t *testing.T) {
	pgtest.Both(t, func(t *testing.T) {
		l := mustOpen(t)
		shop, err := l.CreateAccount(ctx, ledger.NewAccount{Type: ledger.Merchant, Currency: "KES", Name: "Mama Mboga",
			Code: "55501", MSISDN: "254700000900"})
		if err != nil {
			t.Fatal(err)
		}
		if !regexp.MustCompile(`^AC[A-Z0-9]{10}$`).MatchString(shop.ID) {
			t.Errorf("account id %q, want AC and 10 letters or digits", shop.ID)
		}
		got, err := l.AccountByCode(ctx, "55501")
		if err != nil {
			t.Fatal(err)
		}
		if got.ID != shop.ID || got.Name != "Mama Mboga" || got.Type != ledger.Merchant || got.Status != ledger.Active ||
			got.MSISDN != "254700000900" || !got.CreatedAt.Equal(shop.CreatedAt) {
			t.Errorf("by code = %+v, want %+v", got, shop)
		}
		if got, err := l.AccountByMSISDN(ctx, "254700000900"); err != nil || got.ID != shop.ID {
			t.Errorf("by msisdn = %+v, %v", got, err)
		}
		if _, err := l.AccountByMSISDN(ctx, "254799999999"); !errors.Is(err, ledger.ErrNotFound) {
			t.Errorf("unknown msisdn: err = %v, want ErrNotFound", err)
		}
		if _, err := l.CreateAccount(ctx, ledger.NewAccount{ID: "alice-1", Type: ledger.Wallet, Currency: "KES"}); err != nil {
			t.Fatal(err)
		}

		for _, c := range []struct {
			name string
			a    ledger.NewAccount
			want error
		}{
			{"taken msisdn", ledger.NewAccount{Type: ledger.Wallet, Currency: "KES", MSISDN: "254700000900"}, ledger.ErrDuplicate},
			{"taken code", ledger.NewAccount{Type: ledger.Merchant, Currency: "KES", Code: "55501"}, ledger.ErrDuplicate},
			{"taken id", ledger.NewAccount{ID: "alice-1", Type: ledger.Wallet, Currency: "KES"}, ledger.ErrDuplicate},
			{"unknown type", ledger.NewAccount{Type: "savings", Currency: "KES"}, ledger.ErrInvalidAccount},
			{"system type", ledger.NewAccount{Type: ledger.Cash, Currency: "KES"}, ledger.ErrInvalidAccount},
			{"merchant without code", ledger.NewAccount{Type: ledger.Merchant, Currency: "KES"}, ledger.ErrInvalidAccount},
			{"wallet with a code", ledger.NewAccount{Type: ledger.Wallet, Currency: "KES", Code: "1"}, ledger.ErrInvalidAccount},
			{"bad currency", ledger.NewAccount{Type: ledger.Wallet, Currency: "kes"}, ledger.ErrInvalidAccount},
			{"id like a system account", ledger.NewAccount{ID: "cash:KES", Type: ledger.Wallet, Currency: "KES"}, ledger.ErrInvalidAccount},
		} {
			t.Run(c.name, func(t *testing.T) {
				if _, err := l.CreateAccount(ctx, c.a); !errors.Is(err, c.want) {
					t.Errorf("err = %v, want %v", err, c.want)
				}
			})
		}
		if n := countRows(t, l, "accounts"); n != 2 {
			t.Errorf("%d accounts, want 2", n)
		}
	})
}

func TestSystemAccountGetOrCreate(t *testing.T) {
	pgtest.Both(t, func(t *testing.T) {
		l := mustOpen(t)
		a, err := l.SystemAccount(ctx, ledger.AirtimeClearing, "carrier-a", "KES")
		if err != nil {
			t.Fatal(err)
		}
		if a.ID != "airtime_clearing:carrier-a" || a.Type != ledger.AirtimeClearing || a.Status != ledger.Active {
			t.Errorf("account = %+v", a)
		}
		b, err := l.SystemAccount(ctx, ledger.AirtimeClearing, "carrier-a", "KES")
		if err != nil {
			t.Fatal(err)
		}
		if b.ID != a.ID || !b.CreatedAt.Equal(a.CreatedAt) {
			t.Errorf("second call = %+v, want the first %+v", b, a)
		}
		if _, err := l.SystemAccount(ctx, ledger.Wallet, "x", "KES"); !errors.Is(err, ledger.ErrInvalidAccount) {
			t.Errorf("wallet as system account: err = %v, want ErrInvalidAccount", err)
		}
		for _, typ := range []ledger.AccountType{ledger.Cash, ledger.Fees, ledger.AirtimeClearing, ledger.Settlement} {
			if !typ.IsSystem() || !typ.MayGoNegative() {
				t.Errorf("%s: IsSystem %v MayGoNegative %v, want both", typ, typ.IsSystem(), typ.MayGoNegative())
			}
		}
		for _, typ := range []ledger.AccountType{ledger.Wallet, ledger.Merchant, ledger.Agent} {
			if typ.IsSystem() || typ.MayGoNegative() {
				t.Errorf("%s: IsSystem %v MayGoNegative %v, want neither", typ, typ.IsSystem(), typ.MayGoNegative())
			}
		}
	})
}

func TestInvalidRequests(t *testing.T) {
	pgtest.Both(t, func(t *testing.T) {
		l := mustOpen(t)
		alice, bob := mustWallet(t, l, "KES"), mustWallet(t, l, "KES")
		mustDeposit(t, l, alice.ID, 1_000)
		ok := ledger.TransferRequest{Key: "k", Debit: alice.ID, Credit: bob.ID, Amount: 10, Kind: "transfer"}
		for _, c := range []struct {
			name   string
			change func(*ledger.TransferRequest)
			want   error
		}{
			{"zero amount", func(r *ledger.TransferRequest) { r.Amount = 0 }, ledger.ErrInvalidAmount},
			{"negative amount", func(r *ledger.TransferRequest) { r.Amount = -5 }, ledger.ErrInvalidAmount},
			{"same account", func(r *ledger.TransferRequest) { r.Credit = alice.ID }, ledger.ErrSameAccount},
			{"no key", func(r *ledger.TransferRequest) { r.Key = "" }, ledger.ErrInvalidRequest},
			{"no kind", func(r *ledger.TransferRequest) { r.Kind = "" }, ledger.ErrInvalidRequest},
			{"reversal kind", func(r *ledger.TransferRequest) { r.Kind = ledger.KindReversal }, ledger.ErrInvalidRequest},
			{"unknown debit", func(r *ledger.TransferRequest) { r.Debit = "ACNOSUCHONE0" }, ledger.ErrNotFound},
			{"unknown credit", func(r *ledger.TransferRequest) { r.Credit = "ACNOSUCHONE0" }, ledger.ErrNotFound},
		} {
			t.Run(c.name, func(t *testing.T) {
				r := ok
				c.change(&r)
				if _, err := l.Transfer(ctx, r); !errors.Is(err, c.want) {
					t.Errorf("transfer: err = %v, want %v", err, c.want)
				}
				h := ledger.HoldRequest(r)
				if _, err := l.Hold(ctx, h); !errors.Is(err, c.want) {
					t.Errorf("hold: err = %v, want %v", err, c.want)
				}
			})
		}
		wantBalance(t, l, alice.ID, posted(1_000))
	})
}

// TestTxInsideCallerTransaction checks the engine's way of working: the ledger inside
// the caller's own store.Write, committed or rolled back with the caller's rows.
func TestTxInsideCallerTransaction(t *testing.T) {
	pgtest.Both(t, func(t *testing.T) {
		l := mustOpen(t)
		alice, bob := mustWallet(t, l, "KES"), mustWallet(t, l, "KES")
		mustDeposit(t, l, alice.ID, 1_000)

		boom := errors.New("engine failed after the ledger")
		err := l.DB().Write(ctx, func(tx store.Tx) error {
			if _, err := l.In(tx).Transfer(ctx, ledger.TransferRequest{Key: "rolled", Debit: alice.ID, Credit: bob.ID, Amount: 100, Kind: "transfer"}); err != nil {
				return err
			}
			return boom
		})
		if !errors.Is(err, boom) {
			t.Fatalf("Write = %v, want %v", err, boom)
		}
		wantBalance(t, l, alice.ID, posted(1_000))
		mustVerify(t, l)

		// A refused ledger call leaves nothing behind, and the caller commits the rest.
		err = l.DB().Write(ctx, func(tx store.Tx) error {
			lt := l.In(tx)
			if _, err := lt.Transfer(ctx, ledger.TransferRequest{Key: "too-much", Debit: alice.ID, Credit: bob.ID, Amount: 5_000, Kind: "transfer"}); !errors.Is(err, ledger.ErrInsufficientFunds) {
				return fmt.Errorf("want ErrInsufficientFunds, got %v", err)
			}
			if _, err := lt.Transfer(ctx, ledger.TransferRequest{Key: "fine", Debit: alice.ID, Credit: bob.ID, Amount: 300, Kind: "transfer"}); err != nil {
				return err
			}
			a, err := lt.Account(ctx, alice.ID)
			if err != nil {
				return err
			}
			if a.Balance.Posted != 700 {
				return fmt.Errorf("inside the transaction alice has %d, want 700", a.Balance.Posted)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		wantBalance(t, l, alice.ID, posted(700))
		wantBalance(t, l, bob.ID, posted(300))
		mustVerify(t, l)
	})
}

func TestTransfersOfPayment(t *testing.T) {
	pgtest.Both(t, func(t *testing.T) {
		l := mustOpen(t)
		alice, shop := mustWallet(t, l, "KES"), mustWallet(t, l, "KES")
		mustDeposit(t, l, alice.ID, 1_000)
		pay, err := l.Transfer(ctx, ledger.TransferRequest{Key: "PAYX:pay", Debit: alice.ID, Credit: shop.ID, Amount: 400, PaymentID: "PAYX", Kind: "merchant_payment"})
		if err != nil {
			t.Fatal(err)
		}
		rev, err := l.Reverse(ctx, pay.ID, "PAYX:reverse")
		if err != nil {
			t.Fatal(err)
		}
		trs, err := l.TransfersOfPayment(ctx, "PAYX")
		if err != nil {
			t.Fatal(err)
		}
		if len(trs) != 2 || trs[0] != pay || trs[1] != rev {
			t.Errorf("transfers of PAYX = %+v, want [%+v %+v]", trs, pay, rev)
		}
		if trs, _ := l.TransfersOfPayment(ctx, ""); len(trs) != 0 {
			t.Errorf("transfers of no payment = %+v, want none", trs)
		}
	})
}

// fakeClock is a clock the test sets.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time  { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *fakeClock) Set(t time.Time) { c.mu.Lock(); defer c.mu.Unlock(); c.t = t }

func TestJournalTimeNeverRunsBackwards(t *testing.T) {
	pgtest.Both(t, func(t *testing.T) {
		db := openDB(t, store.Options{})
		clock := &fakeClock{t: time.Date(2026, 3, 1, 12, 0, 0, 123456789, time.UTC)}
		l := ledger.New(db, clock.Now)
		alice := mustWallet(t, l, "KES")
		first := mustDeposit(t, l, alice.ID, 100)
		if want := time.Date(2026, 3, 1, 12, 0, 0, 123456000, time.UTC); !first.Time.Equal(want) {
			t.Errorf("time = %v, want %v (microseconds, UTC)", first.Time, want)
		}
		clock.Set(clock.Now().Add(-time.Hour))
		second := mustDeposit(t, l, alice.ID, 100)
		if second.Time.Before(first.Time) {
			t.Errorf("a clock set back gave %v after %v", second.Time, first.Time)
		}
		es, err := l.Entries(ctx, alice.ID, 0, 0)
		if err != nil {
			t.Fatal(err)
		}
		if es[0].TimeText != "2026-03-01T12:00:00.123456Z" {
			t.Errorf("stored time %q", es[0].TimeText)
		}
		mustVerify(t, l)
	})
}
