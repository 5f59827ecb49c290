package ivr

import (
	"bytes"
	"crypto/rand"
	"encoding/xml"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/rs/zerolog"
)

// Whatever arrives, the gateway gets 200 and a valid Response; nothing is left behind.
func TestCallbackBadRequests(t *testing.T) {
	h := newHarness(t, options{})
	h.Wallet(alice, 100000)
	junk := make([]byte, 4096)
	rand.Read(junk)
	tests := []struct {
		name        string
		contentType string
		body        string
		want        string // "reject", "final" or "empty"
		says        string
	}{
		{"random bytes as a form", "application/x-www-form-urlencoded", string(junk), "reject", ""},
		{"random bytes untyped", "application/octet-stream", string(junk), "reject", ""},
		{"bad escape", "application/x-www-form-urlencoded", "sessionId=%zz&isActive=1", "reject", ""},
		{"JSON", "application/json", `{"sessionId": "j1", "callerNumber": "254700000001"}`, "reject", ""},
		{"empty", "application/x-www-form-urlencoded", "", "reject", ""},
		{"no session ID", "application/x-www-form-urlencoded", "isActive=1&callerNumber=254700000001", "reject", ""},
		{"session ID too long", "application/x-www-form-urlencoded",
			"sessionId=" + strings.Repeat("a", 200) + "&callerNumber=254700000001", "reject", ""},
		{"session ID not UTF-8", "application/x-www-form-urlencoded", "sessionId=%ff%fe&callerNumber=254700000001", "reject", ""},
		{"no number at all", "application/x-www-form-urlencoded", "sessionId=n1&isActive=1", "reject", ""},
		{"body too large", "application/x-www-form-urlencoded",
			"sessionId=big&callerNumber=254700000001&x=" + strings.Repeat("a", 20<<10), "reject", ""},
		{"hidden number", "application/x-www-form-urlencoded",
			"sessionId=h1&isActive=1&direction=Inbound&callerNumber=anonymous", "final", "could not recognise your phone number"},
		{"keys for an unknown call", "application/x-www-form-urlencoded",
			"sessionId=u1&isActive=1&direction=Inbound&callerNumber=254700000001&dtmfDigits=1", "final", "timed out"},
		{"outbound for nothing", "application/x-www-form-urlencoded",
			"sessionId=o1&isActive=1&direction=Outbound&destinationNumber=254700000001", "reject", ""},
		{"end of an unknown call", "application/x-www-form-urlencoded",
			"sessionId=e1&isActive=0&callerNumber=254700000001", "empty", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, err := http.Post(h.srv.URL+"/ivr", tt.contentType, strings.NewReader(tt.body))
			if err != nil {
				t.Fatal(err)
			}
			r := h.read(resp)
			switch tt.want {
			case "reject":
				if r.Reject == nil || r.Say != nil || r.GetDigits != nil {
					t.Errorf("want <Reject/>, got %+v", r)
				}
			case "final":
				wantFinal(t, r, tt.says)
			case "empty":
				if r.Reject != nil || r.Say != nil || r.GetDigits != nil {
					t.Errorf("want an empty Response, got %+v", r)
				}
			}
			if n := h.svc.Sessions(); n != 0 {
				t.Errorf("%d sessions left behind", n)
			}
		})
	}
	t.Run("GET", func(t *testing.T) {
		resp, err := http.Get(h.srv.URL + "/ivr")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusMethodNotAllowed {
			t.Errorf("GET: %d, want 405", resp.StatusCode)
		}
	})
}

// A session ID belongs to its caller: someone else using it gets nowhere.
func TestCallbackSessionOfAnotherCaller(t *testing.T) {
	h := newHarness(t, options{})
	h.Wallet(alice, 100000)
	h.Wallet(bob, 100000)
	h.Merchant(till, "Mama Mboga", mama)
	a := h.inbound("shared", alice)
	a.key("")
	a.key("1")
	wantFinal(t, h.inbound("shared", bob).key(till), "timed out")
	wantPrompt(t, a.key(till), 0, "Mama Mboga") // alice's call goes on
}

