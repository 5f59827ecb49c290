package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/payswitch/payswitch/config"
)

// consoleSwitch is a switch with the demo SMSC on (so the console has its phone), the
// test tokens, and the API's helpers.
type consoleSwitch struct {
	*testSwitch
}

func startConsoleSwitch(t *testing.T) *consoleSwitch {
	t.Helper()
	demo := loopbackPort(t)
	yaml := fmt.Sprintf(`
database: {path: %q, synchronous: NORMAL}
http:
  listen: "127.0.0.1:0"
  tokens:
    - {name: ops, token: "${OPS}", role: operator}
    - {name: audit, token: "${AUDIT}", role: auditor}
currency: KES
shortcode: "22333"
smpp:
  links:
    - {name: carrier-a, address: %q, system_id: payswitch, password: "", tps: 500}
  demo_smsc: {listen: %q, phone_api: ""}
otp: {secret: %s}
`, filepath.Join(t.TempDir(), "payswitch.db"), demo, demo, testOTPSecret)
	cfg, err := config.Parse([]byte(yaml), func(k string) string {
		return map[string]string{"OPS": opsToken, "AUDIT": auditToken}[k]
	})
	if err != nil {
		t.Fatal(err)
	}
	a, err := startApp(context.Background(), cfg, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close() })
	s := &testSwitch{t: t, sim: a.sim, app: a, base: "http://" + a.httpAddr}
	s.waitBound()
	return &consoleSwitch{s}
}

// browser is an HTTP client with a cookie jar that does not follow redirects, so that
// tests see them.
type browser struct {
	t    *testing.T
	base string
	c    *http.Client
}

func (s *consoleSwitch) browser() *browser {
	jar, _ := cookiejar.New(nil)
	return &browser{t: s.t, base: s.base, c: &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error {
		return http.ErrUseLastResponse
	}}}
}

func (b *browser) get(path string) (*http.Response, string) {
	b.t.Helper()
	resp, err := b.c.Get(b.base + path)
	if err != nil {
		b.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp, string(body)
}

func (b *browser) post(path string, form url.Values) (*http.Response, string) {
	b.t.Helper()
	req, _ := http.NewRequest("POST", b.base+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := b.c.Do(req)
	if err != nil {
		b.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp, string(body)
}

var csrfField = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

func csrfOf(t *testing.T, page string) string {
	t.Helper()
	m := csrfField.FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("no CSRF field in page:\n%s", page)
	}
	return m[1]
}

// signIn signs the browser in with token and returns the CSRF token of its session.
func (b *browser) signIn(token string) string {
	b.t.Helper()
	_, page := b.get("/console/login")
	resp, _ := b.post("/console/login", url.Values{"csrf": {csrfOf(b.t, page)}, "token": {token}})
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/console/" {
		b.t.Fatalf("sign in: %d %s", resp.StatusCode, resp.Header.Get("Location"))
	}
	_, page = b.get("/console/")
	return csrfOf(b.t, page)
}

func TestConsoleSignInAndPages(t *testing.T) {
	s := startConsoleSwitch(t)
	alice := s.open(map[string]string{"type": "wallet", "msisdn": alice, "name": "Alice"})
	s.deposit(alice.ID, 500000, "CASH-1")
	b := s.browser()

	resp, _ := b.get("/console/")
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/console/login" {
		t.Fatalf("not signed in: %d %q, want a redirect to the sign-in form", resp.StatusCode, resp.Header.Get("Location"))
	}
	resp, page := b.get("/console/login")
	if !strings.Contains(page, `name="token"`) || !strings.Contains(page, `name="csrf"`) {
		t.Fatalf("sign-in form lacks its fields:\n%s", page)
	}
	b.signIn(opsToken)
	for _, path := range []string{"/console/", "/console/live", "/console/accounts/" + alice.ID, "/console/cash",
		"/console/audit", "/console/phone?n=" + alice.ID[:0] + "254700000001"} {
		resp, page := b.get(path)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("%s: %d\n%s", path, resp.StatusCode, page)
		}
		if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'self'") || strings.Contains(csp, "unsafe") {
			t.Fatalf("%s: CSP %q", path, csp)
		}
	}
	resp, _ = b.get("/console/find?q=254700000001")
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/console/accounts/"+alice.ID {
		t.Fatalf("find by number: %d %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	_ = time.Second
}
