package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// The gateway callbacks act as the number a request names, so these tests forge such
// requests against the running switch and check that nothing moves: no hold, no
// payment, no SMS, no balance in the answer.

const (
	ussdSecret = "ussd-callback-secret-0123"
	ivrSecret  = "ivr-callback-secret-0123"
)

// forgery is what a forged callback could have changed for alice, read before and
// after it.
type forgery struct {
	s        *testSwitch
	wallet   string
	balance  accountResp
	payments int
	sms      int
}

// fundedAlice opens alice's wallet with KES 1,000.00 and merchant 55501, and returns
// what a forgery must leave as it is.
func fundedAlice(t *testing.T, s *testSwitch) *forgery {
	t.Helper()
	w := s.open(map[string]string{"type": "wallet", "msisdn": alice, "name": "Alice"})
	s.open(map[string]string{"type": "merchant", "code": "55501", "name": "Mama Mboga"})
	a := s.phone(alice)
	s.deposit(w.ID, 100000, "CASHIN-1")
	a.expect("deposited")
	f := &forgery{s: s, wallet: w.ID}
	f.balance, f.payments, f.sms = f.now()
	return f
}

func (f *forgery) now() (accountResp, int, int) {
	f.s.t.Helper()
	var list struct{ Payments []map[string]any }
	if code := f.s.call("GET", "/api/v1/payments?msisdn="+alice, auditToken, nil, &list); code != http.StatusOK {
		f.s.t.Fatalf("list payments: %d", code)
	}
	msgs, err := f.s.app.outbox.List(context.Background(), alice, 100)
	if err != nil {
		f.s.t.Fatal(err)
	}
	return f.s.account(f.wallet), len(list.Payments), len(msgs)
}

// unchanged fails the test if alice's balance, payments or SMS changed.
func (f *forgery) unchanged(what string) {
	f.s.t.Helper()
	b, p, m := f.now()
	if b.Balance != f.balance.Balance || p != f.payments || m != f.sms {
		f.s.t.Fatalf("%s changed things: balance %+v -> %+v, payments %d -> %d, SMS to alice %d -> %d",
			what, f.balance.Balance, b.Balance, f.payments, p, f.sms, m)
	}
}

