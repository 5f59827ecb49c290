package ussd

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"
)

// FuzzUSSDText posts arbitrary text to a session that has just dialled, and then the
// same text with one more input, through the HTTP handler. Whatever the text, the answer
// is a CON or END screen of at most MaxScreen characters (long content comes in pages),
// or a 400 for a request too large to be a USSD step; never a 5xx, never a panic.
func FuzzUSSDText(f *testing.F) {
	for _, seed := range []string{
		"", "1", "1*0700000002*500", "2*55501*150*000000", "2*55501*150*0", "2*55501*150*9",
		"3*1*50", "3*2*0700000003*50", "4*1", "4*2*98*98", "4*0*4*2", "9*9*9", "0", "98",
		"' OR 1=1 --", strings.Repeat("*", 20), "1*+254 700-000-002*1,500.00", "\x00\xff*\xfe",
		"2*" + strings.Repeat("5", 200) + "*1", "1*0700000002*99999999999999999999",
		"2*55501*0*12*2*1", "2*55501*0*13", "2*55501*0*12*9999*1", "2*55501*0*12*2*7*2",
	} {
		f.Add(seed)
	}
	h := newHarness(f, nil)
	h.Wallet(alice, 1_000_000_00)
	h.Wallet(bob, 0)
	h.shop()
	handler := h.menu.Handler()
	n := 0
	post := func(t *testing.T, sid, text string) {
		form := url.Values{"sessionId": {sid}, "phoneNumber": {alice}, "serviceCode": {"*384#"}, "text": {text}}
		req := httptest.NewRequest(http.MethodPost, "/ussd", strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		rec := httptest.NewRecorder()
		handler.ServeHTTP(rec, req)
		switch rec.Code {
		case http.StatusOK:
			checkAnswer(t, rec.Body.String())
		case http.StatusBadRequest:
			if len(text) <= maxText && strings.Count(text, "*") < maxNewInputs-1 {
				t.Fatalf("400 %q for a text of %d bytes", rec.Body.String(), len(text))
			}
		default:
			t.Fatalf("status %d %q", rec.Code, rec.Body.String())
		}
	}
	f.Fuzz(func(t *testing.T, text string) {
		n++
		sid := "fuzz" + strconv.Itoa(n)
		post(t, sid, "")
		post(t, sid, text)
		post(t, sid, text+"*98")
	})
}
