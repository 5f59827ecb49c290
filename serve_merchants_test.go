package main

import (
	"net/http"
	"strings"
	"testing"
	"time"

	payswitch "github.com/payswitch/payswitch/switch"
)

const hookSecret = "shop-webhook-secret-0123456789"

// TestMerchantWalkThrough is the README's merchant walk-through through a running
// switch: an operator opens a merchant and a wallet and makes the merchant a key; the
// key lists a product, sets the webhook and sends a request to pay; the phone gets the
// request by SMS over SMPP and pays it with its code; the money moves, both phones are
// told, and the merchant's system gets a signed payment.completed, again with the same
// event ID after it failed the first delivery.
func TestMerchantWalkThrough(t *testing.T) {
	s := startSwitch(t, "5m")
	rcv := startReceiver(t, s, hookSecret)
	w := s.open(map[string]string{"type": "wallet", "msisdn": alice, "name": "Alice"})
	a, till := s.phone(alice), s.phone(mama)
	s.deposit(w.ID, 100000, "CASHIN-1")
	a.expect("deposited", "KES 1,000.00")
	m := s.openShop("55501", "Mama Mboga", mama)

	// The key was shown once: the list names it, never with the key itself.
	var keys struct {
		Keys []map[string]any
	}
	if c := s.call("GET", "/api/v1/merchants/"+m.id+"/keys", opsToken, nil, &keys); c != http.StatusOK ||
		len(keys.Keys) != 1 || keys.Keys[0]["id"] != m.keyID || keys.Keys[0]["key"] != nil {
		t.Fatalf("keys: %d %+v", c, keys)
	}
	m.addProduct("12", "Sugar 1kg", 15000)
	var products struct {
		Products []struct {
			Code, Name string
			Price      int64
		}
	}
	if c := m.do("GET", "/api/v1/merchants/"+m.id+"/products", nil, &products); c != http.StatusOK ||
		len(products.Products) != 1 || products.Products[0].Name != "Sugar 1kg" {
		t.Fatalf("products: %d %+v", c, products)
	}
	m.setWebhook(rcv)
	rcv.set(1, false) // the merchant's system is down for the first delivery

	body := map[string]any{"msisdn": "0700000001", "items": []map[string]any{{"product": "12", "quantity": 2}},
		"reference": "INV-7", "description": "Order 7", "ttl": "10m"}
	p := m.request(body)
	if p.State != "requested" || p.Type != "merchant_payment" || p.Channel != "api" || p.Amount != 30000 ||
		len(p.Items) != 1 || p.Items[0] != (payswitch.Item{Product: "12", Name: "Sugar 1kg", Quantity: 2, Price: 15000}) {
		t.Fatalf("request: %+v", p)
	}
	text := a.expect(p.ID, "Mama Mboga", "Order 7: 2 x Sugar 1kg", "KES 300.00", "10 min", "NO to refuse")
	code := codeIn(t, text)
	if b := s.account(w.ID).Balance; b.Held != 0 || b.Available != 100000 {
		t.Fatalf("a request holds nothing: %+v", b)
	}
	// The same reference again is the same request: no second SMS, no second payment.
	if again := m.request(body); again.ID != p.ID {
		t.Fatalf("the same reference made %s, then %s", p.ID, again.ID)
	}

	a.send(code)
	a.expect(p.ID, "confirmed", "KES 300.00", "2 x Sugar 1kg", "KES 700.00")
	till.expect(p.ID, "received", "KES 300.00", "2547****001")
	if b := s.account(w.ID).Balance; b.Posted != 70000 || b.Held != 0 {
		t.Fatalf("payer after paying: %+v", b)
	}
	if b := s.account(m.id).Balance; b.Posted != 30000 {
		t.Fatalf("merchant after the payment: %+v", b)
	}
	var seen payswitch.PaymentView
	if c := m.do("GET", "/api/v1/payment-requests/"+p.ID, nil, &seen); c != http.StatusOK || seen.State != "completed" {
		t.Fatalf("the request as its merchant reads it: %d %+v", c, seen)
	}

	// The first delivery was answered 503: the switch tries it again, with the same event,
	// once its backoff has passed on the switch's clock.
	attempts, _, _ := rcv.state()
	for deadline := time.Now().Add(15 * time.Second); len(attempts) == 0; attempts, _, _ = rcv.state() {
		if time.Now().After(deadline) {
			t.Fatal("the webhook was never delivered")
		}
		time.Sleep(20 * time.Millisecond)
	}
	first := attempts[0]
	failed := m.waitDelivery(first.ID, func(d delivery) bool { return d.Attempt == 1 && d.Status == 503 })
	if failed.Type != "payment.completed" || failed.NextAt == "" {
		t.Fatalf("the failed attempt: %+v", failed)
	}
	s.advance(time.Minute)
	s.kickHooks()
	ev := rcv.expect("payment.completed", p.ID)
	if ev.ID != first.ID || ev.CreatedAt == "" || ev.Data.State != "completed" || ev.Data.Amount != 30000 || ev.Data.Reference != "INV-7" ||
		len(ev.Data.Items) != 1 || ev.Data.Items[0].Quantity != 2 || ev.Data.Items[0].Name != "Sugar 1kg" {
		t.Fatalf("the delivered event %+v, want %s with the completed payment", ev, first.ID)
	}
	m.waitDelivery(ev.ID, func(d delivery) bool { return d.State == "delivered" && d.Status == 200 && d.Attempt == 2 })
	if _, _, forged := rcv.state(); forged != 0 {
		t.Fatalf("%d deliveries failed their signature check", forged)
	}

	// The same reference after completion still returns the payment, completed.
	if again := m.request(body); again.ID != p.ID || again.State != "completed" {
		t.Fatalf("the reference after payment: %+v", again)
	}
	s.books() // balanced
}

