package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
)

// The console in a real browser: headless Chromium driven over the DevTools protocol.
// These tests skip when no Chromium is installed; .ci/run installs it, so they run in
// CI. With PAYSWITCH_SCREENSHOTS=1 they also write the README's screenshots to docs/:
//
//	PAYSWITCH_SCREENSHOTS=1 go test -run TestConsoleBrowser .

// chromium finds a Chromium or Chrome to drive, or skips the test.
func chromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Skip("no chromium found: the console's browser tests need it (apt-get install chromium; .ci/run installs it)")
	return ""
}

// newBrowser starts a headless Chromium with a fresh profile and nothing that reaches
// out to the network (which is closed where CI runs), and collects what its console
// logs: a page that breaks the Content-Security-Policy logs it there.
func newBrowser(t *testing.T) (context.Context, func() []string) {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromium(t)),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.NoSandbox, chromedp.DisableGPU, chromedp.NoFirstRun,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.WindowSize(1280, 900),
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(func() { cancel(); cancelAlloc() })
	entries := chromedp.Events(ctx, log.EntryAdded)
	if _, err := chromedp.Call(ctx, log.Enable, cdp.Empty{}); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	var logged []string
	var mu sync.Mutex
	go func() {
		for ev, err := range entries {
			if err != nil {
				return
			}
			mu.Lock()
			logged = append(logged, ev.Entry.Text)
			mu.Unlock()
		}
	}()
	return ctx, func() []string {
		mu.Lock()
		defer mu.Unlock()
		return append([]string(nil), logged...)
	}
}

// stepTimeout bounds one group of browser steps; a loaded CI machine running -race is
// slow, but not that slow.
const stepTimeout = 45 * time.Second

// do runs browser steps, failing the test with what, and where the browser is, when one
// fails.
func do(t *testing.T, ctx context.Context, what string, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	sctx, cancel := context.WithTimeout(ctx, stepTimeout)
	defer cancel()
	if err := chromedp.Do(sctx, steps...); err != nil {
		t.Fatalf("%s: %v\n%s", what, err, whereIs(ctx))
	}
}

// whereIs describes the browser's page, for a failure's message.
func whereIs(ctx context.Context) string {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	loc, err := chromedp.Run(ctx, chromedp.Location())
	if err != nil {
		return "browser location unknown: " + err.Error()
	}
	body, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.body ? document.body.innerText : ""`))
	return "at " + loc + ":\n" + body
}

// textOf waits until the element's text contains every want, and returns it.
func textOf(t *testing.T, ctx context.Context, sel string, want ...string) string {
	t.Helper()
	deadline := time.Now().Add(stepTimeout)
	var text string
	for {
		tctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		var err error
		text, err = chromedp.Run(tctx, chromedp.Text(chromedp.CSS(sel)))
		cancel()
		ok := err == nil
		for _, w := range want {
			ok = ok && strings.Contains(text, w)
		}
		if ok {
			return text
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: text %q (err %v), want it to contain %q\n%s", sel, text, err, want, whereIs(ctx))
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// screenshot writes docs/NAME.png when PAYSWITCH_SCREENSHOTS=1.
func screenshot(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	if os.Getenv("PAYSWITCH_SCREENSHOTS") != "1" {
		return
	}
	sctx, cancel := context.WithTimeout(ctx, stepTimeout)
	defer cancel()
	png, err := chromedp.Run(sctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("screenshot %s: %v", name, err)
	}
	if err := os.WriteFile(filepath.Join("docs", name+".png"), png, 0o644); err != nil {
		t.Fatal(err)
	}
}

func signInBrowser(t *testing.T, ctx context.Context, base, token string) {
	t.Helper()
	do(t, ctx, "sign in",
		chromedp.Navigate(base+"/console/"),
		chromedp.WaitVisible(chromedp.CSS(`input[name=token]`)),
		chromedp.SendKeys(chromedp.CSS(`input[name=token]`), token),
		chromedp.Submit(chromedp.CSS(`input[name=token]`)),
		chromedp.WaitVisible(chromedp.CSS(`#live`)),
	)
}

var paymentIDIn = regexp.MustCompile(`\b([A-Z0-9]{10})\b`)

