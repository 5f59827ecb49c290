package merchant_test

import (
	"context"
	"errors"
	"sync"
	"testing"

	"github.com/payswitch/payswitch/internal/pgtest"

	"github.com/payswitch/payswitch/merchant"
)

func testGuarantees(t *testing.T) {
	ctx := context.Background()
	db, opts, _ := openDB(t)
	g := merchant.NewGuarantees(db, opts)
	check := func(id string, want bool) {
		t.Helper()
		if got, err := g.Guaranteed(ctx, id); err != nil || got != want {
			t.Fatalf("Guaranteed(%s) = %v, %v; want %v", id, got, err, want)
		}
	}
	check("AC-M1", false)
	for range 2 { // setting what is set changes nothing
		if err := g.Set(ctx, "AC-M1", true); err != nil {
			t.Fatal(err)
		}
		check("AC-M1", true)
	}
	check("AC-M2", false)
	if err := g.Set(ctx, "AC-M1", false); err != nil {
		t.Fatal(err)
	}
	check("AC-M1", false)
	if err := g.Set(ctx, "", true); !errors.Is(err, merchant.ErrInvalid) {
		t.Fatalf("no merchant: %v, want ErrInvalid", err)
	}
}

func TestGuarantees(t *testing.T) { pgtest.Both(t, testGuarantees) }

// On PostgreSQL other nodes change the settings, so each Guaranteed reads: what another
// Guarantees sets is seen at once. (On SQLite one Guarantees makes every change and
// keeps what it read: testGuarantees reads before and after each of its changes.)
func TestGuaranteesSeeOtherNodes(t *testing.T) {
	pgtest.Both(t, func(t *testing.T) {
		if !pgtest.OnPostgres(t) {
			t.Skip("one process, one Guarantees on SQLite")
		}
		ctx := context.Background()
		db, opts, _ := openDB(t)
		reader, other := merchant.NewGuarantees(db, opts), merchant.NewGuarantees(db, opts)
		for _, on := range []bool{false, true, false} {
			if err := other.Set(ctx, "AC-M1", on); err != nil {
				t.Fatal(err)
			}
			if got, err := reader.Guaranteed(ctx, "AC-M1"); err != nil || got != on {
				t.Fatalf("after the other node set %v: %v, %v", on, got, err)
			}
		}
	})
}

// A Guaranteed that read while a Set was being written keeps nothing: once Set returns,
// every Guaranteed answers what it set.
func TestGuaranteedRacingSetKeepsNothing(t *testing.T) {
	pgtest.Both(t, func(t *testing.T) {
		ctx := context.Background()
		db, opts, _ := openDB(t)
		g := merchant.NewGuarantees(db, opts)
		stop := make(chan struct{})
		var wg sync.WaitGroup
		for range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					select {
					case <-stop:
						return
					default:
					}
					if _, err := g.Guaranteed(ctx, "AC-M1"); err != nil {
						t.Error(err)
						return
					}
				}
			}()
		}
		defer func() { close(stop); wg.Wait() }()
		for i := range 100 {
			on := i%2 == 0
			if err := g.Set(ctx, "AC-M1", on); err != nil {
				t.Fatal(err)
			}
			if got, err := g.Guaranteed(ctx, "AC-M1"); err != nil || got != on {
				t.Fatalf("round %d: set %v, read %v (%v)", i, on, got, err)
			}
		}
	})
}