// TestBuyBySMS buys from a merchant's catalogue by SMS: price × quantity, and the
// refusals (a product not sold, a retired one, a quantity of 0) answered by SMS with
// nothing moved.
func TestBuyBySMS(t *testing.T) {
	s := startSwitch(t, "5m")
	rcv := startReceiver(t, s, hookSecret)
	w := s.open(map[string]string{"type": "wallet", "msisdn": alice, "name": "Alice"})
	a := s.phone(alice)
	s.deposit(w.ID, 100000, "CASHIN-1")
	a.expect("deposited")
	m := s.openShop("55501", "Mama Mboga", "")
	m.addProduct("12", "Sugar 1kg", 15000)
	m.addProduct("7", "Salt", 2550)
	m.setWebhook(rcv)

	a.send("buy 55501 12 3")
	text := a.expect("KES 450.00", "Mama Mboga", "3 x Sugar 1kg", "Never share")
	id := strings.TrimSuffix(strings.Fields(text)[0], ":")
	if b := s.account(w.ID).Balance; b.Held != 45000 {
		t.Fatalf("BUY holds the total: %+v", b)
	}
	a.send(codeIn(t, text))
	a.expect(id, "confirmed", "KES 450.00", "3 x Sugar 1kg", "KES 550.00")
	ev := rcv.expect("payment.completed", id)
	if ev.Data.Amount != 45000 || len(ev.Data.Items) != 1 || ev.Data.Items[0] != (payswitch.Item{Product: "12", Name: "Sugar 1kg", Quantity: 3, Price: 15000}) {
		t.Fatalf("event data %+v", ev.Data)
	}
	a.send("BUY 55501 7") // quantity 1 when left out
	text = a.expect("KES 25.50", "1 x Salt")
	a.send("OK " + codeIn(t, text))
	a.expect("confirmed", "KES 524.50")
	rcv.expect("payment.completed", strings.TrimSuffix(strings.Fields(text)[0], ":"))

	if c := m.do("DELETE", "/api/v1/merchants/"+m.id+"/products/7", nil, nil); c != http.StatusNoContent {
		t.Fatalf("retire: %d", c)
	}
	before := s.books(w.ID, m.id)
	for _, tc := range []struct {
		sms  string
		want []string
	}{
		{"BUY 55501 99", []string{"no product 99", "Nothing was paid"}},
		{"BUY 55501 7 2", []string{"no product 7", "Nothing was paid"}}, // retired
		{"BUY 55501 12 0", []string{"Invalid quantity", "Nothing was paid"}},
		{"BUY 55501 12 10000", []string{"Invalid quantity", "Nothing was paid"}},
		{"BUY 55501 12 -1", []string{"Invalid quantity", "Nothing was paid"}},
		{"BUY 99999 12", []string{"no merchant 99999", "Nothing was paid"}},
		{"BUY 55501 12 1001", []string{"largest payment", "Nothing was paid"}}, // more than KES 150,000.00
		{"BUY 55501", []string{"BUY <till> <product>"}},
	} {
		a.send(tc.sms)
		a.expect(tc.want...)
		s.unchanged(before)
	}
}
