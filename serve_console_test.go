package main

import (
	"archive/zip"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/rs/zerolog"

	"github.com/payswitch/payswitch/audit"
	"github.com/payswitch/payswitch/config"
)

// consoleSwitch is a switch with the demo SMSC on (so the console has its phone), the
// test tokens, and the API's helpers.
type consoleSwitch struct {
	*testSwitch
}

func startConsoleSwitch(t *testing.T) *consoleSwitch {
	t.Helper()
	return startConsoleSwitchWith(t, "")
}

// startConsoleSwitchWith starts a consoleSwitch whose link to the demo SMSC has linkExtra
// in its YAML mapping, e.g. ", ussd_push: true".
func startConsoleSwitchWith(t *testing.T, linkExtra string) *consoleSwitch {
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
    - {name: carrier-a, address: %q, system_id: payswitch, password: "", tps: 500%s}
  demo_smsc: {listen: %q, phone_api: ""}
otp: {secret: %s}
`, filepath.Join(t.TempDir(), "payswitch.db"), demo, linkExtra, demo, testOTPSecret)
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
	shop := s.open(map[string]string{"type": "merchant", "code": "55501", "name": "Mama Mboga"})
	b := s.browser()

	resp, _ := b.get("/console/")
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/console/login" {
		t.Fatalf("not signed in: %d %q, want a redirect to the sign-in form", resp.StatusCode, resp.Header.Get("Location"))
	}
	_, page := b.get("/console/login")
	if !strings.Contains(page, `name="token"`) || !strings.Contains(page, `name="csrf"`) {
		t.Fatalf("sign-in form lacks its fields:\n%s", page)
	}
	b.signIn(opsToken)
	for _, path := range []string{"/console/", "/console/live", "/console/accounts/" + alice.ID, "/console/cash",
		"/console/audit", "/console/phone?n=254700000001"} {
		resp, page := b.get(path)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("%s: %d\n%s", path, resp.StatusCode, page)
		}
		if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'self'") || strings.Contains(csp, "unsafe") {
			t.Fatalf("%s: CSP %q", path, csp)
		}
	}
	for q, want := range map[string]string{"254700000001": "/console/accounts/" + alice.ID,
		"0700000001": "/console/accounts/" + alice.ID, alice.ID: "/console/accounts/" + alice.ID,
		"55501": "/console/accounts/" + shop.ID} {
		resp, _ = b.get("/console/find?q=" + url.QueryEscape(q))
		if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != want {
			t.Fatalf("find %s: %d %q, want %s", q, resp.StatusCode, resp.Header.Get("Location"), want)
		}
	}

	// Freeze and reactivate, each with a reason; a frozen account cannot be paid into.
	_, page = b.get("/console/accounts/" + alice.ID)
	csrf := csrfOf(t, page)
	if resp, _ := b.post("/console/accounts/"+alice.ID+"/status", url.Values{"csrf": {csrf}, "status": {"frozen"}}); resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("freeze without a reason: %d, want 400", resp.StatusCode)
	}
	resp, _ = b.post("/console/accounts/"+alice.ID+"/status", url.Values{"csrf": {csrf}, "status": {"frozen"}, "reason": {"suspected fraud"}})
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("freeze: %d", resp.StatusCode)
	}
	var acc struct{ Status string }
	s.call("GET", "/api/v1/accounts/"+alice.ID, auditToken, nil, &acc)
	if acc.Status != "frozen" {
		t.Fatalf("status %q after freeze", acc.Status)
	}
	resp, page = b.post("/console/cash", url.Values{"csrf": {csrf}, "account": {alice.ID}, "amount": {"10"}, "reference": {"FROZEN-1"}})
	if resp.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(page, "not active") || strings.Contains(page, "console: ") {
		t.Fatalf("deposit to a frozen account: %d\n%s", resp.StatusCode, page)
	}
	b.post("/console/accounts/"+alice.ID+"/status", url.Values{"csrf": {csrf}, "status": {"active"}, "reason": {"cleared"}})
	s.call("GET", "/api/v1/accounts/"+alice.ID, auditToken, nil, &acc)
	if acc.Status != "active" {
		t.Fatalf("status %q after reactivation", acc.Status)
	}
	// A refused reversal says why, on the payment's page.
	var dep struct{ ID string }
	s.call("POST", "/api/v1/deposits", opsToken, map[string]any{"account": alice.ID, "amount": 100, "reference": "CASH-2"}, &dep)
	resp, _ = b.post("/console/payments/NOSUCHPAY1/reverse", url.Values{"csrf": {csrf}, "reason": {"x"}, "reference": {"R-0"}})
	if resp.StatusCode != http.StatusNotFound {
		t.Fatalf("reverse an unknown payment: %d", resp.StatusCode)
	}
	resp, page = b.post("/console/payments/"+dep.ID+"/reverse", url.Values{"csrf": {csrf}, "reason": {"x"}})
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(page, "needs a reason and a reference") {
		t.Fatalf("reverse without a reference: %d", resp.StatusCode)
	}
	if resp, _ = b.post("/console/payments/"+dep.ID+"/reverse", url.Values{"csrf": {csrf}, "reason": {"x"}, "reference": {"R-1"}}); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("reverse: %d", resp.StatusCode)
	}
	resp, page = b.post("/console/payments/"+dep.ID+"/reverse", url.Values{"csrf": {csrf}, "reason": {"x"}, "reference": {"R-2"}})
	if resp.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(page, "Not reversed: ") || strings.Contains(page, "console: ") {
		t.Fatalf("reverse twice: %d\n%s", resp.StatusCode, page)
	}
}

// XSS: names, references, reasons and SMS texts that users and merchants control are
// rendered as text on every page that shows them.
func TestConsoleRendersMarkupAsText(t *testing.T) {
	s := startConsoleSwitch(t)
	const evil = `<script>alert(1)</script>`
	const evilRef = `<img/src=x/onerror=alert(2)>`
	const evilReason = `<b onmouseover="alert(3)">refund</b> & co`
	payer := s.open(map[string]string{"type": "wallet", "msisdn": alice, "name": evil})
	shop := s.open(map[string]string{"type": "merchant", "code": "55501", "name": evil, "msisdn": mama})
	s.deposit(payer.ID, 100000, evilRef)
	p := s.phone(alice)
	p.send("PAY 55501 100 " + evilRef)
	code := codeIn(t, p.expectEventually("Reply with code"))
	p.send(code)
	receipt := p.expectEventually("confirmed")
	id := paymentIDIn.FindString(receipt)

	b := s.browser()
	csrf := b.signIn(opsToken)
	resp, page := b.post("/console/payments/"+id+"/reverse", url.Values{"csrf": {csrf}, "reason": {evilReason}, "reference": {"REV-1"}})
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("reverse: %d\n%s", resp.StatusCode, page)
	}
	var deposit string
	_, accountPage := b.get("/console/accounts/" + payer.ID)
	if m := regexp.MustCompile(`/console/payments/([A-Z0-9]{10})"`).FindAllStringSubmatch(accountPage, -1); len(m) > 0 {
		for _, x := range m {
			if x[1] != id {
				deposit = x[1]
			}
		}
	}
	pages := map[string]string{"account": accountPage}
	for name, path := range map[string]string{
		"payment":  "/console/payments/" + id,
		"deposit":  "/console/payments/" + deposit,
		"merchant": "/console/accounts/" + shop.ID,
		"find":     "/console/find?q=" + url.QueryEscape("script"),
		"phone":    "/console/phone?n=" + alice,
	} {
		resp, body := b.get(path)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("%s: %d", path, resp.StatusCode)
		}
		pages[name] = body
	}
	for name, body := range pages {
		for _, raw := range []string{evil, evilRef, `<b onmouseover`, `<img`} {
			if strings.Contains(body, raw) {
				t.Errorf("%s page has %q unescaped", name, raw)
			}
		}
	}
	if !strings.Contains(pages["payment"], "&lt;script&gt;alert(1)&lt;/script&gt;") ||
		!strings.Contains(pages["payment"], "&lt;b onmouseover=&#34;alert(3)&#34;&gt;refund&lt;/b&gt; &amp; co") {
		t.Errorf("the payment page does not show the name and the reason as text")
	}
	if !strings.Contains(pages["deposit"], "&lt;img/src=x/onerror=alert(2)&gt;") {
		t.Errorf("the deposit's page does not show its reference as text")
	}
	if !strings.Contains(pages["find"], "/console/accounts/"+payer.ID) {
		t.Errorf("a search by part of a name does not find the account")
	}
}

