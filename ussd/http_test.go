package ussd

import (
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// snapshot is everything a request could change: sessions, payments, messages, money.
type snapshot struct {
	sessions, payments, messages int
	posted, held                 int64
}

func (h *harness) snapshot(accountID string) snapshot {
	h.t.Helper()
	b := h.Balance(accountID)
	return snapshot{sessions: h.menu.Sessions(), payments: len(h.Payments(alice)),
		messages: len(h.Messages(alice, 1000)), posted: b.Posted, held: b.Held}
}

func TestHostileRequestsChangeNothing(t *testing.T) {
	form := func(kv ...string) string {
		v := url.Values{}
		for i := 0; i < len(kv); i += 2 {
			v.Set(kv[i], kv[i+1])
		}
		return v.Encode()
	}
	const formType = "application/x-www-form-urlencoded"
	tests := []struct {
		name, method, ctype, body string
		want                      int // status; 200 must carry a CON or END screen
	}{
		{"SQL in text of an unknown session", "POST", formType,
			form("sessionId", "x1", "phoneNumber", alice, "text", "1'; DROP TABLE payments; --*0700000002*500"), 200},
		{"SQL in sessionId", "POST", formType,
			form("sessionId", "'; DELETE FROM ledger_entries; --", "phoneNumber", alice, "text", "2*55501*100"), 200},
		{"unknown session mid-payment", "POST", formType,
			form("sessionId", "never-dialled", "phoneNumber", alice, "text", "2*55501*150*123456"), 200},
		{"10 KB text", "POST", formType,
			form("sessionId", "x2", "phoneNumber", alice, "text", strings.Repeat("1*", 5<<10)), 413}, // 20 KB encoded
		{"10 KB of one input", "POST", formType,
			form("sessionId", "x3", "phoneNumber", alice, "text", strings.Repeat("9", 10<<10)), 400},
		{"missing sessionId", "POST", formType, form("phoneNumber", alice, "text", ""), 400},
		{"missing phoneNumber", "POST", formType, form("sessionId", "x4", "text", ""), 400},
		{"phone that is no number", "POST", formType, form("sessionId", "x5", "phoneNumber", "<script>", "text", ""), 400},
		{"empty body", "POST", formType, "", 400},
		{"JSON body", "POST", "application/json", `{"sessionId":"x6","phoneNumber":"254700000001","text":""}`, 400},
		{"no content type", "POST", "", form("sessionId", "x7", "phoneNumber", alice), 400},
		{"broken form", "POST", formType, "sessionId=%zz&phoneNumber=%", 400},
		{"binary", "POST", formType, "\x00\xff\xfe=\x01", 400},
		{"GET", "GET", "", "", 405},
		{"PUT", "PUT", formType, form("sessionId", "x8", "phoneNumber", alice), 405},
		{"end notice of an unknown session", "POST", formType, form("sessionId", "x9", "status", "Success"), 200},
		{"huge body", "POST", formType, "text=" + strings.Repeat("1", 100<<10), 413},
		{"another service code", "POST", formType,
			form("sessionId", "x10", "serviceCode", "*123#", "phoneNumber", alice, "text", "2*55501*150"), 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, nil)
			a := h.Wallet(alice, 100000)
			h.merchant(till, mama)
			before := h.snapshot(a.ID)

			req, err := http.NewRequest(tt.method, h.srv.URL+"/ussd", strings.NewReader(tt.body))
			if err != nil {
				t.Fatal(err)
			}
			if tt.ctype != "" {
				req.Header.Set("Content-Type", tt.ctype)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tt.want {
				t.Fatalf("status %d %q, want %d", resp.StatusCode, body, tt.want)
			}
			if resp.StatusCode == 200 && len(body) > 0 {
				checkAnswer(t, string(body))
			}
			if after := h.snapshot(a.ID); after != before {
				t.Fatalf("changed %+v into %+v", before, after)
			}
		})
	}
}

