package payswitch_test

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/payswitch/payswitch/internal/pgtest"

	. "github.com/payswitch/payswitch/switch"
)

// BUY <merchant code> <product code> [quantity] is a merchant payment of price ×
// quantity from the merchant's catalogue, through PAY's path; items are kept per
// payment at the price they were bought for.
func TestBuyByCode(t *testing.T) {
	pgtest.Both(t, func(t *testing.T) {
		h := newHarness(t)
		w := h.wallet(alice, 100000)
		m := h.merchant("55501", mama)
		h.catalog.add(m.ID, Product{Code: "12", Name: "Sugar 1kg", Price: 15000})

		h.sms(alice, "buy 55501 12 2")
		msg := h.last(alice)
		for _, want := range []string{"KES 300.00", "Mama Mboga (55501)", "2 x Sugar 1kg", "Never share"} {
			if !strings.Contains(msg.Text, want) {
				t.Errorf("code SMS %q lacks %q", msg.Text, want)
			}
		}
		p := h.pendingOf(alice)
		if b := h.balance(w.ID); b.Held != 30000 {
			t.Fatalf("held %+v", b)
		}
		// A later change of the catalogue changes no past purchase.
		h.catalog.add(m.ID, Product{Code: "12", Name: "Sugar 1kg", Price: 99900})
		h.sms(alice, h.code(alice))
		if r := h.last(alice); r.Purpose != "receipt" || !strings.Contains(r.Text, "for 2 x Sugar 1kg") || !strings.Contains(r.Text, "KES 700.00") {
			t.Fatalf("receipt %q", r.Text)
		}
		got := h.payment(p.ID)
		want := []Item{{Product: "12", Name: "Sugar 1kg", Quantity: 2, Price: 15000}}
		if got.State != StateCompleted || got.Amount != 30000 || !reflect.DeepEqual(got.Items, want) ||
			!reflect.DeepEqual(got.View().Items, want) {
			t.Fatalf("payment %+v", got)
		}
		if ps := h.rig.Payments(alice); !reflect.DeepEqual(ps[0].Items, want) || len(ps[len(ps)-1].Items) != 0 {
			t.Fatalf("listed %+v", ps)
		}
		if evs := h.events.of(p.ID); len(evs) != 1 || !reflect.DeepEqual(evs[0].Data.Items, want) {
			t.Fatalf("events %+v", evs)
		}
		if b := h.balance(m.ID); b.Posted != 30000 {
			t.Fatalf("merchant %+v", b)
		}
		h.assertBalanced()
	})
}

func TestBuyRefusals(t *testing.T) {
	pgtest.Both(t, func(t *testing.T) {
		cases := []struct{ name, text, want string }{
			{"no quantity means one", "BUY 55501 12", "pay KES 150.00"},
			{"unknown product", "BUY 55501 99", "Mama Mboga (55501) has no product 99 for sale"},
			{"retired product", "BUY 55501 13", "has no product 13"},
			{"unknown merchant", "BUY 55599 12", "no merchant 55599"},
			{"quantity zero", "BUY 55501 12 0", "Invalid quantity"},
			{"quantity not a number", "BUY 55501 12 two", "Invalid quantity"},
			{"quantity too large", "BUY 55501 12 10000", "Invalid quantity"},
			{"above the largest payment", "BUY 55501 12 1001", "largest payment"},
			{"no product", "BUY 55501", "BUY <till> <product> [quantity]"},
			{"a product code too long", "BUY 55501 1234567", "BUY <till> <product> [quantity]"},
		}
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				h := newHarness(t)
				w := h.wallet(alice, 100000000)
				m := h.merchant("55501", mama)
				h.catalog.add(m.ID, Product{Code: "12", Name: "Sugar 1kg", Price: 15000})
				h.catalog.add(m.ID, Product{Code: "13", Name: "Salt", Price: 5000})
				h.catalog.retire(m.ID, "13")
				before := h.count(alice)
				h.sms(alice, c.text)
				if h.count(alice) != before+1 {
					t.Fatalf("want exactly one answer")
				}
				if txt := h.last(alice).Text; !strings.Contains(txt, c.want) {
					t.Fatalf("answer %q lacks %q", txt, c.want)
				}
				if c.name != "no quantity means one" {
					if b := h.balance(w.ID); b.Held != 0 {
						t.Fatalf("a refusal held %+v", b)
					}
				}
			})
		}
	})
}

// Without a catalogue no merchant sells anything: a BUY is told so.
func TestBuyWithoutCatalogue(t *testing.T) {
	pgtest.Both(t, func(t *testing.T) {
		h := newHarness(t)
		h.rig.Opts.Products = nil
		h.restart()
		h.wallet(alice, 100000)
		h.merchant("55501", mama)
		h.sms(alice, "BUY 55501 12")
		if txt := h.last(alice).Text; !strings.Contains(txt, "has no product 12") {
			t.Fatalf("answer %q", txt)
		}
	})
}

func TestRequestWithItems(t *testing.T) {
	pgtest.Both(t, func(t *testing.T) {
		ctx := context.Background()
		h := newHarness(t)
		w := h.wallet(alice, 100000)
		m := h.merchant("55501", mama)
		h.catalog.add(m.ID, Product{Code: "12", Name: "Sugar 1kg", Price: 15000})
		h.catalog.add(m.ID, Product{Code: "7", Name: "Salt", Price: 2500})
		p, err := h.engine.RequestPayment(ctx, PaymentRequest{Merchant: m.ID, MSISDN: alice, Reference: "ORD-1",
			Description: "Order 1", Items: []ItemRequest{{Product: "12", Quantity: 2}, {Product: "7", Quantity: 1}}})
		if err != nil {
			t.Fatal(err)
		}
		want := []Item{{Product: "12", Name: "Sugar 1kg", Quantity: 2, Price: 15000}, {Product: "7", Name: "Salt", Quantity: 1, Price: 2500}}
		if p.Amount != 32500 || !reflect.DeepEqual(p.Items, want) {
			t.Fatalf("request %+v", p)
		}
		if txt := h.last(alice).Text; !strings.Contains(txt, "KES 325.00 for Order 1: 2 x Sugar 1kg, 1 x Salt") {
			t.Fatalf("request SMS %q", txt)
		}
		// The same reference with the same items is the same request; other items are not.
		if again, err := h.engine.RequestPayment(ctx, PaymentRequest{Merchant: m.ID, MSISDN: alice, Reference: "ORD-1",
			Items: []ItemRequest{{Product: "12", Quantity: 2}, {Product: "7", Quantity: 1}}}); err != nil || again.ID != p.ID {
			t.Fatalf("again: %+v %v", again, err)
		}
		if _, err := h.engine.RequestPayment(ctx, PaymentRequest{Merchant: m.ID, MSISDN: alice, Reference: "ORD-1",
			Items: []ItemRequest{{Product: "12", Quantity: 3}}}); !errors.Is(err, ErrConflict) {
			t.Fatalf("other items under the reference: %v", err)
		}
		h.sms(alice, h.codeIn(alice, "request"))
		if r := h.last(alice); !strings.Contains(r.Text, "for 2 x Sugar 1kg, 1 x Salt") {
			t.Fatalf("receipt %q", r.Text)
		}
		if b := h.balance(w.ID); b.Posted != 100000-32500 {
			t.Fatalf("payer %+v", b)
		}
		if evs := h.events.of(p.ID); len(evs) != 1 || !reflect.DeepEqual(evs[0].Data.Items, want) || evs[0].Data.Description != "Order 1" {
			t.Fatalf("events %+v", evs)
		}
	})
}