// An operator signs in, finds a number, pays a merchant from the phone in the browser,
// follows the payment on its page (timeline, transfers, code history, messages), reverses
// it and sees the balances back where they were; an auditor then sees no write forms and
// is refused the phone.
func TestConsoleBrowser(t *testing.T) {
	s := startConsoleSwitch(t)
	ctx, logged := newBrowser(t)
	wallet := s.open(map[string]string{"type": "wallet", "msisdn": alice, "name": "Alice Wanjiru"})
	shop := s.open(map[string]string{"type": "merchant", "code": "55501", "name": "Mama Mboga", "msisdn": mama})
	s.open(map[string]string{"type": "wallet", "msisdn": bob, "name": "Bob Otieno"})
	s.deposit(wallet.ID, 500000, "CASH-ALICE-1")

	signInBrowser(t, ctx, s.base, opsToken)
	textOf(t, ctx, "main", "SMPP links", "carrier-a", "Trial balance", "balanced")

	// Find a number from the box in the header.
	do(t, ctx, "find",
		chromedp.SendKeys(chromedp.CSS(`input[name=q]`), "0700000001"),
		chromedp.Submit(chromedp.CSS(`input[name=q]`)),
		chromedp.WaitVisible(chromedp.CSS(`#available`)))
	textOf(t, ctx, "h1", "Alice Wanjiru")
	textOf(t, ctx, "#available", "5,000.00")

	// Pay from the phone in the browser: the SMS goes through the demo SMSC.
	do(t, ctx, "phone",
		chromedp.Navigate(s.base+"/console/phone?n="+alice),
		chromedp.WaitVisible(chromedp.CSS(`#sms input[name=text]`)),
		chromedp.SendKeys(chromedp.CSS(`#sms input[name=text]`), "PAY 55501 150"),
		chromedp.Submit(chromedp.CSS(`#sms input[name=text]`)))
	thread := textOf(t, ctx, "#thread", "Reply with code")
	code := codeIn(t, thread[strings.LastIndex(thread, "pay KES"):])
	do(t, ctx, "code",
		chromedp.WaitVisible(chromedp.CSS(`#sms input[name=text]`)),
		chromedp.SendKeys(chromedp.CSS(`#sms input[name=text]`), code),
		chromedp.Submit(chromedp.CSS(`#sms input[name=text]`)))
	thread = textOf(t, ctx, "#thread", "confirmed. KES 150.00 paid to Mama Mboga")
	receipt := thread[strings.LastIndex(thread, "confirmed."):]
	receipt = thread[strings.LastIndex(thread[:len(thread)-len(receipt)], "\n")+1:]
	id := paymentIDIn.FindString(receipt)
	if id == "" {
		t.Fatalf("no payment ID in the receipt %q", receipt)
	}

	// USSD in the browser: dial, walk to the balance.
	do(t, ctx, "ussd dial",
		chromedp.Click(chromedp.CSS(`#ussd-dial button`)),
		chromedp.WaitVisible(chromedp.CSS(`#ussd-answer input[name=input]`)))
	textOf(t, ctx, "#ussd", "Pay merchant")
	do(t, ctx, "ussd 4",
		chromedp.SendKeys(chromedp.CSS(`#ussd-answer input[name=input]`), "4"),
		chromedp.Submit(chromedp.CSS(`#ussd-answer input[name=input]`)))
	textOf(t, ctx, "#ussd", "1. Balance")
	do(t, ctx, "ussd 1",
		chromedp.SendKeys(chromedp.CSS(`#ussd-answer input[name=input]`), "1"),
		chromedp.Submit(chromedp.CSS(`#ussd-answer input[name=input]`)),
		chromedp.WaitNotPresent(chromedp.CSS(`#ussd-answer`)))
	textOf(t, ctx, "#ussd", "4,850.00")
	screenshot(t, ctx, "console-phone")

	// The payment's page answers "what happened to it?".
	do(t, ctx, "payment page", chromedp.Navigate(s.base+"/console/payments/"+id),
		chromedp.WaitVisible(chromedp.CSS(`#timeline`)))
	textOf(t, ctx, "#timeline", "confirm", "pending_otp", "completed")
	page := textOf(t, ctx, "main", "Mama Mboga", "issued", "confirmed", "[code message]", "Ledger transfers")
	if strings.Contains(page, code) {
		t.Fatalf("the payment page shows the code %s", code)
	}
	screenshot(t, ctx, "console-payment")

	// Reverse it.
	do(t, ctx, "reverse",
		chromedp.SendKeys(chromedp.CSS(`#reverse input[name=reason]`), "customer paid the wrong shop"),
		chromedp.SendKeys(chromedp.CSS(`#reverse input[name=reference]`), "TICKET-42"),
		chromedp.Submit(chromedp.CSS(`#reverse input[name=reason]`)),
		chromedp.WaitVisible(chromedp.CSS(`.msg`)))
	textOf(t, ctx, "h1", "reversed")
	textOf(t, ctx, "#timeline", "reverse", "reversed")

	// The balances are back where they were.
	do(t, ctx, "payer", chromedp.Navigate(s.base+"/console/accounts/"+wallet.ID), chromedp.WaitVisible(chromedp.CSS(`#available`)))
	textOf(t, ctx, "#available", "5,000.00")
	textOf(t, ctx, "#posted", "5,000.00")
	do(t, ctx, "payee", chromedp.Navigate(s.base+"/console/accounts/"+shop.ID), chromedp.WaitVisible(chromedp.CSS(`#available`)))
	textOf(t, ctx, "#available", "0.00")

	// The overview, with the hour's payments in its chart.
	do(t, ctx, "overview", chromedp.Navigate(s.base+"/console/"), chromedp.WaitVisible(chromedp.CSS(`svg.chart rect`)))
	screenshot(t, ctx, "console-overview")
	// It redraws itself (htmx polls /console/live, which the CSP allows).
	before := textOf(t, ctx, "#live h2")
	deadline := time.Now().Add(15 * time.Second)
	for textOf(t, ctx, "#live h2") == before {
		if time.Now().After(deadline) {
			t.Fatalf("the overview did not update itself: %q", before)
		}
		time.Sleep(500 * time.Millisecond)
	}

	// Sign out, then an auditor: everything visible, nothing writable.
	do(t, ctx, "sign out", chromedp.Click(chromedp.CSS(`header .who button`)),
		chromedp.WaitVisible(chromedp.CSS(`input[name=token]`)))
	signInBrowser(t, ctx, s.base, auditToken)
	do(t, ctx, "auditor payment", chromedp.Navigate(s.base+"/console/payments/"+id), chromedp.WaitVisible(chromedp.CSS(`#timeline`)))
	forms, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](`Array.from(document.querySelectorAll("form")).map(f => f.getAttribute("action"))`))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range forms {
		if f != "/console/find" && f != "/console/logout" {
			t.Fatalf("an auditor is shown the form %s", f)
		}
	}
	do(t, ctx, "auditor phone", chromedp.Navigate(s.base+"/console/phone"))
	textOf(t, ctx, ".err", "an auditor may look at everything but change nothing")
	if _, err := chromedp.Call(ctx, network.ClearBrowserCookies, cdp.Empty{}); err != nil {
		t.Fatal(err)
	}

	for _, l := range logged() {
		if strings.Contains(l, "Content Security Policy") || strings.Contains(l, "Refused to") {
			t.Errorf("the browser logged a CSP violation: %s", l)
		}
	}
}

