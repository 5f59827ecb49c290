package merchant_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/payswitch/payswitch/internal/pgtest"

	"github.com/payswitch/payswitch/ledger"
	"github.com/payswitch/payswitch/merchant"
	payswitch "github.com/payswitch/payswitch/switch"
)

// racers is how many goroutines race, spread over the nodes.
const racers = 8

// race runs fn(i, node) on racers goroutines at once, node alternating between nodes.
func race(n int, fn func(i, node int)) {
	var start, wg sync.WaitGroup
	start.Add(1)
	for i := range racers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			start.Wait()
			fn(i, i%n)
		}()
	}
	start.Done()
	wg.Wait()
}

// Two nodes give one code to stores and merchant accounts at once: one wins, every
// other is told the till is taken, and the code names one payee.
func testNodesRaceForOneTill(t *testing.T) {
	ctx := context.Background()
	dbs := openNodes(t, 2)
	var stores []*merchant.Stores
	var ledgers []*ledger.Ledger
	for _, db := range dbs {
		stores = append(stores, merchant.NewStores(db, merchant.Options{}, normalizeKE))
		ledgers = append(ledgers, ledger.New(db, nil))
	}
	for round := range 10 {
		till := fmt.Sprintf("7%04d", round)
		var mu sync.Mutex
		won, refused := 0, 0
		race(len(dbs), func(i, node int) {
			var err error
			if i%2 == 0 {
				_, err = stores[node].Create(ctx, fmt.Sprintf("M%d", i), "Shop", till, "")
				if err != nil && !errors.Is(err, merchant.ErrTillTaken) {
					t.Errorf("store %d: %v, want ErrTillTaken", i, err)
				}
			} else {
				_, err = ledgers[node].CreateAccount(ctx, ledger.NewAccount{ID: fmt.Sprintf("AC-%d-%d", round, i),
					Type: ledger.Merchant, Currency: "KES", Name: "Kiosk", Code: till})
				if err != nil && !strings.Contains(err.Error(), "till_taken") && !strings.Contains(err.Error(), "accounts.code") &&
					!errors.Is(err, ledger.ErrDuplicate) {
					t.Errorf("account %d: %v, want the code refused", i, err)
				}
			}
			mu.Lock()
			defer mu.Unlock()
			if err == nil {
				won++
			} else {
				refused++
			}
		})
		var n int
		if err := dbs[0].Reader().QueryRowContext(ctx, `SELECT (SELECT count(*) FROM stores WHERE till = ?1) +
			(SELECT count(*) FROM accounts WHERE code = ?1)`, till).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if won != 1 || refused != racers-1 || n != 1 {
			t.Fatalf("round %d: %d won, %d refused, %d rows hold %s; want 1, %d, 1", round, won, refused, n, till, racers-1)
		}
	}
}

// Two nodes add keys and products for one merchant at once: the caps and a product
// code's uniqueness hold, and the losers get ErrLimit or ErrTaken.
func testNodesRaceForTheCaps(t *testing.T) {
	ctx := context.Background()
	dbs := openNodes(t, 2)
	opts := merchant.Options{MaxKeys: 3, MaxStores: 2}
	var keys []*merchant.Keys
	var cats []*merchant.Catalog
	var stores []*merchant.Stores
	for _, db := range dbs {
		keys = append(keys, merchant.NewKeys(db, opts))
		cats = append(cats, merchant.NewCatalog(db, opts))
		stores = append(stores, merchant.NewStores(db, opts, normalizeKE))
	}
	for round := range 5 {
		m := fmt.Sprintf("M%d", round)
		var mu sync.Mutex
		count := map[string]int{}
		race(len(dbs), func(i, node int) {
			outcome := func(kind string, err error, want error) {
				mu.Lock()
				defer mu.Unlock()
				switch {
				case err == nil:
					count[kind]++
				case !errors.Is(err, want):
					t.Errorf("%s %d: %v, want %v", kind, i, err, want)
				}
			}
			_, _, err := keys[node].Create(ctx, m, "k")
			outcome("keys", err, merchant.ErrLimit)
			_, err = cats[node].Add(ctx, m, payswitch.Product{Code: "1", Name: "p", Price: 1})
			outcome("products", err, merchant.ErrTaken)
			_, err = stores[node].Create(ctx, m, "s", fmt.Sprintf("8%02d%02d", round, i), "")
			outcome("stores", err, merchant.ErrLimit)
		})
		if count["keys"] != 3 || count["products"] != 1 || count["stores"] != 2 {
			t.Fatalf("round %d: made %v; want 3 keys, 1 product, 2 stores", round, count)
		}
		if l, _ := keys[0].List(ctx, m); len(l) != 3 {
			t.Fatalf("round %d: %d keys stored, want 3", round, len(l))
		}
	}
}

func TestNodesRaceForOneTill(t *testing.T) { pgtest.Both(t, testNodesRaceForOneTill) }
func TestNodesRaceForTheCaps(t *testing.T) { pgtest.Both(t, testNodesRaceForTheCaps) }