// Fields in the query string count too, and the direction may be left out after the start.
func TestCallbackFieldsInQuery(t *testing.T) {
	h := newHarness(t, options{})
	h.Wallet(alice, 150000)
	q := url.Values{"sessionId": {"q1"}, "isActive": {"1"}, "callerNumber": {alice}}
	resp, err := http.Post(h.srv.URL+"/ivr?"+q.Encode(), "application/x-www-form-urlencoded", nil)
	if err != nil {
		t.Fatal(err)
	}
	wantPrompt(t, h.read(resp), 1, "Welcome")
	wantFinal(t, h.post(url.Values{"sessionId": {"q1"}, "callerNumber": {alice}, "dtmfDigits": {"3"}}),
		"one thousand five hundred shillings")
}

// Text from accounts and from configuration is escaped by marshalling, never pasted.
func TestCallbackEscapesXML(t *testing.T) {
	h := newHarness(t, options{cfg: func(c *Config) {
		c.Texts = map[string]string{"welcome": `Karibu <"payswitch"> & friends]]>`}
	}})
	h.Wallet(alice, 100000)
	h.Merchant(till, `Mama & Sons <Ltd>`, mama)
	c := h.inbound("esc", alice)
	form := url.Values{"sessionId": {"esc"}, "isActive": {"1"}, "callerNumber": {alice}}
	resp, err := http.PostForm(h.srv.URL+"/ivr", form)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !bytes.HasPrefix(body, []byte(xml.Header)) {
		t.Errorf("no XML declaration: %s", body)
	}
	if bytes.Contains(body, []byte(`<"payswitch">`)) || !bytes.Contains(body, []byte("&amp; friends")) {
		t.Errorf("text not escaped: %s", body)
	}
	var r Response
	if err := xml.Unmarshal(body, &r); err != nil {
		t.Fatalf("not XML: %v\n%s", err, body)
	}
	wantSays(t, r, `Karibu <"payswitch"> & friends]]>`)
	c.key("1")
	wantPrompt(t, c.key(till), 0, "You are paying Mama & Sons <Ltd>, merchant 5 5 5 0 1.")
}

func TestResponseXML(t *testing.T) {
	tests := []struct {
		name string
		r    Response
		want string
	}{
		{"prompt", prompt("Press 1 to pay a merchant.", 1),
			`<Response><GetDigits timeout="15" finishOnKey="#" numDigits="1"><Say>Press 1 to pay a merchant.</Say></GetDigits></Response>`},
		{"entry", prompt("Enter the amount.", 0),
			`<Response><GetDigits timeout="30" finishOnKey="#"><Say>Enter the amount.</Say></GetDigits></Response>`},
		{"final", final("Goodbye & thanks."), `<Response><Say>Goodbye &amp; thanks.</Say></Response>`},
		{"reject", rejection(), `<Response><Reject></Reject></Response>`},
		{"empty", Response{}, `<Response></Response>`},
		{"control characters", final("A\x00b"), "<Response><Say>A\uFFFDb</Say></Response>"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := xml.Marshal(tt.r)
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tt.want {
				t.Errorf("got  %s\nwant %s", got, tt.want)
			}
		})
	}
}

func TestTextOverrides(t *testing.T) {
	h := newHarness(t, options{cfg: func(c *Config) {
		c.Texts = map[string]string{"menu": "Bonyeza 1 kulipa, 2 kutuma pesa, 3 salio."}
	}})
	h.Wallet(alice, 100000)
	wantPrompt(t, h.inbound("sw", alice).key(""), 1, "Bonyeza 1 kulipa")
	for name, texts := range map[string]map[string]string{
		"unknown key": {"menuu": "x"},
		"empty text":  {"menu": "  "},
	} {
		if _, err := New(Config{Texts: texts}, h.Engine, h.queue, nil, zerolog.Nop(), nil); err == nil {
			t.Errorf("%s: New accepted %v", name, texts)
		}
	}
}