// Every write needs the session's CSRF token: without it (or with another session's),
// 403 and nothing changes. The sign-in form has its own token.
func TestConsoleWritesNeedTheCSRFToken(t *testing.T) {
	s := startConsoleSwitch(t)
	acc := s.open(map[string]string{"type": "wallet", "msisdn": alice, "name": "Alice"})
	b := s.browser()
	csrf := b.signIn(opsToken)
	other := s.browser()
	otherCSRF := other.signIn(opsToken)
	if otherCSRF == csrf {
		t.Fatal("two sessions share a CSRF token")
	}
	for name, form := range map[string]url.Values{
		"none":    {"account": {acc.ID}, "amount": {"100"}, "reference": {"X-1"}},
		"empty":   {"csrf": {""}, "account": {acc.ID}, "amount": {"100"}, "reference": {"X-2"}},
		"another": {"csrf": {otherCSRF}, "account": {acc.ID}, "amount": {"100"}, "reference": {"X-3"}},
	} {
		resp, _ := b.post("/console/cash", form)
		if resp.StatusCode != http.StatusForbidden {
			t.Errorf("deposit with %s CSRF token: %d, want 403", name, resp.StatusCode)
		}
	}
	resp, _ := b.post("/console/accounts/"+acc.ID+"/status", url.Values{"status": {"frozen"}, "reason": {"test"}})
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("freeze without CSRF token: %d, want 403", resp.StatusCode)
	}
	resp, _ = b.post("/console/logout", url.Values{})
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("sign-out without CSRF token: %d, want 403", resp.StatusCode)
	}
	if a := s.account(acc.ID); a.Balance.Posted != 0 {
		t.Fatalf("balance %d after refused deposits", a.Balance.Posted)
	}
	var status struct{ Status string }
	s.call("GET", "/api/v1/accounts/"+acc.ID, auditToken, nil, &status)
	if status.Status != "active" {
		t.Fatalf("status %q after a refused freeze", status.Status)
	}
	// The right token works, and the same reference twice books once.
	for range 2 {
		resp, _ = b.post("/console/cash", url.Values{"csrf": {csrf}, "account": {alice}, "amount": {"1,000.50"}, "reference": {"SLIP-1"}})
		if resp.StatusCode != http.StatusSeeOther {
			t.Fatalf("deposit: %d", resp.StatusCode)
		}
	}
	if a := s.account(acc.ID); a.Balance.Posted != 100050 {
		t.Fatalf("balance %d, want 100050", a.Balance.Posted)
	}
	// A sign-in without the form's token is refused even with a good token.
	anon := s.browser()
	resp, _ = anon.post("/console/login", url.Values{"token": {opsToken}})
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("sign-in without its CSRF token: %d, want 403", resp.StatusCode)
	}
	// A cross-site form post is refused even with the token (Sec-Fetch-Site).
	req, _ := http.NewRequest("POST", s.base+"/console/cash", strings.NewReader(url.Values{"csrf": {csrf},
		"account": {acc.ID}, "amount": {"1"}, "reference": {"X-4"}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Sec-Fetch-Site", "cross-site")
	if r, err := b.c.Do(req); err != nil || r.StatusCode != http.StatusForbidden {
		t.Errorf("cross-site post: %v %v, want 403", r.StatusCode, err)
	}
}

// A cookie copied from a browser dies when that browser signs out: the session is
// forgotten on the server, not only deleted from the browser.
func TestConsoleStolenCookieDiesAtSignOut(t *testing.T) {
	s := startConsoleSwitch(t)
	b := s.browser()
	csrf := b.signIn(opsToken)
	u, _ := url.Parse(s.base + "/console/")
	var stolen *http.Cookie
	for _, c := range b.c.Jar.Cookies(u) {
		if c.Name == "payswitch_console" {
			stolen = c
		}
	}
	if stolen == nil {
		t.Fatal("no session cookie")
	}
	thief := s.browser()
	thief.c.Jar.SetCookies(u, []*http.Cookie{stolen})
	if resp, _ := thief.get("/console/"); resp.StatusCode != http.StatusOK {
		t.Fatalf("copied cookie before sign-out: %d", resp.StatusCode)
	}
	if resp, _ := b.post("/console/logout", url.Values{"csrf": {csrf}}); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("sign out: %d", resp.StatusCode)
	}
	resp, _ := thief.get("/console/")
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/console/login" {
		t.Fatalf("copied cookie after sign-out: %d %q, want a redirect to sign in", resp.StatusCode, resp.Header.Get("Location"))
	}
	resp, _ = thief.post("/console/cash", url.Values{"csrf": {csrf}, "account": {"x"}, "amount": {"1"}, "reference": {"R"}})
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("post with the copied cookie after sign-out: %d, want 401", resp.StatusCode)
	}
}