// post sends a gateway callback form to base+path with extra headers, and returns the
// status and body.
func post(t *testing.T, base, path string, form url.Values, headers map[string]string) (int, string) {
	t.Helper()
	req, err := http.NewRequest("POST", base+path, strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// ussdForm is a USSD step from alice's phone with everything typed so far.
func ussdForm(session, text string) url.Values {
	return url.Values{"sessionId": {session}, "serviceCode": {"*384#"}, "phoneNumber": {"+" + alice},
		"networkCode": {"63902"}, "text": {text}}
}

// ussdBalanceScreen walks a USSD session from dialling to the balance screen, each step
// with headers, and returns the last answer.
func ussdBalanceScreen(t *testing.T, base, path, session string, headers map[string]string) (int, string) {
	t.Helper()
	for _, text := range ussdBalance[:len(ussdBalance)-1] {
		if code, body := post(t, base, path, ussdForm(session, text), headers); code != http.StatusOK {
			t.Fatalf("ussd %q: %d %q", text, code, body)
		}
	}
	return post(t, base, path, ussdForm(session, ussdBalance[len(ussdBalance)-1]), headers)
}

// ivrForm is an inbound call from alice keying digits.
func ivrForm(session, digits string) url.Values {
	return url.Values{"sessionId": {session}, "isActive": {"1"}, "direction": {"Inbound"},
		"callerNumber": {alice}, "destinationNumber": {"254709000000"}, "dtmfDigits": {digits}}
}

// The steps a forger walks: a pay flow (holds funds and sends a code SMS) and a
// balance flow (reads the balance), by USSD (text so far) and by voice (keys).
var (
	ussdPay     = []string{"", "2", "2*55501", "2*55501*150"}
	ussdBalance = []string{"", "4", "4*1"}
	ivrPay      = []string{"", "1", "55501#", "150#"}
	ivrBalance  = []string{"", "3"}
)

// forge walks steps as one session on base+path with headers and reports every step
// that is not refused with 403 or whose answer tells a balance. It goes on after a
// failure, so that on a switch without the guard the test also shows what changed.
func forge(t *testing.T, base, path, session string, steps []string, headers map[string]string) {
	t.Helper()
	for _, step := range steps {
		form := ussdForm(session, step)
		if path == "/ivr" {
			form = ivrForm(session, step)
		}
		code, body := post(t, base, path, form, headers)
		if code != http.StatusForbidden || strings.Contains(body, "KES") || strings.Contains(body, "shillings") {
			t.Errorf("forged %s step %q (headers %v): %d %q", path, step, headers, code, body)
		}
	}
}

// Attack: a request from outside the gateway's network acts as any number. With allow
// set to a network the test's loopback is not in, a forged pay request, a balance
// request and a voice call are refused and change nothing.
func TestCallbacksFromAnotherNetworkAreRefused(t *testing.T) {
	s := startSwitchWith(t, "5m", `
ussd:
  callbacks:
    allow: ["192.0.2.0/24"]
ivr:
  callbacks:
    allow: ["198.51.100.0/24", "2001:db8::/32"]
`)
	f := fundedAlice(t, s)
	forge(t, s.base, "/ussd", "F1", ussdPay, nil)
	forge(t, s.base, "/ussd", "F2", ussdBalance, nil)
	// Even naming an allowed address in X-Forwarded-For: only the connection counts.
	forge(t, s.base, "/ussd", "F3", ussdPay, map[string]string{"X-Forwarded-For": "192.0.2.10"})
	forge(t, s.base, "/ivr", "V1", ivrPay, nil)
	forge(t, s.base, "/ivr", "V2", ivrBalance, map[string]string{"X-Forwarded-For": "198.51.100.7"})
	f.unchanged("callbacks from a network not allowed")
}

// Attack: anyone who reaches an allowed network (or the proxy in front) forges
// callbacks. With a secret set, a request without it or with a wrong one is refused;
// the gateway's, with the key in the header or in the query, works.
func TestCallbacksNeedTheSecret(t *testing.T) {
	s := startSwitchWith(t, "5m", `
ussd:
  callbacks:
    secret: "`+ussdSecret+`"
ivr:
  callbacks:
    secret: "`+ivrSecret+`"
`)
	f := fundedAlice(t, s)
	refused := []struct {
		name, query string
		headers     map[string]string
	}{
		{"no key", "", nil},
		{"wrong key in the header", "", map[string]string{"X-Payswitch-Key": "ussd-callback-secret-0124"}},
		{"wrong key in the query", "?key=guess-guess-guess-guess", nil},
		{"the other channel's key", "?key=" + ivrSecret, nil},
		{"a prefix of the key", "?key=" + ussdSecret[:16], nil},
	}
	for i, r := range refused {
		session := fmt.Sprintf("K%d", i)
		forge(t, s.base, "/ussd"+r.query, session, ussdPay, r.headers)
		forge(t, s.base, "/ussd"+r.query, session+"b", ussdBalance, r.headers)
		q := r.query
		if r.name == "the other channel's key" {
			q = "?key=" + ussdSecret
		}
		forge(t, s.base, "/ivr"+q, session, ivrPay, r.headers)
	}
	f.unchanged("callbacks without the right key")

	if code, body := ussdBalanceScreen(t, s.base, "/ussd", "OK1", map[string]string{"X-Payswitch-Key": ussdSecret}); code != http.StatusOK || !strings.HasPrefix(body, "END") || !strings.Contains(body, "KES 1,000.00") {
		t.Fatalf("ussd with the key in the header: %d %q", code, body)
	}
	if code, body := post(t, s.base, "/ussd?key="+url.QueryEscape(ussdSecret), ussdForm("OK2", ""), nil); code != http.StatusOK || !strings.HasPrefix(body, "CON") {
		t.Fatalf("ussd with the key in the query: %d %q", code, body)
	}
	if code, body := post(t, s.base, "/ivr?key="+ivrSecret, ivrForm("OK3", ""), nil); code != http.StatusOK || !strings.Contains(body, "<GetDigits") {
		t.Fatalf("ivr with the key in the query: %d %q", code, body)
	}
	if code, body := post(t, s.base, "/ivr", ivrForm("OK4", ""), map[string]string{"X-Payswitch-Key": ivrSecret}); code != http.StatusOK || !strings.Contains(body, "<GetDigits") {
		t.Fatalf("ivr with the key in the header: %d %q", code, body)
	}
}

// Attack: a page on any site makes its visitor's browser POST a simple form to the
// switch, which arrives from an allowed address (the visitor's own machine). A request
// with a browser's Origin or Sec-Fetch-Site header is refused and changes nothing; the
// same request without them is served.
func TestCallbacksFromABrowserAreRefused(t *testing.T) {
	s := startSwitch(t, "5m")
	f := fundedAlice(t, s)
	for _, h := range []map[string]string{
		{"Origin": "https://evil.example"},
		{"Sec-Fetch-Site": "cross-site"},
		{"Origin": "null", "Sec-Fetch-Site": "cross-site", "Sec-Fetch-Mode": "navigate"},
	} {
		forge(t, s.base, "/ussd", "B1", ussdPay, h)
		forge(t, s.base, "/ussd", "B2", ussdBalance, h)
		forge(t, s.base, "/ivr", "B3", ivrPay, h)
	}
	f.unchanged("callbacks from a browser")
	if code, body := post(t, s.base, "/ussd", ussdForm("B4", ""), nil); code != http.StatusOK || !strings.HasPrefix(body, "CON") {
		t.Fatalf("ussd from the gateway: %d %q", code, body)
	}
}

// With listen set, the callbacks are served on their own listener only: the API's
// listener no longer knows /ussd and /ivr, and the callback listener serves no API.
// Both callbacks naming the same address share it, and it closes with the switch.
func TestCallbacksOnTheirOwnListener(t *testing.T) {
	s := startSwitchWith(t, "5m", `
ussd:
  callbacks:
    listen: 127.0.0.1:0
ivr:
  callbacks:
    listen: 127.0.0.1:0
`)
	cb := s.app.callbackAddr("/ussd")
	if cb == "" || cb == s.app.httpAddr || s.app.callbackAddr("/ivr") != cb {
		t.Fatalf("callback listeners: ussd %q, ivr %q, API %q", cb, s.app.callbackAddr("/ivr"), s.app.httpAddr)
	}
	f := fundedAlice(t, s)
	for _, path := range []string{"/ussd", "/ivr"} {
		steps, form := ussdPay, ussdForm
		if path == "/ivr" {
			steps, form = ivrPay, ivrForm
		}
		for _, step := range steps {
			if code, body := post(t, s.base, path, form("L1", step), nil); code != http.StatusNotFound {
				t.Errorf("%s step %q on the API's listener: %d %q", path, step, code, body)
			}
		}
	}
	f.unchanged("callbacks on the API's listener")
	if code, body := ussdBalanceScreen(t, "http://"+cb, "/ussd", "L2", nil); code != http.StatusOK || !strings.Contains(body, "KES 1,000.00") {
		t.Fatalf("ussd on its own listener: %d %q", code, body)
	}
	if code, body := post(t, "http://"+cb, "/ivr", ivrForm("L3", ""), nil); code != http.StatusOK || !strings.Contains(body, "<GetDigits") {
		t.Fatalf("ivr on its own listener: %d %q", code, body)
	}
	// The guard is there too.
	if code, _ := post(t, "http://"+cb, "/ussd", ussdForm("L4", "4*1"), map[string]string{"Origin": "https://evil.example"}); code != http.StatusForbidden {
		t.Fatalf("browser request on the callback listener: %d", code)
	}
	resp, err := http.Get("http://" + cb + "/api/v1/ledger/trial-balance")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Fatalf("the API on the callback listener: %d", resp.StatusCode)
	}
	s.stop()
	if resp, err := http.Post("http://"+cb+"/ussd", "application/x-www-form-urlencoded", strings.NewReader(ussdForm("L5", "").Encode())); err == nil {
		resp.Body.Close()
		t.Fatalf("the callback listener still answers after Close: %d", resp.StatusCode)
	}
}
