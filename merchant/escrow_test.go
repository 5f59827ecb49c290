package merchant_test

import (
	"context"
	"errors"
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
