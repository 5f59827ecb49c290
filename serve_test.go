package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"path/filepath"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/payswitch/payswitch/config"
	"github.com/payswitch/payswitch/tools/smscsim"
)

const (
	opsToken   = "ops-test-token"
	auditToken = "audit-test-token"
	alice      = "254700000001"
	bob        = "254700000002"
	mama       = "254700000900"
	// testOTPSecret is every test switch's key: given, so that no test writes one into
	// the user's config folder (where serve keeps a generated one).
	testOTPSecret = "746573742d6f74702d7365637265742d6b65792d666f722d7061797377697463"
)

// testSwitch is a switch running in-process against a simulated SMSC over loopback SMPP.
type testSwitch struct {
	t     *testing.T
	dir   string
	sim   *smscsim.Sim
	app   *app
	ttl   string
	extra string
	base  string
	clock *switchClock         // the switch's clock, kept across restarts
	dbURL string               // PostgreSQL (serve_postgres_test.go); "": a SQLite file in dir
	tweak func(*config.Config) // when set, changes the config before each start
}

// switchClock is a test switch's clock: the machine's time plus an offset that the test
// moves on, so that a code's TTL passes without the test waiting it out, while what
// runs on real time meanwhile (leases, retries, the SMPP link's timers) keeps running.
type switchClock struct{ offset atomic.Int64 }

func (c *switchClock) now() time.Time { return time.Now().Add(time.Duration(c.offset.Load())) }

// advance moves the clock d on.
func (c *switchClock) advance(d time.Duration) { c.offset.Add(int64(d)) }

func startSwitch(t *testing.T, ttl string) *testSwitch {
	t.Helper()
	return startSwitchWith(t, ttl, "")
}

// startSwitchWith starts a switch whose config has extra appended (top-level YAML).
func startSwitchWith(t *testing.T, ttl, extra string) *testSwitch {
	t.Helper()
	return startSwitchAt(t, t.TempDir(), ttl, extra)
}

// startSwitchAt is startSwitchWith with the database in dir.
func startSwitchAt(t *testing.T, dir, ttl, extra string) *testSwitch {
	t.Helper()
	return startSwitchOn(t, dir, "", ttl, extra)
}

// startSwitchOn is startSwitchAt on the PostgreSQL database dbURL, when it is not "".
func startSwitchOn(t *testing.T, dir, dbURL, ttl, extra string) *testSwitch {
	t.Helper()
	// The phone API too: tests read USSD screens through it, as tools/phone does.
	sim, err := smscsim.Start(smscsim.Config{Listen: "127.0.0.1:0", PhoneAPI: "127.0.0.1:0",
		Accounts: map[string]string{"payswitch": "pw"}, Log: zerolog.Nop()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sim.Close() })
	s := &testSwitch{t: t, dir: dir, sim: sim, ttl: ttl, extra: extra, clock: &switchClock{}, dbURL: dbURL}
	s.start()
	t.Cleanup(func() {
		if s.app != nil {
			s.app.Close()
		}
	})
	return s
}

// startSwitchWithSMPP starts a switch with more keys under smpp (indented two spaces).
func startSwitchWithSMPP(t *testing.T, smppExtra string) *testSwitch {
	t.Helper()
	return startSwitchWith(t, "5m", "\x00smpp:"+smppExtra)
}

func (s *testSwitch) config() *config.Config {
	s.t.Helper()
	database := fmt.Sprintf("  path: %s\n  synchronous: NORMAL", filepath.Join(s.dir, "payswitch.db"))
	if s.dbURL != "" {
		database = fmt.Sprintf("  url: %q", s.dbURL)
	}
	yaml := fmt.Sprintf(`
database:
%s
http:
  listen: 127.0.0.1:0
  tokens:
    - name: ops
      token: ${OPS}
      role: operator
    - name: audit
      token: ${AUDIT}
      role: auditor
currency: KES
shortcode: "22333"
smpp:
  links:
    - name: carrier-a
      address: %s
      system_id: payswitch
      password: pw
      bind: transceiver
      prefixes: []
      tps: 500
%s
otp:
  ttl: %s
  secret: %s
%s
`, database, s.sim.Addr(), smppPart(s.extra), s.ttl, testOTPSecret, topPart(s.extra))
	cfg, err := config.Parse([]byte(yaml), func(k string) string {
		return map[string]string{"OPS": opsToken, "AUDIT": auditToken}[k]
	})
	if err != nil {
		s.t.Fatal(err)
	}
	return cfg
}

