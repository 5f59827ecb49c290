package main

import (
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// carrierAPI is a carrier's airtime API as the contract describes it: it credits each
// reference once and can be told to fail.
type carrierAPI struct {
	mu      sync.Mutex // guards the fields below
	credits map[string]int64
	posts   int
	refuse  bool
	token   string
}

func (c *carrierAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.token = r.Header.Get("Authorization")
	ref := strings.TrimPrefix(r.URL.Path, "/topup/")
	if r.Method == http.MethodGet {
		if _, ok := c.credits[ref]; !ok {
			http.NotFound(w, r)
			return
		}
		fmt.Fprint(w, `{"status":"success","carrier_reference":"CR-`+ref+`"}`)
		return
	}
	var req struct {
		Reference, MSISDN, Currency string
		Amount                      int64
	}
	json.NewDecoder(r.Body).Decode(&req)
	c.posts++
	if c.refuse {
		fmt.Fprint(w, `{"status":"failed","reason":"number barred"}`)
		return
	}
	if _, dup := c.credits[req.Reference]; !dup {
		c.credits[req.Reference] = req.Amount
	}
	fmt.Fprint(w, `{"status":"success","carrier_reference":"CR-`+req.Reference+`"}`)
}

func (c *carrierAPI) credited(ref string) (int64, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	v, ok := c.credits[ref]
	return v, ok
}

func startAirtimeSwitch(t *testing.T) (*testSwitch, *carrierAPI) {
	t.Helper()
	carrier := &carrierAPI{credits: map[string]int64{}}
	srv := httptest.NewServer(carrier)
	t.Cleanup(srv.Close)
	s := startSwitchWith(t, "5m", fmt.Sprintf(`airtime:
  carriers:
    - name: carrier-a
      prefixes: ["2547"]
      url: %s/topup
      token: airtime-secret
      timeout: 2s
`, srv.URL))
	return s, carrier
}

func (s *testSwitch) payment(id string) map[string]any {
	s.t.Helper()
	var p map[string]any
	if code := s.call("GET", "/api/v1/payments/"+id, auditToken, nil, &p); code != 200 {
		s.t.Fatalf("payment %s: %d", id, code)
	}
	return p
}

func (s *testSwitch) waitState(id, want string) map[string]any {
	s.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		p := s.payment(id)
		if p["state"] == want {
			return p
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("payment %s stays %v, want %s", id, p["state"], want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestAirtimeBySMSThroughACarrierAPI(t *testing.T) {
	s, carrier := startAirtimeSwitch(t)
	w := s.open(map[string]string{"type": "wallet", "msisdn": alice, "name": "Alice"})
	a := s.phone(alice)
	s.deposit(w.ID, 100000, "CASHIN-1")
	a.expect("deposited")
	a.send("TOPUP 50")
	code := codeIn(t, a.expect("airtime for 2547****001", "KES 50.00"))
	a.send(code)
	// The receipt and the carrier's credit notice are queued a moment apart and may be
	// submitted by two of the sender's workers at once: either can arrive first.
	first, second := a.expect(), a.expect()
	receipt, credited := first, second
	if strings.Contains(first, "credited") {
		receipt, credited = second, first
	}
	if !strings.Contains(receipt, "airtime") || !strings.Contains(receipt, "being sent") ||
		!strings.Contains(credited, "credited") {
		t.Fatalf("after the code: %q and %q, want the receipt (being sent) and the credit notice", first, second)
	}
	id := strings.Fields(receipt)[0]
	s.waitState(id, "completed")
	if amt, ok := carrier.credited(id); !ok || amt != 5000 {
		t.Fatalf("carrier credit for %s = %d %v", id, amt, ok)
	}
	if carrier.token != "Bearer airtime-secret" {
		t.Fatalf("carrier saw token %q", carrier.token)
	}
	if b := s.account(w.ID).Balance; b.Posted != 95000 {
		t.Fatalf("payer balance %+v", b)
	}
}

func TestOperatorTopupAndReversalOverTheAPI(t *testing.T) {
	s, carrier := startAirtimeSwitch(t)
	a := s.phone(alice)
	agent := s.open(map[string]string{"type": "agent", "msisdn": "254700000500", "name": "Agent"})
	s.deposit(agent.ID, 10000, "FLOAT-1")
	body := map[string]any{"from": agent.ID, "msisdn": "0700000001", "amount": 2000, "reference": "TU-1"}
	var p1, p2 struct{ ID, State string }
	if code := s.call("POST", "/api/v1/airtime/topups", opsToken, body, &p1); code != 202 {
		t.Fatalf("topup: %d", code)
	}
	s.call("POST", "/api/v1/airtime/topups", opsToken, body, &p2)
	if p1.ID == "" || p2.ID != p1.ID {
		t.Fatalf("replay gave %q then %q", p1.ID, p2.ID)
	}
	s.waitState(p1.ID, "completed")
	if b := s.account(agent.ID).Balance; b.Posted != 8000 {
		t.Fatalf("float %+v", b)
	}
	if carrier.posts != 1 {
		t.Fatalf("carrier asked %d times", carrier.posts)
	}

	// The top-up's number is told. Its phone was open from the start: a notice that
	// arrived later would otherwise be taken for the deposit's.
	a.expect("airtime credited")

	// A merchant payment, reversed by an operator, twice with one reference.
	w := s.open(map[string]string{"type": "wallet", "msisdn": alice, "name": "Alice"})
	m := s.open(map[string]string{"type": "merchant", "code": "55501", "name": "Mama Mboga", "msisdn": mama})
	shop := s.phone(mama)
	s.deposit(w.ID, 100000, "CASHIN-1")
	a.expect("deposited")
	a.send("PAY 55501 150")
	a.send(codeIn(t, a.expect("KES 150.00")))
	id := strings.Fields(a.expect("confirmed"))[0]
	shop.expect("received")
	rev := map[string]any{"reason": "paid the wrong till", "reference": "REV-1"}
	var r1 struct{ State, Reason string }
	if code := s.call("POST", "/api/v1/payments/"+id+"/reverse", auditToken, rev, nil); code != 403 {
		t.Fatalf("auditor reversal: %d", code)
	}
	if code := s.call("POST", "/api/v1/payments/"+id+"/reverse", opsToken, rev, &r1); code != 200 || r1.State != "reversed" {
		t.Fatalf("reverse: %d %+v", code, r1)
	}
	if code := s.call("POST", "/api/v1/payments/"+id+"/reverse", opsToken, rev, nil); code != 200 {
		t.Fatalf("replayed reversal: %d", code)
	}
	a.expect("reversed", "KES 1,000.00")
	shop.expect("reversed")
	if s.account(w.ID).Balance.Posted != 100000 || s.account(m.ID).Balance.Posted != 0 {
		t.Fatal("reversal did not restore balances")
	}
	var e struct {
		Error struct{ Code, Message string }
	}
	if code := s.call("POST", "/api/v1/payments/"+id+"/reverse", opsToken, map[string]any{"reason": "again", "reference": "REV-2"}, &e); code != 409 {
		t.Fatalf("second reversal: %d %+v", code, e)
	}
}

func TestUSSDPaymentThroughServe(t *testing.T) {
	s := startSwitch(t, "5m")
	w := s.open(map[string]string{"type": "wallet", "msisdn": alice, "name": "Alice"})
	s.open(map[string]string{"type": "merchant", "code": "55501", "name": "Mama Mboga"})
	a := s.phone(alice)
	s.deposit(w.ID, 100000, "CASHIN-1")
	a.expect("deposited")
	step := func(text string) string { return ussdStep(t, s.base, "S1", "+254700000001", text) }
	if got := step(""); !strings.HasPrefix(got, "CON ") || !strings.Contains(got, "2. Pay merchant") {
		t.Fatalf("menu = %q", got)
	}
	step("2")
	step("2*55501")
	if got := step("2*55501*150"); !strings.HasPrefix(got, "CON") {
		t.Fatalf("after amount = %q", got)
	}
	code := codeIn(t, a.expect("KES 150.00"))
	if got := step("2*55501*150*" + code); !strings.HasPrefix(got, "END") || !strings.Contains(got, "confirmed") {
		t.Fatalf("after code = %q", got)
	}
	if b := s.account(w.ID).Balance; b.Posted != 85000 {
		t.Fatalf("balance %+v", b)
	}
}

// ussdStep posts one step of USSD session sessionID of phone to the /ussd callback at
// base, as an Africa's Talking-style gateway does, and returns the screen.
func ussdStep(t *testing.T, base, sessionID, phone, text string) string {
	t.Helper()
	form := url.Values{"sessionId": {sessionID}, "serviceCode": {"*384#"}, "phoneNumber": {phone},
		"networkCode": {"63902"}, "text": {text}}
	resp, err := http.PostForm(base+"/ussd", form)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

func TestMerchantIsCalledAfterAPayment(t *testing.T) {
	type callReq struct{ To, From, Purpose, PaymentID string }
	calls := make(chan callReq, 4)
	gw := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var c struct {
			To, From, Purpose string
			PaymentID         string `json:"payment_id"`
		}
		json.NewDecoder(r.Body).Decode(&c)
		calls <- callReq{c.To, c.From, c.Purpose, c.PaymentID}
		fmt.Fprint(w, `{"sessionId":"CALL-1"}`)
	}))
	defer gw.Close()
	s := startSwitchWith(t, "5m", fmt.Sprintf("ivr:\n  number: \"254709000000\"\n  gateway:\n    url: %s\n    token: v\n", gw.URL))
	w := s.open(map[string]string{"type": "wallet", "msisdn": alice, "name": "Alice"})
	s.open(map[string]string{"type": "merchant", "code": "55501", "name": "Mama Mboga", "msisdn": mama})
	a := s.phone(alice)
	s.deposit(w.ID, 100000, "CASHIN-1")
	a.expect("deposited")
	a.send("PAY 55501 150")
	a.send(codeIn(t, a.expect("KES 150.00")))
	id := strings.Fields(a.expect("confirmed"))[0]
	var c callReq
	select {
	case c = <-calls:
	case <-time.After(10 * time.Second):
		t.Fatal("the voice gateway was never asked to call")
	}
	if c.To != mama || c.From != "254709000000" || c.Purpose != "merchant_notice" || c.PaymentID != id {
		t.Fatalf("call request = %+v", c)
	}
	// The gateway's callback for that call gets the notice script.
	form := url.Values{"sessionId": {"CALL-1"}, "isActive": {"1"}, "direction": {"Outbound"},
		"callerNumber": {"254709000000"}, "destinationNumber": {mama}}
	resp, err := http.PostForm(s.base+"/ivr", form)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(body), "<Say>") || !strings.Contains(string(body), "one hundred and fifty") {
		t.Fatalf("notice script = %s", body)
	}
}

func TestBusyDatabaseDegradesAndRecovers(t *testing.T) {
	s := startSwitch(t, "5m")
	w := s.open(map[string]string{"type": "wallet", "msisdn": alice, "name": "Alice"})
	s.open(map[string]string{"type": "merchant", "code": "55501", "name": "Mama Mboga"})
	a := s.phone(alice)
	s.deposit(w.ID, 100000, "CASHIN-1")
	a.expect("deposited")

	// Another process takes SQLite's write lock and keeps it, as a stuck backup or a
	// runaway maintenance script would.
	other, err := sql.Open("sqlite", "file:"+filepath.Join(s.dir, "payswitch.db")+"?_pragma=busy_timeout(10000)")
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	other.SetMaxOpenConns(1)
	if _, err := other.Exec("BEGIN IMMEDIATE"); err != nil {
		t.Fatal(err)
	}
	resp, err := http.Get(s.base + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	var h struct {
		Status   string
		Database struct{ OK bool }
	}
	json.NewDecoder(resp.Body).Decode(&h)
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || h.Database.OK {
		t.Fatalf("healthz while the database is locked: %d %+v", resp.StatusCode, h)
	}
	// An SMS that arrives meanwhile cannot be persisted: the switch answers the SMSC with
	// a temporary error, and the SMSC delivers it again.
	received := s.app.links[0].Stats().Received
	a.send("PAY 55501 150")
	for deadline := time.Now().Add(10 * time.Second); s.app.links[0].Stats().Received == received; {
		if time.Now().After(deadline) {
			t.Fatal("the SMS never reached the switch")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if _, err := other.Exec("ROLLBACK"); err != nil {
		t.Fatal(err)
	}
	a.send(codeIn(t, a.expect("KES 150.00")))
	a.expect("confirmed", "KES 850.00")
	resp, err = http.Get(s.base + "/healthz")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("healthz after recovery: %v %v", resp.StatusCode, err)
	}
	resp.Body.Close()
}

func TestUndeliverableCodeIsOfferedByVoiceCall(t *testing.T) {
	type callReq struct{ To, Purpose, PaymentID string }
	calls := make(chan callReq, 4)
	gw := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var c struct {
			To, Purpose string
			PaymentID   string `json:"payment_id"`
		}
		json.NewDecoder(r.Body).Decode(&c)
		calls <- callReq{c.To, c.Purpose, c.PaymentID}
		fmt.Fprint(w, `{"sessionId":"CALL-7"}`)
	}))
	defer gw.Close()
	s := startSwitchWith(t, "5m", fmt.Sprintf("ivr:\n  number: \"254709000000\"\n  gateway:\n    url: %s\n", gw.URL))
	w := s.open(map[string]string{"type": "wallet", "msisdn": alice, "name": "Alice"})
	s.open(map[string]string{"type": "merchant", "code": "55501", "name": "Mama Mboga"})
	s.deposit(w.ID, 100000, "CASHIN-1")
	s.sim.SetUnreachable(alice, true) // the handset is off the network for SMS
	a := s.phone(alice)
	a.send("PAY 55501 150")

	var c callReq
	select {
	case c = <-calls:
	case <-time.After(15 * time.Second):
		t.Fatal("no voice call after the code SMS was undeliverable")
	}
	if c.To != alice || c.Purpose != "payer_confirm" {
		t.Fatalf("call = %+v", c)
	}
	post := func(digits string) string {
		form := url.Values{"sessionId": {"CALL-7"}, "isActive": {"1"}, "direction": {"Outbound"},
			"callerNumber": {"254709000000"}, "destinationNumber": {alice}, "dtmfDigits": {digits}}
		resp, err := http.PostForm(s.base+"/ivr", form)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return string(b)
	}
	// The call never speaks the code (issue 17): the payer hears the payment and keys
	// its amount in whole units, and the switch confirms with the call's code itself.
	script := post("")
	if !strings.Contains(script, "key in the amount") || strings.Contains(script, "Your code is") {
		t.Fatalf("the fallback call's script: %s", script)
	}
	if got := post("150#"); !strings.Contains(got, "is complete") {
		t.Fatalf("after keying the amount: %s", got)
	}
	if b := s.account(w.ID).Balance; b.Posted != 85000 || b.Held != 0 {
		t.Fatalf("balance after voice confirmation: %+v", b)
	}
	if p := s.waitState(c.PaymentID, "completed"); p["channel"] != "sms" {
		t.Fatalf("payment %+v", p)
	}
}
