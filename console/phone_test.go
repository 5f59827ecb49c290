package console

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakePhone is a handset on a demo SMSC in memory: the pushed screen of each number,
// and the answers keyed into it.
type fakePhone struct {
	mu      sync.Mutex
	screens map[string]PushedScreen
	answers []string // "number: input"
}

func (p *fakePhone) SendSMS(context.Context, string, string) error { return nil }
func (p *fakePhone) Thread(string) []PhoneMessage                  { return nil }
func (p *fakePhone) USSD(context.Context, string, string, string, bool) (string, bool, error) {
	return "", true, nil
}
func (p *fakePhone) ServiceCode() string { return "*384#" }
func (p *fakePhone) Numbers() []string   { return nil }

func (p *fakePhone) PushedScreen(number string) (PushedScreen, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	sc, ok := p.screens[number]
	return sc, ok
}

func (p *fakePhone) AnswerPushed(_ context.Context, number, input string) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	sc, ok := p.screens[number]
	if !ok || !sc.Open {
		return fmt.Errorf("%w: no screen waits", ErrNotFound)
	}
	p.answers = append(p.answers, number+": "+input)
	sc.Open = false
	p.screens[number] = sc
	return nil
}

func (p *fakePhone) push(number, text string, open bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.screens[number] = PushedScreen{From: "*384#", Text: text, Open: open, Time: time.Date(2026, 3, 1, 8, 0, 5, 0, time.UTC)}
}

func (p *fakePhone) answered() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.answers...)
}

type phoneBackend struct {
	stubBackend
	phone *fakePhone
}

func (b phoneBackend) Phone() Phone { return b.phone }

func newPhoneConsole(t *testing.T) (*httptest.Server, *fakePhone) {
	t.Helper()
	p := &fakePhone{screens: map[string]PushedScreen{}}
	c, err := New(phoneBackend{phone: p}, Config{Tokens: []Token{
		{Name: "ops", Token: "ops-secret", Role: Operator}, {Name: "audit", Token: "audit-secret", Role: Auditor}}})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(c)
	t.Cleanup(srv.Close)
	return srv, p
}

