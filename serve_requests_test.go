package main

import (
	"net/http"
	"strings"
	"testing"
	"time"
)

// paymentID is the payment ID an SMS starts with ("ABCDEFGHJK: ..." or "ABCDEFGHJK confirmed").
func paymentID(text string) string {
	f := strings.Fields(text)
	if len(f) == 0 {
		return ""
	}
	return strings.TrimSuffix(f[0], ":")
}

// TestRequestsToPayBySMS answers merchants' requests to pay from a phone, through a
// running switch: beside a payment of the payer's own, declined with NO, expired when
// the switch's clock passes the ttl, and failed for want of funds. The merchant's system
// hears of each.
func TestRequestsToPayBySMS(t *testing.T) {
	s := startSwitch(t, "5m")
	rcv := startReceiver(t, s, hookSecret)
	w := s.open(map[string]string{"type": "wallet", "msisdn": alice, "name": "Alice"})
	a := s.phone(alice)
	s.deposit(w.ID, 100000, "CASHIN-1")
	a.expect("deposited")
	m := s.openShop("55501", "Mama Mboga", "")
	m.setWebhook(rcv)
	ask := func(ref string, amount int64) string {
		t.Helper()
		p := m.request(map[string]any{"msisdn": alice, "amount": amount, "reference": ref, "ttl": "10m"})
		if p.State != "requested" {
			t.Fatalf("request %s: %+v", ref, p)
		}
		return p.ID
	}

	t.Run("a request beside a payment of the payer's own", func(t *testing.T) {
		a.send("PAY 55501 100")
		own := a.expect("KES 100.00", "Never share")
		req := ask("INV-1", 20000)
		asked := a.expect(req, "KES 200.00", "NO to refuse")
		ownCode, reqCode := codeIn(t, own), codeIn(t, asked)
		for ownCode == reqCode { // one draw in a million: a code of its own tells them apart
			a.send("CANCEL")
			a.expect("cancelled")
			a.send("PAY 55501 100")
			own = a.expect("KES 100.00", "Never share")
			ownCode = codeIn(t, own)
		}
		wrong := "000000"
		for wrong == ownCode || wrong == reqCode {
			wrong = string(rune(wrong[0]+1)) + wrong[1:]
		}
		a.send(wrong)
		a.expect("Wrong code", paymentID(own), req)

		a.send(reqCode) // pays the request alone; the payer's own payment still waits
		a.expect(req, "confirmed", "KES 200.00", "KES 800.00")
		rcv.expect("payment.completed", req)
		if p := s.payment(paymentID(own)); p["state"] != "pending_otp" {
			t.Fatalf("the payer's own payment after the request's code: %v", p["state"])
		}
		if b := s.account(w.ID).Balance; b.Posted != 80000 || b.Held != 10000 {
			t.Fatalf("after the request's code: %+v", b)
		}
		a.send(ownCode)
		a.expect(paymentID(own), "confirmed", "KES 100.00", "KES 700.00")
		rcv.expect("payment.completed", paymentID(own))
		if b := s.account(w.ID).Balance; b.Posted != 70000 || b.Held != 0 {
			t.Fatalf("after both codes: %+v", b)
		}
		if b := s.account(m.id).Balance; b.Posted != 30000 {
			t.Fatalf("merchant after both: %+v", b)
		}
	})

	t.Run("NO declines the request", func(t *testing.T) {
		before := s.books(w.ID, m.id)
		req := ask("INV-2", 5000)
		code := codeIn(t, a.expect(req, "KES 50.00"))
		a.send("no")
		a.expect(req, "declined", "Nothing was paid")
		ev := rcv.expect("request.declined", req)
		if ev.Data.State != "declined" || ev.Data.Reference != "INV-2" {
			t.Fatalf("event data %+v", ev.Data)
		}
		a.send(code) // the declined request's code is dead
		a.expect("no payment waiting")
		a.send("NO")
		a.expect("no request to pay waiting")
		if p := s.payment(req); p["state"] != "declined" {
			t.Fatalf("state %v", p["state"])
		}
		s.unchanged(before)
	})

	t.Run("a request expires with its ttl", func(t *testing.T) {
		before := s.books(w.ID, m.id)
		req := ask("INV-3", 5000)
		code := codeIn(t, a.expect(req, "KES 50.00", "10 min"))
		s.expireCodes(10 * time.Minute) // the ttl passes on the switch's clock
		a.expect(req, "expired", "Nothing was paid")
		if ev := rcv.expect("request.expired", req); ev.Data.State != "expired" {
			t.Fatalf("event data %+v", ev.Data)
		}
		a.send(code)
		a.expect("no payment waiting")
		if p := s.payment(req); p["state"] != "expired" {
			t.Fatalf("state %v", p["state"])
		}
		s.unchanged(before)
	})

	t.Run("too little money when the code comes", func(t *testing.T) {
		before := s.books(w.ID, m.id)
		req := ask("INV-4", 500000)
		a.send("OK " + codeIn(t, a.expect(req, "KES 5,000.00")))
		a.expect(req, "failed", "insufficient funds", "KES 700.00 available", "Nothing was paid")
		if ev := rcv.expect("request.failed", req); ev.Data.State != "failed" {
			t.Fatalf("event data %+v", ev.Data)
		}
		s.unchanged(before)
	})

	// Every event was signed with the merchant's secret, and the switch saw each one
	// delivered.
	attempts, _, forged := rcv.state()
	if forged != 0 || len(attempts) != 5 {
		t.Fatalf("%d events, %d forged; want 5 and none", len(attempts), forged)
	}
	for _, ev := range attempts {
		m.waitDelivery(ev.ID, func(d delivery) bool { return d.State == "delivered" && d.Status == http.StatusOK })
	}
}