func TestAnswerIsPlainText(t *testing.T) {
	h := newHarness(t, nil)
	resp, err := http.PostForm(h.srv.URL+"/ussd", url.Values{"sessionId": {"s1"}, "phoneNumber": {alice}, "text": {""}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
		t.Fatalf("content type %q", ct)
	}
}

func TestGatewayEndNoticeDropsSession(t *testing.T) {
	tests := []struct {
		name string
		form url.Values
		ends bool
	}{
		{"status Success with duration", url.Values{"status": {"Success"}, "durationInMillis": {"5400"}}, true},
		{"status Failed with error", url.Values{"status": {"Failed"}, "errorMessage": {"timeout"}}, true},
		{"status Incomplete", url.Values{"status": {"Incomplete"}, "input": {"2"}}, true},
		{"isActive 0", url.Values{"isActive": {"0"}}, true},
		{"status TIMED_OUT", url.Values{"status": {"TIMED_OUT"}}, true},
		{"another phone's notice ends it too", url.Values{"status": {"Success"}, "phoneNumber": {bob}}, true},
		{"an active status is a step", url.Values{"status": {"Active"}, "phoneNumber": {alice}, "text": {"4"}}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, nil)
			h.Wallet(alice, 0)
			g, _ := h.dial("s1", alice)
			tt.form.Set("sessionId", "s1")
			code, body := h.post(tt.form)
			if code != http.StatusOK {
				t.Fatalf("notice answered %d %q", code, body)
			}
			if got := h.menu.Sessions(); (got == 0) != tt.ends {
				t.Fatalf("%d sessions after the notice; want it ended: %v", got, tt.ends)
			}
			if tt.ends {
				if body != "" {
					t.Fatalf("notice answered %q, want no body", body)
				}
				if got := g.send("4"); got != "END This session has ended. Please dial *384# again." {
					t.Fatalf("input after the end %q", got)
				}
			}
		})
	}
}

func TestSessionBelongsToItsPhone(t *testing.T) {
	h := newHarness(t, nil)
	a := h.Wallet(alice, 100000)
	h.Wallet(bob, 0)
	g, _ := h.dial("s1", alice)
	g.send("1")
	before := h.snapshot(a.ID)
	code, _ := h.post(url.Values{"sessionId": {"s1"}, "phoneNumber": {bob}, "text": {"1*0700000001"}})
	if code != http.StatusBadRequest {
		t.Fatalf("another phone in the session answered %d", code)
	}
	if after := h.snapshot(a.ID); after != before {
		t.Fatalf("changed %+v into %+v", before, after)
	}
	wantPrefix(t, g.send("0700000002"), "CON Enter the amount")
	// The same number spelt another way is the same caller.
	g.phone = "0700000001"
	wantPrefix(t, g.send("abc"), "CON Invalid amount.")
}

func TestGatewayStyles(t *testing.T) {
	h := newHarness(t, nil)
	h.Wallet(alice, 0)
	// Local number forms and a plus are all the same caller.
	for i, phone := range []string{"+254700000001", "254700000001", "0700000001"} {
		code, body := h.post(url.Values{"sessionId": {"g" + string(rune('0'+i))}, "phoneNumber": {phone}})
		if code != 200 || body != mainScreen {
			t.Fatalf("%s: %d %q", phone, code, body)
		}
	}
	// Spaces around inputs are ignored.
	g, _ := h.dial("s1", alice)
	wantPrefix(t, g.send(" 4 "), "CON My account")
}

// A dial of another service that a gateway routes here by mistake is told so and ended,
// not shown this service's menu; the own code, with or without an extension, is served.
func TestOtherServiceCodeEnds(t *testing.T) {
	h := newHarness(t, nil)
	h.Wallet(alice, 100000)
	for code, want := range map[string]string{
		"*123#": "END Unknown service code. Dial *384#.", "123": "END Unknown service code. Dial *384#.",
		"*3840#": "END Unknown service code. Dial *384#.",
		"*384#":  "CON ", "384": "CON ", "*384*2#": "CON ", "": "CON ",
	} {
		resp, err := http.PostForm(h.srv.URL+"/ussd", url.Values{"sessionId": {"sc" + code}, "serviceCode": {code},
			"phoneNumber": {alice}, "text": {""}})
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || !strings.HasPrefix(string(body), want) {
			t.Errorf("serviceCode %q: %d %q, want %q", code, resp.StatusCode, body, want)
		}
	}
}