func (s *testSwitch) start() {
	s.t.Helper()
	cfg := s.config()
	if s.tweak != nil {
		s.tweak(cfg)
	}
	a, err := startAppWith(context.Background(), cfg, zerolog.Nop(), appOptions{Now: s.clock.now})
	if err != nil {
		s.t.Fatal(err)
	}
	s.app, s.base = a, "http://"+a.httpAddr
	s.waitBound()
}

func (s *testSwitch) stop() {
	s.t.Helper()
	if err := s.app.Close(); err != nil {
		s.t.Logf("close: %v", err)
	}
	s.app = nil
}

// expireCodes moves the switch's clock past a code's TTL ttl (advance) and runs the
// engine's expiry sweep, as its own timer would on that clock.
func (s *testSwitch) expireCodes(ttl time.Duration) {
	s.t.Helper()
	s.advance(ttl + time.Second)
	if _, err := s.app.engine.ExpireDue(context.Background()); err != nil {
		s.t.Fatal(err)
	}
}

// waitRetried waits until the newest message to msisdn has been tried and is queued
// again: the sender found no way to send it.
func (s *testSwitch) waitRetried(msisdn string) {
	s.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		ms, err := s.app.outbox.List(context.Background(), msisdn, 1)
		if err != nil {
			s.t.Fatal(err)
		}
		if len(ms) == 1 && ms[0].Attempts > 0 && ms[0].State == "queued" {
			return
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("the message to %s was never tried: %+v", msisdn, describeMessages(ms))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (s *testSwitch) waitBound() {
	s.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if s.app.links[0].State() == "bound" {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	s.t.Fatal("link never bound")
}

// call makes an API request and decodes the JSON answer into out (if not nil).
func (s *testSwitch) call(method, path, token string, body any, out any) int {
	s.t.Helper()
	var rd *bytes.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	} else {
		rd = bytes.NewReader(nil)
	}
	req, _ := http.NewRequest(method, s.base+path, rd)
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		s.t.Fatal(err)
	}
	defer resp.Body.Close()
	if out != nil {
		json.NewDecoder(resp.Body).Decode(out)
	}
	return resp.StatusCode
}

type accountResp struct {
	ID      string `json:"id"`
	Balance struct {
		Posted, Held, Available int64
	} `json:"balance"`
}

func (s *testSwitch) open(body map[string]string) accountResp {
	s.t.Helper()
	var a accountResp
	if code := s.call("POST", "/api/v1/accounts", opsToken, body, &a); code != http.StatusCreated {
		s.t.Fatalf("open %v: %d", body, code)
	}
	return a
}

func (s *testSwitch) deposit(id string, amount int64, ref string) {
	s.t.Helper()
	if code := s.call("POST", "/api/v1/deposits", opsToken, map[string]any{"account": id, "amount": amount, "reference": ref}, nil); code != http.StatusCreated {
		s.t.Fatalf("deposit: %d", code)
	}
}

func (s *testSwitch) account(id string) accountResp {
	s.t.Helper()
	var a accountResp
	if code := s.call("GET", "/api/v1/accounts/"+id, auditToken, nil, &a); code != http.StatusOK {
		s.t.Fatalf("get account: %d", code)
	}
	return a
}

// phone is a simulated handset: it reads its MT from the SMSC.
type phone struct {
	t      *testing.T
	s      *testSwitch
	msisdn string
	mt     <-chan smscsim.MT
}

func (s *testSwitch) phone(msisdn string) *phone {
	ch, cancel := s.sim.Subscribe(msisdn)
	s.t.Cleanup(cancel)
	return &phone{t: s.t, s: s, msisdn: msisdn, mt: ch}
}

func (p *phone) send(text string) {
	p.t.Helper()
	if err := p.s.sim.SendMO(context.Background(), p.msisdn, "22333", text); err != nil {
		p.t.Fatal(err)
	}
}

// expect waits for the next MT to this phone and checks it contains every want.
func (p *phone) expect(want ...string) string {
	p.t.Helper()
	return expectMT(p.t, p.mt, p.msisdn, want...)
}

// expectMT waits for the next MT on mt, to msisdn, and checks it contains every want.
func expectMT(t *testing.T, mt <-chan smscsim.MT, msisdn string, want ...string) string {
	t.Helper()
	select {
	case m := <-mt:
		for _, w := range want {
			if !strings.Contains(m.Text, w) {
				t.Fatalf("SMS to %s = %q, want it to contain %q", msisdn, m.Text, w)
			}
		}
		return m.Text
	case <-time.After(15 * time.Second):
		t.Fatalf("no SMS to %s (wanted %q)", msisdn, want)
	}
	return ""
}

// expectEventually skips messages until one contains every want: delivery is at least
// once, so a restart may repeat a message whose submit response was lost.
func (p *phone) expectEventually(want ...string) string {
	p.t.Helper()
	deadline := time.After(15 * time.Second)
	for {
		select {
		case m := <-p.mt:
			ok := true
			for _, w := range want {
				ok = ok && strings.Contains(m.Text, w)
			}
			if ok {
				return m.Text
			}
		case <-deadline:
			p.t.Fatalf("no SMS to %s containing %q", p.msisdn, want)
		}
	}
}

var sixDigits = regexp.MustCompile(`(^|[^0-9])([0-9]{6})([^0-9]|$)`)

func codeIn(t *testing.T, text string) string {
	t.Helper()
	m := sixDigits.FindAllStringSubmatch(text, -1)
	if len(m) != 1 {
		t.Fatalf("want one 6-digit code in %q", text)
	}
	return m[0][2]
}

func TestSMSPaymentEndToEndOverSMPP(t *testing.T) {
	s := startSwitch(t, "5m")
	w := s.open(map[string]string{"type": "wallet", "msisdn": alice, "name": "Alice"})
	m := s.open(map[string]string{"type": "merchant", "code": "55501", "name": "Mama Mboga", "msisdn": mama})
	a, shop := s.phone(alice), s.phone(mama)
	s.deposit(w.ID, 100000, "CASHIN-1")
	a.expect("deposited", "KES 1,000.00")

	a.send("PAY 55501 150")
	otpText := a.expect("KES 150.00", "Mama Mboga", "Never share")
	code := codeIn(t, otpText)
	if b := s.account(w.ID).Balance; b.Held != 15000 || b.Available != 85000 {
		t.Fatalf("held after PAY: %+v", b)
	}
	wrong := "000000"
	if code == wrong {
		wrong = "111111"
	}
	a.send(wrong)
	a.expect("Wrong code", "2 tries left")
	a.send(code)
	a.expect("confirmed", "KES 150.00", "KES 850.00")
	shop.expect("received", "KES 150.00", "2547****001")
	if b := s.account(w.ID).Balance; b.Posted != 85000 || b.Held != 0 {
		t.Fatalf("payer after confirm: %+v", b)
	}
	if b := s.account(m.ID).Balance; b.Posted != 15000 {
		t.Fatalf("merchant after confirm: %+v", b)
	}
	var list struct {
		Payments []struct{ ID, State, Type, Channel string }
	}
	if code := s.call("GET", "/api/v1/payments?msisdn=0700000001&limit=5", auditToken, nil, &list); code != 200 ||
		len(list.Payments) != 2 || list.Payments[0].State != "completed" || list.Payments[0].Channel != "sms" {
		t.Fatalf("payments list: %d %+v", code, list)
	}
	var tb struct{ Balanced bool }
	if s.call("GET", "/api/v1/ledger/trial-balance", auditToken, nil, &tb); !tb.Balanced {
		t.Fatal("trial balance off")
	}
}

func TestUnicodeAndLongMessagesTravelBothWays(t *testing.T) {
	s := startSwitch(t, "5m")
	w := s.open(map[string]string{"type": "wallet", "msisdn": alice, "name": "Alice"})
	a := s.phone(alice)
	// Curly quotes from a smartphone keyboard make the MO UCS-2; it is not understood,
	// and the help text comes back.
	a.send("“habari” PAY")
	a.expect("PAY <till> <amount>", "CANCEL")
	for i := range 5 {
		s.deposit(w.ID, 1000, fmt.Sprintf("CASHIN-%d", i))
		a.expect("deposited")
	}
	// MINI lists five payments: longer than one SMS, it arrives as one concatenated text.
	a.send("  mini ")
	mini := a.expect("Last payments:", "+10.00 deposit")
	if len(mini) <= 160 || strings.Count(mini, "\n") != 5 {
		t.Fatalf("MINI = %d chars, %q", len(mini), mini)
	}
}

func TestPendingPaymentSurvivesRestart(t *testing.T) {
	s := startSwitch(t, "5m")
	w := s.open(map[string]string{"type": "wallet", "msisdn": alice, "name": "Alice"})
	s.open(map[string]string{"type": "merchant", "code": "55501", "name": "Mama Mboga", "msisdn": mama})
	a := s.phone(alice)
	s.deposit(w.ID, 100000, "CASHIN-1")
	a.expect("deposited")

	a.send("PAY 55501 100")
	code := codeIn(t, a.expect("KES 100.00"))
	s.stop()
	s.start()
	a.send(code)
	a.expect("confirmed", "KES 900.00")

	// A payment left pending across a restart expires on schedule and frees its hold.
	a.send("PAY 55501 100")
	a.expect("KES 100.00")
	s.stop()
	s.clock.advance(5*time.Minute + time.Second) // the code's whole TTL passes while the switch is down
	s.start()
	a.expectEventually("expired")
	if b := s.account(w.ID).Balance; b.Held != 0 || b.Posted != 90000 {
		t.Fatalf("after expiry across restart: %+v", b)
	}
}

func TestCodeQueuedWhileLinkDownArrivesAfterRebind(t *testing.T) {
	s := startSwitch(t, "5m")
	w := s.open(map[string]string{"type": "wallet", "msisdn": alice, "name": "Alice"})
	s.open(map[string]string{"type": "merchant", "code": "55501", "name": "Mama Mboga"})
	a := s.phone(alice)
	s.sim.SetRefuseBinds(true)
	s.sim.DropConnections()
	// While the link is down the operator credits Alice: the notice waits in the outbox.
	s.deposit(w.ID, 50000, "CASHIN-DOWN")
	s.waitRetried(alice) // the sender tried it on the link that is down
	s.sim.SetRefuseBinds(false)
	a.expect("deposited", "KES 500.00")
	a.send("PAY 55501 10")
	a.expect("KES 10.00", "Never share")
}

func TestAPIAuthAndErrors(t *testing.T) {
	s := startSwitch(t, "5m")
	cases := []struct {
		name, method, path, token string
		body                      any
		want                      int
		code                      string
	}{
		{"no token", "GET", "/api/v1/ledger/trial-balance", "", nil, 401, "unauthorized"},
		{"bad token", "GET", "/api/v1/ledger/trial-balance", "nope", nil, 401, "unauthorized"},
		{"auditor writes", "POST", "/api/v1/accounts", auditToken, map[string]string{"type": "wallet", "msisdn": alice, "name": "A"}, 403, "forbidden"},
		{"bad type", "POST", "/api/v1/accounts", opsToken, map[string]string{"type": "bank", "msisdn": alice, "name": "A"}, 400, "invalid_request"},
		{"unknown field", "POST", "/api/v1/accounts", opsToken, map[string]string{"type": "wallet", "msisdn": alice, "name": "A", "x": "1"}, 400, "invalid_request"},
		{"float amount", "POST", "/api/v1/deposits", opsToken, map[string]any{"account": "x", "amount": 10.5, "reference": "r"}, 400, "invalid_request"},
		{"unknown account", "POST", "/api/v1/deposits", opsToken, map[string]any{"account": "ACNOPE", "amount": 10, "reference": "r"}, 404, "not_found"},
		{"unknown payment", "GET", "/api/v1/payments/AAAAAAAAAA", auditToken, nil, 404, "not_found"},
		{"list without msisdn", "GET", "/api/v1/payments", auditToken, nil, 400, "invalid_request"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var e struct {
				Error struct{ Code, Message string }
			}
			if got := s.call(c.method, c.path, c.token, c.body, &e); got != c.want || e.Error.Code != c.code {
				t.Fatalf("%s %s = %d %+v, want %d %s", c.method, c.path, got, e, c.want, c.code)
			}
		})
	}
	s.open(map[string]string{"type": "wallet", "msisdn": alice, "name": "Alice"})
	if code := s.call("POST", "/api/v1/accounts", opsToken, map[string]string{"type": "wallet", "msisdn": "+254700000001", "name": "B"}, nil); code != 409 {
		t.Fatalf("taken msisdn: %d", code)
	}
	req, _ := http.NewRequest("POST", s.base+"/api/v1/accounts", strings.NewReader("{not json"))
	req.Header.Set("Authorization", "Bearer "+opsToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != 400 {
		t.Fatalf("broken JSON: %v %v", resp.StatusCode, err)
	}
	resp.Body.Close()
	big := strings.NewReader(`{"name":"` + strings.Repeat("a", 1<<20) + `"}`)
	req, _ = http.NewRequest("POST", s.base+"/api/v1/accounts", big)
	req.Header.Set("Authorization", "Bearer "+opsToken)
	resp, err = http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != 413 {
		t.Fatalf("oversized body: %v %v", resp.StatusCode, err)
	}
	resp.Body.Close()
	resp, err = http.Get(s.base + "/healthz")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("healthz: %v %v", resp, err)
	}
	var h struct {
		Status string
		Links  []struct{ Name, State string }
	}
	json.NewDecoder(resp.Body).Decode(&h)
	resp.Body.Close()
	if len(h.Links) != 1 || h.Links[0].State != "bound" {
		t.Fatalf("healthz body: %+v", h)
	}
	resp, err = http.Get(s.base + "/metrics")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("metrics: %v", err)
	}
	var buf bytes.Buffer
	buf.ReadFrom(resp.Body)
	resp.Body.Close()
	if !strings.Contains(buf.String(), "payswitch_http_request_duration_seconds") {
		t.Fatal("metrics lack request latency")
	}
	var tb struct {
		Journal struct {
			LastSeq  int64  `json:"last_seq"`
			LastHash string `json:"last_hash"`
		}
	}
	if s.call("GET", "/api/v1/ledger/trial-balance", auditToken, nil, &tb); len(tb.Journal.LastHash) != 64 {
		t.Fatalf("trial balance journal head: %+v", tb)
	}

	// Guessing tokens: after ten failures in a minute bad tokens get 429, while the
	// right token still works (the guesser must not lock the operator out).
	for range 10 {
		s.call("GET", "/api/v1/ledger/trial-balance", "guess", nil, nil)
	}
	if code := s.call("GET", "/api/v1/ledger/trial-balance", "guess", nil, nil); code != http.StatusTooManyRequests {
		t.Fatalf("a bad token after ten: %d", code)
	}
	if code := s.call("GET", "/api/v1/ledger/trial-balance", auditToken, nil, nil); code != http.StatusOK {
		t.Fatalf("the right token after ten bad ones: %d", code)
	}
}

