package ussd

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/payswitch/payswitch/ledger"
	"github.com/payswitch/payswitch/otp"
	"github.com/payswitch/payswitch/outbox"
	"github.com/payswitch/payswitch/store"
	payswitch "github.com/payswitch/payswitch/switch"
)

var _ Engine = (*payswitch.Engine)(nil)

// clock is a test clock: time moves only when the test says so.
type clock struct {
	mu sync.Mutex // guards t
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// harness is a switch on a real database in a temporary directory, with the USSD menus
// served over HTTP on loopback.
type harness struct {
	t      testing.TB
	clock  *clock
	db     *store.DB
	ledger *ledger.Ledger
	outbox *outbox.Outbox
	engine *payswitch.Engine
	menu   *Menu
	srv    *httptest.Server
}

const (
	alice = "254700000001"
	bob   = "254700000002"
	mama  = "254700000900"
	till  = "55501"
)

func newHarness(t testing.TB, texts map[string]string) *harness {
	t.Helper()
	h := &harness{t: t, clock: &clock{t: time.Date(2026, 11, 21, 9, 0, 0, 0, time.UTC)}}
	db, err := store.Open(filepath.Join(t.TempDir(), "payswitch.db"), store.Options{Synchronous: "NORMAL"},
		ledger.Schema, otp.Schema, outbox.Schema, payswitch.Schema)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	iss, err := otp.NewIssuer([]byte("0123456789abcdef0123456789abcdef"),
		otp.Config{Digits: 6, TTL: 5 * time.Minute, MaxAttempts: 3})
	if err != nil {
		t.Fatal(err)
	}
	h.db = db
	h.ledger = ledger.New(db, h.clock.Now)
	h.outbox = outbox.New(db, h.clock.Now)
	h.engine, err = payswitch.New(payswitch.Config{Currency: "KES", Shortcode: "22333", CountryCode: "254",
		MinAmount: 100, MaxAmount: 15000000, DailyMax: 30000000},
		payswitch.Deps{DB: db, Ledger: h.ledger, OTP: iss, Outbox: h.outbox, Now: h.clock.Now, Log: zerolog.Nop()})
	if err != nil {
		t.Fatal(err)
	}
	h.menu, err = New(h.engine, Config{ServiceCode: "*384#", Texts: texts, Now: h.clock.Now, Log: zerolog.Nop()})
	if err != nil {
		t.Fatal(err)
	}
	h.srv = httptest.NewServer(h.menu.Handler())
	t.Cleanup(h.srv.Close)
	return h
}

func (h *harness) wallet(msisdn string, balance int64) ledger.Account {
	h.t.Helper()
	ctx := context.Background()
	a, err := h.engine.OpenAccount(ctx, payswitch.OpenAccount{Type: ledger.Wallet, Name: "W" + msisdn[len(msisdn)-3:], MSISDN: msisdn})
	if err != nil {
		h.t.Fatal(err)
	}
	if balance > 0 {
		if _, err := h.engine.Deposit(ctx, payswitch.Deposit{Account: a.ID, Amount: balance, Reference: "seed-" + msisdn}); err != nil {
			h.t.Fatal(err)
		}
	}
	return a
}

func (h *harness) merchant(code, msisdn string) ledger.Account {
	h.t.Helper()
	a, err := h.engine.OpenAccount(context.Background(), payswitch.OpenAccount{Type: ledger.Merchant, Name: "Mama Mboga", Code: code, MSISDN: msisdn})
	if err != nil {
		h.t.Fatal(err)
	}
	return a
}

func (h *harness) balance(id string) ledger.Balance {
	h.t.Helper()
	a, err := h.ledger.Account(context.Background(), id)
	if err != nil {
		h.t.Fatal(err)
	}
	return a.Balance
}

func (h *harness) messages(msisdn string) []outbox.Message {
	h.t.Helper()
	ms, err := h.outbox.List(context.Background(), msisdn, 1000)
	if err != nil {
		h.t.Fatal(err)
	}
	return ms
}

var codeRun = regexp.MustCompile(`(^|[^0-9])([0-9]{6})([^0-9]|$)`)

// code reads the one-time code out of the newest message to msisdn, which must carry one.
func (h *harness) code(msisdn string) string {
	h.t.Helper()
	ms := h.messages(msisdn)
	if len(ms) == 0 || ms[0].Purpose != "otp" {
		h.t.Fatalf("newest message to %s carries no code: %+v", msisdn, ms)
	}
	all := codeRun.FindAllStringSubmatch(ms[0].Text, -1)
	if len(all) != 1 {
		h.t.Fatalf("want one 6-digit run in %q", ms[0].Text)
	}
	return all[0][2]
}

func (h *harness) payments(msisdn string) []*payswitch.Payment {
	h.t.Helper()
	ps, err := h.engine.Payments(context.Background(), msisdn, 100)
	if err != nil {
		h.t.Fatal(err)
	}
	return ps
}

// paymentOfType is the only payment of msisdn of type typ.
func (h *harness) paymentOfType(msisdn string, typ payswitch.PaymentType) *payswitch.Payment {
	h.t.Helper()
	var found []*payswitch.Payment
	for _, p := range h.payments(msisdn) {
		if p.Type == typ {
			found = append(found, p)
		}
	}
	if len(found) != 1 {
		h.t.Fatalf("%d payments of type %s, want 1", len(found), typ)
	}
	return found[0]
}

// post sends one callback form and returns the status and body.
func (h *harness) post(form url.Values) (int, string) {
	h.t.Helper()
	resp, err := http.PostForm(h.srv.URL+"/ussd", form)
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		h.t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

// gateway plays an aggregator for one dialogue: it keeps every input so far and posts
// them joined by '*' on each request, as gateways do.
type gateway struct {
	h      *harness
	sid    string
	phone  string
	inputs []string
}

func (h *harness) dial(sid, phone string) (*gateway, string) {
	g := &gateway{h: h, sid: sid, phone: phone}
	return g, g.request()
}

// send adds one input (which may itself hold '*') and returns the answer.
func (g *gateway) send(input string) string {
	g.inputs = append(g.inputs, input)
	return g.request()
}

func (g *gateway) request() string {
	g.h.t.Helper()
	code, body := g.h.post(url.Values{"sessionId": {g.sid}, "serviceCode": {"*384#"},
		"phoneNumber": {"+" + g.phone}, "networkCode": {"63902"}, "text": {strings.Join(g.inputs, "*")}})
	if code != http.StatusOK {
		g.h.t.Fatalf("POST /ussd %q: %d %q", strings.Join(g.inputs, "*"), code, body)
	}
	checkAnswer(g.h.t, body)
	return body
}

// checkAnswer fails unless body is a CON or END screen that fits a phone.
func checkAnswer(t testing.TB, body string) {
	t.Helper()
	if !strings.HasPrefix(body, "CON ") && !strings.HasPrefix(body, "END ") {
		t.Fatalf("answer %q is neither CON nor END", body)
	}
	if n := len([]rune(body)); n > MaxScreen {
		t.Fatalf("answer of %d characters: %q", n, body)
	}
}

func wantPrefix(t testing.TB, got, want string) {
	t.Helper()
	if !strings.HasPrefix(got, want) {
		t.Fatalf("answer %q, want it to start with %q", got, want)
	}
}

func wantContains(t testing.TB, got string, wants ...string) {
	t.Helper()
	for _, w := range wants {
		if !strings.Contains(got, w) {
			t.Fatalf("answer %q lacks %q", got, w)
		}
	}
}
