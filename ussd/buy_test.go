package ussd

import (
	"math"
	"reflect"
	"strings"
	"testing"

	payswitch "github.com/payswitch/payswitch/switch"
)

const (
	merchantAmountPrompt = "Enter the amount in KES, or 0 to buy a product"
	productPrompt        = "Enter the product code"
	quantityPrompt       = "Enter the quantity (1-9999)"
)

// shop opens Mama Mboga's till with sugar (12), and salt (13) that it no longer sells.
func (h *harness) shop() string {
	h.t.Helper()
	m := h.merchant(till, mama)
	h.catalog.add(m.ID, payswitch.Product{Code: "12", Name: "Sugar 1kg", Price: 15000})
	h.catalog.add(m.ID, payswitch.Product{Code: "13", Name: "Salt", Price: 5000})
	h.catalog.retire(m.ID, "13")
	return m.ID
}

// Pay merchant, 0 at the amount: the product by its code, how many, what it comes to,
// and Yes starts the payment as BUY by SMS does; the code SMS and the receipt name the
// item, the quantity and the total.
func TestBuyProductStepByStep(t *testing.T) {
	h := newHarness(t, nil)
	a := h.Wallet(alice, 100000)
	merchant := h.shop()

	g, _ := h.dial("s1", alice)
	steps := []struct{ input, want string }{
		{"2", "CON Enter the merchant code (till number)"},
		{"55501", "CON " + merchantAmountPrompt},
		{"0", "CON " + productPrompt},
		{"12", "CON Sugar 1kg: KES 150.00 each.\n" + quantityPrompt},
		{"2", "CON Buy 2 x Sugar 1kg for KES 300.00 from Mama Mboga (55501)?\n1. Yes\n2. No"},
	}
	for _, s := range steps {
		if got := g.send(s.input); got != s.want {
			t.Fatalf("after %q: %q, want %q", s.input, got, s.want)
		}
	}
	if len(h.Payments(alice)) != 1 { // the deposit
		t.Fatal("a payment before Yes")
	}
	got := g.send("1")
	wantPrefix(t, got, "CON ")
	wantContains(t, got, "pay KES 300.00 to Mama Mboga (55501)", "Enter the code", "9. New code", "0. Cancel")
	if bal := h.Balance(a.ID); bal.Held != 30000 {
		t.Fatalf("held %d, want 30000", bal.Held)
	}
	sms := h.Messages(alice, 1)[0].Text
	for _, want := range []string{"KES 300.00", "Mama Mboga (55501)", "2 x Sugar 1kg"} {
		if !strings.Contains(sms, want) {
			t.Errorf("code SMS %q lacks %q", sms, want)
		}
	}

	got = g.send(h.code(alice))
	wantPrefix(t, got, "END ")
	wantContains(t, got, "KES 300.00 paid to Mama Mboga (55501) for 2 x Sugar 1kg")
	p := h.paymentOfType(alice, payswitch.MerchantPayment)
	want := []payswitch.Item{{Product: "12", Name: "Sugar 1kg", Quantity: 2, Price: 15000}}
	if p.State != payswitch.StateCompleted || p.Channel != payswitch.ChannelUSSD || p.Amount != 30000 ||
		!reflect.DeepEqual(p.Items, want) {
		t.Fatalf("payment %+v", p)
	}
	if bal := h.Balance(merchant); bal.Posted != 30000 {
		t.Fatalf("merchant has %d", bal.Posted)
	}
}

// A gateway may send everything keyed so far at once.
func TestBuyProductInOneGo(t *testing.T) {
	h := newHarness(t, nil)
	h.Wallet(alice, 100000)
	h.shop()
	g, _ := h.dial("s1", alice)
	got := g.send("2*55501*0*12*3*1")
	wantContains(t, got, "CON ", "pay KES 450.00 to Mama Mboga (55501)", "Enter the code")
	wantContains(t, g.send(h.code(alice)), "END ", "for 3 x Sugar 1kg")
}

// The amount path of contract section 5 is unchanged: any amount but 0 pays it.
func TestPayMerchantAmountStillWorks(t *testing.T) {
	h := newHarness(t, nil)
	h.Wallet(alice, 100000)
	h.shop()
	g, _ := h.dial("s1", alice)
	wantPrefix(t, g.send("2*55501"), "CON "+merchantAmountPrompt)
	if got := g.send("0.00"); got != "CON Invalid amount. Use e.g. 150 or 150.50.\n"+merchantAmountPrompt {
		t.Fatalf("0.00 answered %q", got)
	}
	got := g.send("150")
	wantContains(t, got, "pay KES 150.00 to Mama Mboga (55501)")
	if p := h.paymentOfType(alice, payswitch.MerchantPayment); p.Amount != 15000 || len(p.Items) != 0 {
		t.Fatalf("payment %+v", p)
	}
}