// A merchant's request to pay pushed to the phone as a USSD screen appears on the
// phone in the browser by itself (htmx polls its box), and is answered from there
// through the demo SMSC: 1 to pay, then the code from the SMS.
func TestConsoleBrowserPushedRequest(t *testing.T) {
	s := startConsoleSwitchWith(t, ", ussd_push: true")
	ctx, logged := newBrowser(t)
	wallet := s.open(map[string]string{"type": "wallet", "msisdn": alice, "name": "Alice Wanjiru"})
	shop := s.open(map[string]string{"type": "merchant", "code": "55501", "name": "Mama Mboga", "msisdn": mama})
	s.deposit(wallet.ID, 500000, "CASH-ALICE-1")

	signInBrowser(t, ctx, s.base, opsToken)
	do(t, ctx, "phone", chromedp.Navigate(s.base+"/console/phone?n="+alice),
		chromedp.WaitVisible(chromedp.CSS(`#sms input[name=text]`)))
	var req struct {
		ID string `json:"id"`
	}
	if code := s.call("POST", "/api/v1/payment-requests", opsToken, map[string]any{"merchant": shop.ID, "msisdn": alice,
		"amount": 15000, "reference": "INV-7", "description": "Order 7"}, &req); code != 201 {
		t.Fatalf("request to pay: %d", code)
	}
	textOf(t, ctx, "#pushed", "Mama Mboga (55501) requests KES 150.00 for Order 7", "1. Pay", "waiting for an answer")
	screenshot(t, ctx, "console-phone-push")
	do(t, ctx, "pay",
		chromedp.SendKeys(chromedp.CSS(`#pushed-answer input[name=input]`), "1"),
		chromedp.Submit(chromedp.CSS(`#pushed-answer input[name=input]`)))
	textOf(t, ctx, "#pushed", "Enter the code we sent you by SMS.", "waiting for an answer")
	thread := textOf(t, ctx, "#thread", req.ID, "Reply")
	code := codeIn(t, thread[strings.LastIndex(thread, req.ID+":"):])
	do(t, ctx, "code",
		chromedp.WaitVisible(chromedp.CSS(`#pushed-answer input[name=input]`)),
		chromedp.SendKeys(chromedp.CSS(`#pushed-answer input[name=input]`), code),
		chromedp.Submit(chromedp.CSS(`#pushed-answer input[name=input]`)))
	textOf(t, ctx, "#pushed", req.ID, "ended")
	s.waitState(req.ID, "completed")

	for _, l := range logged() {
		if strings.Contains(l, "Content Security Policy") || strings.Contains(l, "Refused to") {
			t.Errorf("the browser logged a CSP violation: %s", l)
		}
	}
}