func TestDepositReplayReturnsFirstResult(t *testing.T) {
	s := startSwitch(t, "5m")
	w := s.open(map[string]string{"type": "wallet", "msisdn": alice, "name": "Alice"})
	var p1, p2 struct{ ID string }
	s.call("POST", "/api/v1/deposits", opsToken, map[string]any{"account": w.ID, "amount": 5000, "reference": "R1"}, &p1)
	code := s.call("POST", "/api/v1/deposits", opsToken, map[string]any{"account": w.ID, "amount": 5000, "reference": "R1"}, &p2)
	if code != 201 || p1.ID == "" || p1.ID != p2.ID {
		t.Fatalf("replay: %d %q %q", code, p1.ID, p2.ID)
	}
	if b := s.account(w.ID).Balance; b.Posted != 5000 {
		t.Fatalf("balance %+v", b)
	}
	if code := s.call("POST", "/api/v1/deposits", opsToken, map[string]any{"account": w.ID, "amount": 7000, "reference": "R1"}, nil); code != 409 {
		t.Fatalf("conflicting replay: %d", code)
	}
}

// The extra YAML of a test switch: keys under smpp come after a "\x00smpp:" mark.
func smppPart(extra string) string {
	if _, after, ok := strings.Cut(extra, "\x00smpp:"); ok {
		return after
	}
	return ""
}