// Every console answer carries the strict CSP and the other headers, the sign-in form
// and error pages included; the session cookie is HttpOnly and SameSite=Strict.
func TestConsoleHeadersAndCookie(t *testing.T) {
	s := startConsoleSwitch(t)
	b := s.browser()
	check := func(path string, resp *http.Response) {
		t.Helper()
		want := "default-src 'self'; script-src 'self'; style-src 'self'"
		if csp := resp.Header.Get("Content-Security-Policy"); !strings.HasPrefix(csp, want) ||
			!strings.Contains(csp, "frame-ancestors 'none'") || strings.Contains(csp, "unsafe") {
			t.Errorf("%s: CSP %q", path, csp)
		}
		if resp.Header.Get("X-Content-Type-Options") != "nosniff" || resp.Header.Get("X-Frame-Options") != "DENY" {
			t.Errorf("%s: headers %v", path, resp.Header)
		}
	}
	resp, page := b.get("/console/login")
	check("/console/login", resp)
	if strings.Contains(page, "<script>") || strings.Contains(page, " style=") || strings.Contains(page, "<style") {
		t.Errorf("the sign-in page has inline script or style")
	}
	resp, _ = b.post("/console/login", url.Values{"csrf": {csrfOf(t, page)}, "token": {opsToken}})
	var session *http.Cookie
	for _, c := range resp.Cookies() {
		if c.Name == "payswitch_console" {
			session = c
		}
	}
	if session == nil || !session.HttpOnly || session.SameSite != http.SameSiteStrictMode || session.Secure {
		t.Fatalf("session cookie %+v: want HttpOnly, SameSite=Strict, not Secure on plain HTTP", session)
	}
	for _, path := range []string{"/console/", "/console/nope", "/console/payments/NOSUCHPAY1", "/console/assets/console.css"} {
		resp, body := b.get(path)
		check(path, resp)
		if strings.HasSuffix(path, ".css") {
			continue
		}
		if strings.Contains(body, " style=") || strings.Contains(body, "<style") || regexp.MustCompile(`<script>|<script [^s]`).MatchString(body) {
			t.Errorf("%s has inline script or style", path)
		}
	}
}

