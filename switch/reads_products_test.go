package payswitch_test

import (
	"context"
	"math"
	"strings"
	"testing"

	. "github.com/payswitch/payswitch/switch"
)

// Quote prices a purchase before it is asked for, as the USSD menu shows it, and refuses
// what BUY would refuse before looking at the payer, in BUY's words. It changes nothing.
func TestQuote(t *testing.T) {
	ctx := context.Background()
	h := newHarness(t)
	m := h.merchant("55501", mama)
	h.catalog.add(m.ID, Product{Code: "12", Name: "Sugar 1kg", Price: 15000})
	h.catalog.add(m.ID, Product{Code: "13", Name: "Salt", Price: 5000})
	h.catalog.retire(m.ID, "13")
	h.catalog.add(m.ID, Product{Code: "50", Name: "Crumb", Price: 1})
	h.catalog.add(m.ID, Product{Code: "66", Name: "Everything", Price: math.MaxInt64 / 2})
	before := h.count(alice)

	q, err := h.engine.Quote(ctx, "55501", "12", 2)
	if err != nil {
		t.Fatal(err)
	}
	want := Quote{Item: Item{Product: "12", Name: "Sugar 1kg", Quantity: 2, Price: 15000}, Total: 30000,
		Payee: "Mama Mboga (55501)"}
	if q != want || !q.OK() {
		t.Fatalf("quote %+v, want %+v", q, want)
	}

	cases := []struct {
		name, merchant, product string
		quantity                int64
		problem                 Problem
		text                    string
	}{
		{"unknown merchant", "55599", "12", 1, ProblemUnknownMerchant, "There is no merchant 55599."},
		{"not a merchant code", "5x", "12", 1, ProblemUnknownMerchant, "There is no merchant 5x."},
		{"unknown product", "55501", "99", 1, ProblemUnknownProduct, "Mama Mboga (55501) has no product 99 for sale."},
		{"retired product", "55501", "13", 1, ProblemUnknownProduct, "has no product 13"},
		{"not a product code", "55501", "1234567", 1, ProblemUnknownProduct, "has no product 1234567"},
		{"no quantity", "55501", "12", 0, ProblemBadQuantity, "Invalid quantity"},
		{"too many", "55501", "12", MaxQuantity + 1, ProblemBadQuantity, "Invalid quantity"},
		{"below the smallest payment", "55501", "50", 2, ProblemBelowMin, "The smallest payment is KES 1.00."},
		{"above the largest payment", "55501", "12", 1001, ProblemAboveMax, "The largest payment is KES 150,000.00."},
		{"price × quantity past int64", "55501", "66", 3, ProblemAboveMax, "The largest payment is"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			q, err := h.engine.Quote(ctx, c.merchant, c.product, c.quantity)
			if err != nil {
				t.Fatal(err)
			}
			if q.OK() || q.Problem != c.problem || !strings.Contains(q.Text, c.text) {
				t.Fatalf("quote %+v, want %s saying %q", q, c.problem, c.text)
			}
			if c.problem == ProblemAboveMax && q.Total <= 15000000 {
				t.Fatalf("total %d of a purchase above the largest payment", q.Total)
			}
		})
	}
	// The largest quantity of the dearest product allowed is priced without overflow.
	h.catalog.add(m.ID, Product{Code: "70", Name: "Bead", Price: 100})
	if q, err := h.engine.Quote(ctx, "55501", "70", MaxQuantity); err != nil || !q.OK() || q.Total != 100*MaxQuantity {
		t.Fatalf("quote of %d beads: %+v %v", MaxQuantity, q, err)
	}
	if h.count(alice) != before {
		t.Fatal("a quote queued a message")
	}
}

// Without a catalogue no merchant sells anything.
func TestQuoteWithoutCatalogue(t *testing.T) {
	h := newHarness(t)
	h.rig.Opts.Products = nil
	h.restart()
	h.merchant("55501", mama)
	q, err := h.engine.Quote(context.Background(), "55501", "12", 1)
	if err != nil || q.Problem != ProblemUnknownProduct {
		t.Fatalf("quote %+v %v", q, err)
	}
}

func TestParseQuantity(t *testing.T) {
	for in, want := range map[string]int64{"1": 1, "2": 2, "0002": 2, "9999": 9999} {
		if got, ok := ParseQuantity(in); !ok || got != want {
			t.Errorf("ParseQuantity(%q) = %d, %v; want %d", in, got, ok, want)
		}
	}
	for _, in := range []string{"", "0", "00002", "10000", "-1", "+2", "2.5", "two", " 2", "١"} {
		if got, ok := ParseQuantity(in); ok {
			t.Errorf("ParseQuantity(%q) = %d, want refused", in, got)
		}
	}
}
