package merchant_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/payswitch/payswitch/internal/pgtest"

	"github.com/payswitch/payswitch/merchant"
	payswitch "github.com/payswitch/payswitch/switch"
)

func testCatalog(t *testing.T) {
	ctx := context.Background()
	db, opts, clock := openDB(t)
	cat := merchant.NewCatalog(db, opts)

	e, err := cat.Add(ctx, "AC-M1", payswitch.Product{Code: "12", Name: " Sugar 1kg ", Price: 15000})
	if err != nil || e.Name != "Sugar 1kg" || e.Code != "12" || e.Price != 15000 || !e.CreatedAt.Equal(clock.Now()) {
		t.Fatalf("add: %+v %v", e, err)
	}
	if _, err := cat.Add(ctx, "AC-M1", payswitch.Product{Code: "9", Name: "<b>Salt</b> & co", Price: 5000}); err != nil {
		t.Fatal(err)
	}
	if _, err := cat.Add(ctx, "AC-M2", payswitch.Product{Code: "12", Name: "Their sugar", Price: 100}); err != nil {
		t.Fatalf("codes are per merchant: %v", err)
	}
	if _, err := cat.Add(ctx, "AC-M1", payswitch.Product{Code: "12", Name: "Again", Price: 1}); !errors.Is(err, merchant.ErrTaken) {
		t.Fatalf("a taken code: %v, want ErrTaken", err)
	}

	p, err := cat.Product(ctx, "AC-M1", "12")
	if err != nil || p != (payswitch.Product{Code: "12", Name: "Sugar 1kg", Price: 15000}) {
		t.Fatalf("product: %+v %v", p, err)
	}
	if _, err := cat.Product(ctx, "AC-M1", "13"); !errors.Is(err, payswitch.ErrUnknownProduct) {
		t.Fatalf("unknown product: %v", err)
	}
	if p, err := cat.Product(ctx, "AC-M2", "9"); !errors.Is(err, payswitch.ErrUnknownProduct) {
		t.Fatalf("another merchant's product: %+v %v", p, err)
	}

	list, err := cat.List(ctx, "AC-M1", false)
	if err != nil || len(list) != 2 || list[0].Code != "9" || list[1].Code != "12" || list[0].Name != "<b>Salt</b> & co" {
		t.Fatalf("list (codes in numeric order, names as given): %+v %v", list, err)
	}

	clock.Advance(time.Hour)
	if err := cat.Retire(ctx, "AC-M1", "12"); err != nil {
		t.Fatal(err)
	}
	if _, err := cat.Product(ctx, "AC-M1", "12"); !errors.Is(err, payswitch.ErrUnknownProduct) {
		t.Fatalf("a retired product can be bought: %v", err)
	}
	if _, err := cat.Add(ctx, "AC-M1", payswitch.Product{Code: "12", Name: "New sugar", Price: 1}); !errors.Is(err, merchant.ErrTaken) ||
		!strings.Contains(err.Error(), "retired") {
		t.Fatalf("a retired code taken again: %v, want ErrTaken naming the retirement", err)
	}
	clock.Advance(time.Hour)
	if err := cat.Retire(ctx, "AC-M1", "12"); err != nil {
		t.Fatalf("retiring again: %v, want nothing changed", err)
	}
	if err := cat.Retire(ctx, "AC-M1", "77"); !errors.Is(err, merchant.ErrNotFound) {
		t.Fatalf("retiring an unknown code: %v", err)
	}
	if err := cat.Retire(ctx, "AC-M2", "9"); !errors.Is(err, merchant.ErrNotFound) {
		t.Fatalf("retiring another merchant's product: %v", err)
	}
	list, _ = cat.List(ctx, "AC-M1", false)
	if len(list) != 1 || list[0].Code != "9" {
		t.Fatalf("active list after retiring: %+v", list)
	}
	list, _ = cat.List(ctx, "AC-M1", true)
	if len(list) != 2 || !list[1].Retired() || !list[1].RetiredAt.Equal(clock.Now().Add(-time.Hour)) || list[0].Retired() {
		t.Fatalf("list with retired ones: %+v", list)
	}
}

func testCatalogRefusesBadProducts(t *testing.T) {
	ctx := context.Background()
	db, opts, _ := openDB(t)
	opts.MaxPrice = 1_000_000
	cat := merchant.NewCatalog(db, opts)
	for _, tc := range []struct {
		name string
		p    payswitch.Product
	}{
		{"no code", payswitch.Product{Name: "x", Price: 1}},
		{"seven digits", payswitch.Product{Code: "1234567", Name: "x", Price: 1}},
		{"a letter", payswitch.Product{Code: "12a", Name: "x", Price: 1}},
		{"a sign", payswitch.Product{Code: "-1", Name: "x", Price: 1}},
		{"arabic-indic digits", payswitch.Product{Code: "١٢", Name: "x", Price: 1}},
		{"no name", payswitch.Product{Code: "1", Price: 1}},
		{"a long name", payswitch.Product{Code: "1", Name: strings.Repeat("n", 65), Price: 1}},
		{"a control character", payswitch.Product{Code: "1", Name: "a\tb", Price: 1}},
		{"zero price", payswitch.Product{Code: "1", Name: "x"}},
		{"negative price", payswitch.Product{Code: "1", Name: "x", Price: -5}},
		{"above the max", payswitch.Product{Code: "1", Name: "x", Price: 1_000_001}},
	} {
		if _, err := cat.Add(ctx, "AC-M1", tc.p); !errors.Is(err, merchant.ErrInvalid) {
			t.Errorf("%s: %v, want ErrInvalid", tc.name, err)
		}
	}
	if _, err := cat.Add(ctx, "AC-M1", payswitch.Product{Code: "000000", Name: "x", Price: 1_000_000}); err != nil {
		t.Fatalf("six digits at the max price: %v", err)
	}
	if list, _ := cat.List(ctx, "AC-M1", true); len(list) != 1 {
		t.Fatalf("a refused product was stored: %+v", list)
	}
}

func testCatalogCapCountsRetiredProducts(t *testing.T) {
	ctx := context.Background()
	db, opts, _ := openDB(t)
	opts.MaxProducts = 5
	cat := merchant.NewCatalog(db, opts)
	for i := range 5 {
		if _, err := cat.Add(ctx, "AC-M1", payswitch.Product{Code: fmt.Sprint(i), Name: "p", Price: 1}); err != nil {
			t.Fatal(err)
		}
	}
	if err := cat.Retire(ctx, "AC-M1", "0"); err != nil {
		t.Fatal(err)
	}
	if _, err := cat.Add(ctx, "AC-M1", payswitch.Product{Code: "5", Name: "p", Price: 1}); !errors.Is(err, merchant.ErrLimit) {
		t.Fatalf("sixth product: %v, want ErrLimit", err)
	}
	if _, err := cat.Add(ctx, "AC-M2", payswitch.Product{Code: "5", Name: "p", Price: 1}); err != nil {
		t.Fatalf("the cap is per merchant: %v", err)
	}
}

func TestCatalog(t *testing.T) { pgtest.Both(t, testCatalog) }

func TestCatalogRefusesBadProducts(t *testing.T) { pgtest.Both(t, testCatalogRefusesBadProducts) }

func TestCatalogCapCountsRetiredProducts(t *testing.T) {
	pgtest.Both(t, testCatalogCapCountsRetiredProducts)
}