// An auditor reads every page but the server refuses its writes, whatever the form.
func TestConsoleAuditorChangesNothing(t *testing.T) {
	s := startConsoleSwitch(t)
	acc := s.open(map[string]string{"type": "wallet", "msisdn": alice, "name": "Alice"})
	s.deposit(acc.ID, 100000, "CASH-1")
	var deposit struct{ ID string }
	s.call("POST", "/api/v1/deposits", opsToken, map[string]any{"account": acc.ID, "amount": 500, "reference": "CASH-2"}, &deposit)
	b := s.browser()
	csrf := b.signIn(auditToken)
	for _, path := range []string{"/console/", "/console/accounts/" + acc.ID, "/console/payments/" + deposit.ID, "/console/audit", "/console/cash"} {
		resp, body := b.get(path)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("auditor %s: %d", path, resp.StatusCode)
		}
		for _, form := range []string{`action="/console/cash"`, `/reverse"`, `/status"`, `action="/console/phone`} {
			if strings.Contains(body, form) {
				t.Errorf("auditor is shown the form %s on %s", form, path)
			}
		}
	}
	for path, form := range map[string]url.Values{
		"/console/cash": {"account": {acc.ID}, "amount": {"5"}, "reference": {"A-1"}},
		"/console/payments/" + deposit.ID + "/reverse": {"reason": {"x"}, "reference": {"A-2"}},
		"/console/accounts/" + acc.ID + "/status":      {"status": {"frozen"}, "reason": {"x"}},
		"/console/phone/sms":                           {"n": {alice}, "text": {"BAL"}},
	} {
		form.Set("csrf", csrf)
		if resp, _ := b.post(path, form); resp.StatusCode != http.StatusForbidden {
			t.Errorf("auditor POST %s: %d, want 403", path, resp.StatusCode)
		}
	}
	if resp, _ := b.get("/console/phone"); resp.StatusCode != http.StatusForbidden {
		t.Errorf("auditor phone: %d, want 403", resp.StatusCode)
	}
	if a := s.account(acc.ID); a.Balance.Posted != 100500 {
		t.Fatalf("balance %d after an auditor's refused writes", a.Balance.Posted)
	}
	var p struct{ State string }
	s.call("GET", "/api/v1/payments/"+deposit.ID, auditToken, nil, &p)
	if p.State != "completed" {
		t.Fatalf("payment %s after an auditor's refused reverse", p.State)
	}
	// The export is a read: an auditor may download it.
	resp, body := b.post("/console/audit/export", url.Values{"csrf": {csrf}})
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "application/zip" || !strings.HasPrefix(body, "PK") {
		t.Fatalf("export: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	zr, err := zip.NewReader(strings.NewReader(body), int64(len(body)))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	var exported string
	for _, f := range zr.File {
		exported = filepath.Join(dir, filepath.Dir(f.Name))
		os.MkdirAll(exported, 0o700)
		rc, err := f.Open()
		if err != nil {
			t.Fatal(err)
		}
		data, _ := io.ReadAll(rc)
		rc.Close()
		if err := os.WriteFile(filepath.Join(dir, f.Name), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if m, err := audit.Verify(exported); err != nil || m.Files[audit.JournalFile].Rows != 4 {
		t.Fatalf("the downloaded export does not verify: %v (%d journal rows)", err, m.Files[audit.JournalFile].Rows)
	}
}

// Ten failed sign-ins from an address in a minute lock it out for the rest of the
// minute, as the API's bad tokens do.
func TestConsoleSignInThrottle(t *testing.T) {
	s := startConsoleSwitch(t)
	b := s.browser()
	for i := range 10 {
		_, page := b.get("/console/login")
		resp, _ := b.post("/console/login", url.Values{"csrf": {csrfOf(t, page)}, "token": {fmt.Sprintf("guess-%d", i)}})
		if resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("guess %d: %d, want 401", i, resp.StatusCode)
		}
	}
	_, page := b.get("/console/login")
	resp, _ := b.post("/console/login", url.Values{"csrf": {csrfOf(t, page)}, "token": {"guess-10"}})
	if resp.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("11th guess: %d, want 429", resp.StatusCode)
	}
}