func topPart(extra string) string {
	before, _, _ := strings.Cut(extra, "\x00smpp:")
	return before
}

func TestSecondServeOnTheSameDatabaseIsRefused(t *testing.T) {
	s := startSwitch(t, "5m")
	cfg := s.config()
	ln, err := net.Listen("tcp", "127.0.0.1:0") // any free port: the database is the conflict
	if err != nil {
		t.Fatal(err)
	}
	cfg.HTTP.Listen = ln.Addr().String()
	ln.Close()
	if _, err := startApp(context.Background(), cfg, zerolog.Nop()); err == nil || !strings.Contains(err.Error(), "another payswitch serve") {
		t.Fatalf("second serve on one database: %v", err)
	}
}

// serve collects garbage less often than Go's default, unless the operator says
// otherwise with GOGC.
func TestServeGCPercent(t *testing.T) {
	for _, tc := range []struct {
		name, gogc string
		want       int
		set        bool
	}{
		{"default", "", 400, true},
		{"operator's GOGC", "150", 0, false},
		{"operator turned the collector off", "off", 0, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, set := serveGCPercent(func(k string) string {
				if k == "GOGC" {
					return tc.gogc
				}
				return ""
			})
			if got != tc.want || set != tc.set {
				t.Fatalf("serveGCPercent with GOGC=%q: %d, %v; want %d, %v", tc.gogc, got, set, tc.want, tc.set)
			}
		})
	}
}