// TestRequestPushedAsUSSD sends requests to a phone on a link with ussd_push: each opens
// a USSD screen on the phone (the demo SMSC's phone API), where 1 and the code from the
// SMS pay it, and 2 declines it.
func TestRequestPushedAsUSSD(t *testing.T) {
	s := startSwitchWith(t, "5m", "\x00smpp:      ussd_push: true\n")
	rcv := startReceiver(t, s, hookSecret)
	w := s.open(map[string]string{"type": "wallet", "msisdn": alice, "name": "Alice"})
	a := s.phone(alice)
	s.deposit(w.ID, 100000, "CASHIN-1")
	a.expectSMS("deposited")
	m := s.openShop("55501", "Mama Mboga", "")
	m.setWebhook(rcv)

	p := m.request(map[string]any{"msisdn": alice, "amount": 15000, "reference": "INV-1", "description": "Order 1"})
	code := codeIn(t, a.expectSMS(p.ID, "KES 150.00", "Order 1"))
	sc := s.waitScreen(alice, p.ID)
	if !sc.Open || !strings.Contains(sc.Text, "Mama Mboga") || !strings.Contains(sc.Text, "KES 150.00") ||
		!strings.Contains(sc.Text, "1. Pay") || codeRun(sc.Text) {
		t.Fatalf("the pushed screen %+v", sc)
	}
	s.keyUSSD(alice, "1")
	s.waitScreen(alice, "code")
	s.keyUSSD(alice, code)
	if sc := s.waitScreen(alice, "confirmed"); sc.Open || !strings.Contains(sc.Text, p.ID) {
		t.Fatalf("the last screen %+v", sc)
	}
	a.expectSMS(p.ID, "confirmed", "KES 850.00")
	rcv.expect("payment.completed", p.ID)
	if b := s.account(w.ID).Balance; b.Posted != 85000 || b.Held != 0 {
		t.Fatalf("after paying on the screen: %+v", b)
	}

	before := s.books(w.ID, m.id)
	p = m.request(map[string]any{"msisdn": alice, "amount": 5000, "reference": "INV-2"})
	a.expectSMS(p.ID, "KES 50.00")
	s.waitScreen(alice, p.ID)
	s.keyUSSD(alice, "2")
	if sc := s.waitScreen(alice, "declined"); sc.Open {
		t.Fatalf("the last screen %+v", sc)
	}
	a.expectSMS(p.ID, "declined")
	rcv.expect("request.declined", p.ID)
	if got := s.payment(p.ID); got["state"] != "declined" {
		t.Fatalf("state %v", got["state"])
	}
	s.unchanged(before)
}

// codeRun reports whether text has a run of six digits, as a code would be.
func codeRun(text string) bool { return len(sixDigits.FindAllString(text, -1)) > 0 }

// TestAirtimeReminderThroughServe sends an operator's airtime reminder to a phone: the
// payer confirms with the code, is debited, and the carrier credits the airtime.
func TestAirtimeReminderThroughServe(t *testing.T) {
	s, carrier := startAirtimeSwitch(t)
	w := s.open(map[string]string{"type": "wallet", "msisdn": alice, "name": "Alice"})
	a := s.phone(alice)
	s.deposit(w.ID, 100000, "CASHIN-1")
	a.expect("deposited")
	var p struct{ ID, Type, State string }
	if c := s.call("POST", "/api/v1/payment-requests", opsToken, map[string]any{"type": "airtime", "msisdn": "0700000001",
		"amount": 5000, "reference": "REMIND-1"}, &p); c != http.StatusCreated || p.Type != "airtime" || p.State != "requested" {
		t.Fatalf("reminder: %d %+v", c, p)
	}
	a.send(codeIn(t, a.expect(p.ID, "buy KES 50.00 of airtime for this number", "NO to refuse")))
	// The receipt and the carrier's credit notice may arrive in either order.
	texts := a.expect() + "\n" + a.expect()
	for _, want := range []string{p.ID + " confirmed. KES 50.00 of airtime for 2547****001 is being sent. New balance KES 950.00.",
		"KES 50.00 of airtime credited to 2547****001"} {
		if !strings.Contains(texts, want) {
			t.Fatalf("after the code: %q, want %q", texts, want)
		}
	}
	s.waitState(p.ID, "completed")
	if amt, ok := carrier.credited(p.ID); !ok || amt != 5000 {
		t.Fatalf("carrier credit %d %v", amt, ok)
	}
	if b := s.account(w.ID).Balance; b.Posted != 95000 {
		t.Fatalf("payer %+v", b)
	}
}