// What the engine refuses before the payer's state is asked again, with what was
// wrong; nothing is held and no message is queued.
func TestBuyProductRefusals(t *testing.T) {
	h := newHarness(t, nil)
	a := h.Wallet(alice, 100_000_000)
	id := h.shop()
	h.catalog.add(id, payswitch.Product{Code: "66", Name: "Everything", Price: math.MaxInt64 / 2})
	h.catalog.add(id, payswitch.Product{Code: "70", Name: "Car", Price: 10_000_000})
	messages := len(h.Messages(alice, 1000))

	g, _ := h.dial("s1", alice)
	g.send("2*55501*0")
	steps := []struct{ input, want string }{
		{"sugar", "CON Product codes have 1 to 6 digits.\n" + productPrompt},
		{"1234567", "CON Product codes have 1 to 6 digits.\n" + productPrompt},
		{"99", "CON Mama Mboga (55501) has no product 99 for sale. Nothing was paid.\n" + productPrompt},
		{"13", "CON Mama Mboga (55501) has no product 13 for sale. Nothing was paid.\n" + productPrompt},
		{"66", "CON The largest payment is KES 150,000.00. Nothing was paid.\n" + productPrompt},
		{"70", "CON Car: KES 100,000.00 each.\n" + quantityPrompt},
		{"0", "CON Quantities are whole numbers from 1 to 9999.\n" + quantityPrompt},
		{"10000", "CON Quantities are whole numbers from 1 to 9999.\n" + quantityPrompt},
		{"two", "CON Quantities are whole numbers from 1 to 9999.\n" + quantityPrompt},
		{"2", "CON The largest payment is KES 150,000.00. Nothing was paid.\n" + quantityPrompt},
		{"1", "CON Buy 1 x Car for KES 100,000.00 from Mama Mboga (55501)?\n1. Yes\n2. No"},
		{"3", "CON Invalid choice.\nBuy 1 x Car for KES 100,000.00 from Mama Mboga (55501)?\n1. Yes\n2. No"},
		{"2", "END You did not buy it. Nothing was paid."},
	}
	for _, s := range steps {
		if got := g.send(s.input); got != s.want {
			t.Fatalf("after %q: %q, want %q", s.input, got, s.want)
		}
	}
	if bal := h.Balance(a.ID); bal.Held != 0 {
		t.Fatalf("held %d", bal.Held)
	}
	if n := len(h.Messages(alice, 1000)); n != messages {
		t.Fatalf("%d messages queued", n-messages)
	}

	// An unknown merchant is found out at the product: its code is asked again.
	g, _ = h.dial("s2", alice)
	got := g.send("2*55599*0*12")
	wantPrefix(t, got, "CON There is no merchant 55599.")
	wantContains(t, got, "\nEnter the merchant code")
}

// What only the payment can tell (the payer's funds, a product retired after the menu
// priced it) sends the payer back to the quantity or the product.
func TestBuyProductRefusedOnYes(t *testing.T) {
	h := newHarness(t, nil)
	a := h.Wallet(alice, 20000)
	id := h.shop()

	g, _ := h.dial("s1", alice)
	wantPrefix(t, g.send("2*55501*0*12*2"), "CON Buy 2 x Sugar 1kg")
	if got := g.send("1"); got != "CON Insufficient funds: you have KES 200.00 available. Nothing was paid.\n"+quantityPrompt {
		t.Fatalf("yes without the funds: %q", got)
	}
	wantPrefix(t, g.send("1"), "CON Buy 1 x Sugar 1kg for KES 150.00")
	h.catalog.retire(id, "12")
	if got := g.send("1"); got != "CON Mama Mboga (55501) has no product 12 for sale. Nothing was paid.\n"+productPrompt {
		t.Fatalf("yes to a retired product: %q", got)
	}
	if bal := h.Balance(a.ID); bal.Held != 0 {
		t.Fatalf("held %d", bal.Held)
	}
}

// A long product and merchant name page the question; the options come with its end.
func TestBuyQuestionPages(t *testing.T) {
	h := newHarness(t, nil)
	h.Wallet(alice, 200_000_00)
	// Names of 60 and 63 characters.
	m := h.Merchant(till, "Mama Mboga General Provisions, Household and Hardware Stores", mama)
	name := strings.Repeat("Maize flour, sifted ", 3) + "2kg"
	h.catalog.add(m.ID, payswitch.Product{Code: "12", Name: name, Price: 1500})

	g, _ := h.dial("s1", alice)
	page := g.send("2*55501*0*12*9999")
	wantPrefix(t, page, "CON Buy 9999 x "+name)
	wantContains(t, page, "for KES 149,985.00 from Mama Mboga General", "(55501)?\n98. More")
	if strings.Contains(page, "1. Yes") {
		t.Fatalf("first page %q has the options", page)
	}
	if last := g.send(MoreInput); last != "CON 1. Yes\n2. No" {
		t.Fatalf("last page %q", last)
	}
	wantContains(t, g.send("1"), "pay KES 149,985.00")
}