// A guaranteed payment in the browser: an operator turns escrow on for a merchant, the
// phone in the browser pays it, and the payment's page shows it held in escrow with the
// time it would be released by itself; the operator releases it to the merchant with a
// reason and sees it completed, the money with the merchant.
func TestConsoleBrowserEscrowRelease(t *testing.T) {
	s := startConsoleSwitch(t)
	ctx, logged := newBrowser(t)
	wallet := s.open(map[string]string{"type": "wallet", "msisdn": alice, "name": "Alice Wanjiru"})
	shop := s.open(map[string]string{"type": "merchant", "code": "55501", "name": "Mama Mboga", "msisdn": mama})
	s.deposit(wallet.ID, 500000, "CASH-ALICE-1")
	if code := s.call("PATCH", "/api/v1/merchants/"+shop.ID, opsToken, map[string]bool{"escrow": true}, nil); code != 200 {
		t.Fatalf("escrow on: %d", code)
	}

	signInBrowser(t, ctx, s.base, opsToken)
	do(t, ctx, "phone",
		chromedp.Navigate(s.base+"/console/phone?n="+alice),
		chromedp.WaitVisible(chromedp.CSS(`#sms input[name=text]`)),
		chromedp.SendKeys(chromedp.CSS(`#sms input[name=text]`), "PAY 55501 150"),
		chromedp.Submit(chromedp.CSS(`#sms input[name=text]`)))
	thread := textOf(t, ctx, "#thread", "Reply with code")
	code := codeIn(t, thread[strings.LastIndex(thread, "pay KES"):])
	do(t, ctx, "code",
		chromedp.WaitVisible(chromedp.CSS(`#sms input[name=text]`)),
		chromedp.SendKeys(chromedp.CSS(`#sms input[name=text]`), code),
		chromedp.Submit(chromedp.CSS(`#sms input[name=text]`)))
	thread = textOf(t, ctx, "#thread", "held until you reply RELEASE")
	id := regexp.MustCompile(`RELEASE ([A-Z0-9]{10})`).FindStringSubmatch(thread)
	if id == nil {
		t.Fatalf("no payment ID in the receipt %q", thread)
	}

	do(t, ctx, "payment page", chromedp.Navigate(s.base+"/console/payments/"+id[1]),
		chromedp.WaitVisible(chromedp.CSS(`#escrow-release`)))
	textOf(t, ctx, "h1", "in_escrow")
	textOf(t, ctx, "#escrow", "held in escrow", "released by itself at")
	do(t, ctx, "release",
		chromedp.SendKeys(chromedp.CSS(`#escrow-release input[name=reason]`), "goods delivered, payer unreachable"),
		chromedp.Submit(chromedp.CSS(`#escrow-release input[name=reason]`)),
		chromedp.WaitVisible(chromedp.CSS(`.msg`)))
	textOf(t, ctx, ".msg", "released to the merchant")
	textOf(t, ctx, "h1", "completed")
	textOf(t, ctx, "#timeline", "in_escrow", "completed")
	if n, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll("#escrow-release, #escrow-refund").length`)); err != nil || n != 0 {
		t.Fatalf("escrow forms after the release: %d %v", n, err)
	}
	do(t, ctx, "payee", chromedp.Navigate(s.base+"/console/accounts/"+shop.ID), chromedp.WaitVisible(chromedp.CSS(`#available`)))
	textOf(t, ctx, "#available", "150.00")

	for _, l := range logged() {
		if strings.Contains(l, "Content Security Policy") || strings.Contains(l, "Refused to") {
			t.Errorf("the browser logged a CSP violation: %s", l)
		}
	}
}
