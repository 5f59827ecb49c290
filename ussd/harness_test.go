package ussd

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/payswitch/payswitch/internal/switchtest"
	"github.com/payswitch/payswitch/ledger"
	payswitch "github.com/payswitch/payswitch/switch"
)

var _ Engine = (*payswitch.Engine)(nil)

// harness is a switch on a real database in a temporary directory, with the USSD menus
// served over HTTP on loopback.
type harness struct {
	*switchtest.Rig
	t       testing.TB
	menu    *Menu
	srv     *httptest.Server
	catalog *catalog // what merchants sell
}

const (
	alice = "254700000001"
	bob   = "254700000002"
	mama  = "254700000900"
	till  = "55501"
)

func newHarness(t testing.TB, texts map[string]string) *harness {
	t.Helper()
	return newHarnessWith(t, texts, nil)
}

// newHarnessWith is newHarness with the engine's config changed by engine.
func newHarnessWith(t testing.TB, texts map[string]string, engine func(*payswitch.Config)) *harness {
	t.Helper()
	h := &harness{t: t, catalog: &catalog{m: map[string]payswitch.Product{}}}
	h.Rig = switchtest.New(t, switchtest.Options{Start: time.Date(2026, 11, 21, 9, 0, 0, 0, time.UTC), Products: h.catalog,
		Config: engine})
	var err error
	h.menu, err = New(h.Engine, Config{ServiceCode: "*384#", Texts: texts, Now: h.Clock.Now, Log: zerolog.Nop()})
	if err != nil {
		t.Fatal(err)
	}
	h.srv = httptest.NewServer(h.menu.Handler())
	t.Cleanup(h.srv.Close)
	return h
}

func (h *harness) merchant(code, msisdn string) ledger.Account {
	h.t.Helper()
	return h.Merchant(code, "Mama Mboga", msisdn)
}

// catalog is a payswitch.ProductCatalog in memory, by merchant account ID and product
// code; package merchant's keeps it in the database.
type catalog struct {
	mu sync.Mutex // guards m
	m  map[string]payswitch.Product
}

func (c *catalog) add(merchantID string, p payswitch.Product) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.m[merchantID+"/"+p.Code] = p
}

func (c *catalog) retire(merchantID, code string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.m, merchantID+"/"+code)
}

func (c *catalog) Product(_ context.Context, merchantID, code string) (payswitch.Product, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	p, ok := c.m[merchantID+"/"+code]
	if !ok {
		return payswitch.Product{}, payswitch.ErrUnknownProduct
	}
	return p, nil
}

var codeRun = regexp.MustCompile(`(^|[^0-9])([0-9]{6})([^0-9]|$)`)

// code reads the one-time code out of the newest message to msisdn, which must carry one.
func (h *harness) code(msisdn string) string {
	h.t.Helper()
	ms := h.Messages(msisdn, 1000)
	if len(ms) == 0 || ms[0].Purpose != "otp" {
		h.t.Fatalf("newest message to %s carries no code: %+v", msisdn, ms)
	}
	all := codeRun.FindAllStringSubmatch(ms[0].Text, -1)
	if len(all) != 1 {
		h.t.Fatalf("want one 6-digit run in %q", ms[0].Text)
	}
	return all[0][2]
}

// paymentOfType is the only payment of msisdn of type typ.
func (h *harness) paymentOfType(msisdn string, typ payswitch.PaymentType) *payswitch.Payment {
	h.t.Helper()
	var found []*payswitch.Payment
	for _, p := range h.Payments(msisdn) {
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