func get(t *testing.T, c *http.Client, u string) (int, string) {
	t.Helper()
	resp, err := c.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

const pushedText = "Mama <b>Mboga</b> (55501) requests KES 150.00, ref AB12CD34EF, valid 10 min.\n1. Pay\n2. Refuse"

// A screen the network pushed to the number shows on the phone page, as text, with a
// form that answers it; the answer goes to the SMSC and the page comes back.
func TestPhoneShowsAndAnswersPushedScreen(t *testing.T) {
	srv, p := newPhoneConsole(t)
	c := client()
	signIn(t, c, srv.URL, "ops-secret")
	const n = "254700000001"

	code, page := get(t, c, srv.URL+"/console/phone?n="+n)
	if code != http.StatusOK || strings.Contains(page, "Pushed by") || !strings.Contains(page, `hx-get="/console/phone/pushed?n=`+n+`"`) {
		t.Fatalf("phone with nothing pushed: %d, want a polled empty box:\n%s", code, page)
	}

	p.push(n, pushedText, true)
	code, page = get(t, c, srv.URL+"/console/phone?n="+n)
	if code != http.StatusOK {
		t.Fatalf("phone: %d", code)
	}
	for _, want := range []string{"Mama &lt;b&gt;Mboga&lt;/b&gt; (55501) requests KES 150.00", "1. Pay\n2. Refuse",
		"Pushed by *384# at 08:00:05, waiting for an answer", `action="/console/phone/pushed"`} {
		if !strings.Contains(page, want) {
			t.Errorf("phone page lacks %q", want)
		}
	}
	if strings.Contains(page, "<b>Mboga") {
		t.Error("the pushed text is not escaped")
	}
	// While the screen waits for an answer its box is not polled: a poll would sweep
	// away what the user is typing.
	box := page[strings.Index(page, `<div id="pushed"`):]
	if box = box[:strings.Index(box, ">")]; strings.Contains(box, "hx-trigger") {
		t.Errorf("an open pushed screen is polled: %s", box)
	}
	csrf := csrfRe.FindStringSubmatch(page)[1]

	// Without the CSRF token nothing is answered.
	resp, err := c.PostForm(srv.URL+"/console/phone/pushed", url.Values{"n": {n}, "input": {"1"}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden || len(p.answered()) != 0 {
		t.Fatalf("answer without CSRF: %d, answers %v", resp.StatusCode, p.answered())
	}

	resp, err = c.PostForm(srv.URL+"/console/phone/pushed", url.Values{"csrf": {csrf}, "n": {n}, "input": {" 1 "}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/console/phone?n="+n {
		t.Fatalf("answer: %d %s", resp.StatusCode, resp.Header.Get("Location"))
	}
	if got := p.answered(); len(got) != 1 || got[0] != n+": 1" {
		t.Fatalf("answers %v", got)
	}

	// The screen no longer waits: the box polls for the network's next one.
	code, frag := get(t, c, srv.URL+"/console/phone/pushed?n="+n)
	if code != http.StatusOK || !strings.HasPrefix(frag, `<div id="pushed" hx-get="/console/phone/pushed?n=`+n+`" hx-trigger="every 2s" hx-swap="outerHTML">`) ||
		!strings.Contains(frag, ", ended") || strings.Contains(frag, "<form") || strings.Contains(frag, "<html") {
		t.Fatalf("polled box after the answer: %d\n%s", code, frag)
	}
	p.push(n, "Enter the code we sent you by SMS.", true)
	if _, frag = get(t, c, srv.URL+"/console/phone/pushed?n="+n); !strings.Contains(frag, "Enter the code we sent you by SMS.") ||
		!strings.Contains(frag, `name="csrf" value="`+csrf+`"`) || strings.Contains(frag, "hx-trigger") {
		t.Fatalf("polled box with the next screen:\n%s", frag)
	}

	// An answer to a screen that no longer waits says so and sends nothing.
	p.push(n, "Done.", false)
	resp, err = c.PostForm(srv.URL+"/console/phone/pushed", url.Values{"csrf": {csrf}, "n": {n}, "input": {"2"}})
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(body), "No pushed USSD screen waits for an answer") || len(p.answered()) != 1 {
		t.Fatalf("answer to an ended screen: %d answers\n%s", len(p.answered()), body)
	}
	for _, bad := range []url.Values{{"csrf": {csrf}, "n": {n}, "input": {""}},
		{"csrf": {csrf}, "n": {n}, "input": {strings.Repeat("1", 183)}}} {
		p.push(n, pushedText, true)
		resp, err = c.PostForm(srv.URL+"/console/phone/pushed", bad)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if !strings.Contains(string(body), "A USSD answer has 1 to 182 characters.") || len(p.answered()) != 1 {
			t.Fatalf("answer of %d characters: %d answers\n%s", len(bad.Get("input")), len(p.answered()), body)
		}
	}
	resp, err = c.PostForm(srv.URL+"/console/phone/pushed", url.Values{"csrf": {csrf}, "n": {"12ab"}, "input": {"1"}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest || len(p.answered()) != 1 {
		t.Fatalf("answer for a bad number: %d", resp.StatusCode)
	}
}

// The phone is an operator's: an auditor can neither see nor answer a pushed screen.
func TestPhonePushedIsOperatorsOnly(t *testing.T) {
	srv, p := newPhoneConsole(t)
	const n = "254700000001"
	p.push(n, pushedText, true)
	c := client()
	signIn(t, c, srv.URL, "audit-secret")
	_, page := get(t, c, srv.URL+"/console/")
	csrf := csrfRe.FindStringSubmatch(page)[1]
	if code, body := get(t, c, srv.URL+"/console/phone/pushed?n="+n); code != http.StatusForbidden || strings.Contains(body, "requests KES") {
		t.Fatalf("auditor polls the pushed screen: %d", code)
	}
	resp, err := c.PostForm(srv.URL+"/console/phone/pushed", url.Values{"csrf": {csrf}, "n": {n}, "input": {"1"}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden || len(p.answered()) != 0 {
		t.Fatalf("auditor answers: %d, answers %v", resp.StatusCode, p.answered())
	}
}
