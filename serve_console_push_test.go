package main

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

// waitPushed polls the phone's pushed-screen box, as the page does, until it shows
// every want.
func (b *browser) waitPushed(msisdn string, want ...string) string {
	b.t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		resp, frag := b.get("/console/phone/pushed?n=" + msisdn)
		if resp.StatusCode != http.StatusOK {
			b.t.Fatalf("pushed box: %d\n%s", resp.StatusCode, frag)
		}
		ok := true
		for _, w := range want {
			ok = ok && strings.Contains(frag, w)
		}
		if ok {
			return frag
		}
		if time.Now().After(deadline) {
			b.t.Fatalf("the pushed box never showed %q; last:\n%s", want, frag)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// A merchant's request to pay, pushed to the phone as a USSD screen over a link with
// ussd_push, shows on the console's phone, which answers it through the demo SMSC as a
// handset would: 1 to pay, then the code from the SMS; the payment completes.
func TestConsolePhoneAnswersPushedRequest(t *testing.T) {
	s := startConsoleSwitchWith(t, ", ussd_push: true")
	w := s.open(map[string]string{"type": "wallet", "msisdn": alice, "name": "Alice"})
	shop := s.open(map[string]string{"type": "merchant", "code": "55501", "name": "Mama <b>Mboga</b>", "msisdn": mama})
	p := s.phone(alice)
	s.deposit(w.ID, 100000, "CASH-1")
	p.expectEventually("deposited")

	var req struct {
		ID string `json:"id"`
	}
	if code := s.call("POST", "/api/v1/payment-requests", opsToken, map[string]any{"merchant": shop.ID, "msisdn": alice,
		"amount": 15000, "reference": "INV-7", "description": "Order 7"}, &req); code != http.StatusCreated || req.ID == "" {
		t.Fatalf("request to pay: %d %+v", code, req)
	}
	code := codeIn(t, p.expectEventually(req.ID, "Reply"))

	b := s.browser()
	csrf := b.signIn(opsToken)
	b.waitPushed(alice, "Mama &lt;b&gt;Mboga&lt;/b&gt; (55501) requests KES 150.00", "1. Pay", "waiting for an answer")
	resp, page := b.get("/console/phone?n=" + alice)
	if resp.StatusCode != http.StatusOK || !strings.Contains(page, `action="/console/phone/pushed"`) ||
		strings.Contains(page, "<b>Mboga") {
		t.Fatalf("phone page: %d\n%s", resp.StatusCode, page)
	}

	answer := func(input string) {
		t.Helper()
		resp, page := b.post("/console/phone/pushed", url.Values{"csrf": {csrf}, "n": {alice}, "input": {input}})
		if resp.StatusCode != http.StatusSeeOther {
			t.Fatalf("answer %q: %d\n%s", input, resp.StatusCode, page)
		}
	}
	answer("1")
	b.waitPushed(alice, "Enter the code we sent you by SMS.", "waiting for an answer")
	answer(code)
	b.waitPushed(alice, req.ID, ", ended")
	s.waitState(req.ID, "completed")
	if got := s.account(w.ID).Balance.Posted; got != 100000-15000 {
		t.Fatalf("payer has %d", got)
	}

	// The screen has ended: another answer is refused and sends nothing.
	resp, page = b.post("/console/phone/pushed", url.Values{"csrf": {csrf}, "n": {alice}, "input": {"1"}})
	if resp.StatusCode != http.StatusOK || !strings.Contains(page, "No pushed USSD screen waits for an answer") {
		t.Fatalf("answer to an ended screen: %d\n%s", resp.StatusCode, page)
	}
}

// The USSD menu's purchase runs on the switch's own catalogue: a product listed through
// the API is bought from the console's phone by its code and quantity.
func TestConsolePhoneBuysProductByUSSD(t *testing.T) {
	s := startConsoleSwitch(t)
	w := s.open(map[string]string{"type": "wallet", "msisdn": alice, "name": "Alice"})
	shop := s.open(map[string]string{"type": "merchant", "code": "55501", "name": "Mama Mboga", "msisdn": mama})
	p := s.phone(alice)
	s.deposit(w.ID, 100000, "CASH-1")
	p.expectEventually("deposited")
	if code := s.call("POST", "/api/v1/merchants/"+shop.ID+"/products", opsToken,
		map[string]any{"code": "12", "name": "Sugar 1kg", "price": 15000}, nil); code != http.StatusCreated {
		t.Fatalf("add product: %d", code)
	}

	b := s.browser()
	csrf := b.signIn(opsToken)
	step := func(input string, begin bool, want string) {
		t.Helper()
		form := url.Values{"csrf": {csrf}, "n": {alice}, "input": {input}}
		if begin {
			form.Set("begin", "1")
		}
		resp, page := b.post("/console/phone/ussd", form)
		if resp.StatusCode != http.StatusOK || !strings.Contains(page, want) {
			t.Fatalf("USSD %q: %d, want %q in\n%s", input, resp.StatusCode, want, page)
		}
	}
	step("", true, "2. Pay merchant")
	step("2", false, "Enter the merchant code")
	step("55501", false, "or 0 to buy a product")
	step("0", false, "Enter the product code")
	step("12", false, "Sugar 1kg: KES 150.00 each.")
	step("2", false, "Buy 2 x Sugar 1kg for KES 300.00 from Mama Mboga (55501)?")
	step("1", false, "pay KES 300.00 to Mama Mboga (55501)")
	code := codeIn(t, p.expectEventually("2 x Sugar 1kg", "KES 300.00"))
	step(code, false, "for 2 x Sugar 1kg")
	if got := s.account(w.ID).Balance.Posted; got != 100000-30000 {
		t.Fatalf("payer has %d", got)
	}
}
