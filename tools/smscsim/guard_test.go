package smscsim

import (
	"errors"
	"net/http"
	"strings"
	"testing"

	smppcli "github.com/fiorix/go-smpp/smpp"
	"github.com/fiorix/go-smpp/smpp/pdu"

	"github.com/payswitch/payswitch/smpp/server"
)

// The sim shows every MT, codes included, to whoever reaches it: it listens on loopback
// only, whatever it is asked.
func TestStartRefusesNonLoopback(t *testing.T) {
	for _, c := range []struct {
		name string
		cfg  Config
		want string
	}{
		{"smpp on every interface", Config{Listen: ":0"}, "listen"},
		{"smpp on 0.0.0.0", Config{Listen: "0.0.0.0:0"}, "listen"},
		{"smpp on a public address", Config{Listen: "192.0.2.1:2775"}, "listen"},
		{"phone api on every interface", Config{PhoneAPI: ":0"}, "phone api"},
		{"phone api by host name", Config{PhoneAPI: "example.com:2790"}, "phone api"},
	} {
		t.Run(c.name, func(t *testing.T) {
			s, err := Start(c.cfg)
			if err == nil {
				s.Close()
				t.Fatal("started")
			}
			if !errors.Is(err, ErrNotLoopback) || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("%v, want ErrNotLoopback naming the %s address", err, c.want)
			}
		})
	}
	s := mustStart(t, Config{Listen: "localhost:0", PhoneAPI: "127.0.0.1:0"})
	if !strings.HasPrefix(s.Addr(), "127.") && !strings.HasPrefix(s.Addr(), "[::1]") {
		t.Errorf("localhost listens on %s", s.Addr())
	}
}

// A bind with an empty password is refused, with accounts configured or not.
func TestBindNeedsAPassword(t *testing.T) {
	for name, accounts := range map[string]map[string]string{
		"any account":                   nil,
		"an account with no password":   {"payswitch": ""},
		"no account, empty password":    {},
		"an account, password left out": {"payswitch": "secret"},
	} {
		t.Run(name, func(t *testing.T) {
			s := mustStart(t, Config{Accounts: accounts})
			_, st := bindESME(t, s, "payswitch", "")
			var got pdu.Status
			errors.As(st.Error(), &got)
			if st.Status() == smppcli.Connected || uint32(got) == 0 {
				t.Fatalf("bind with an empty password: %v %v", st.Status(), st.Error())
			}
		})
	}
	t.Run("no account (none may bind)", func(t *testing.T) {
		s := mustStart(t, Config{Accounts: map[string]string{}})
		_, st := bindESME(t, s, "payswitch", "secret")
		var got pdu.Status
		errors.As(st.Error(), &got)
		if uint32(got) != server.StatusInvSysID {
			t.Fatalf("bind to a sim with no accounts: %v %v", st.Status(), st.Error())
		}
	})
}

// A web page the user visits must not be able to post MO for a phone or read its MT: a
// form cannot send application/json, a script's request carries an Origin, and a name
// rebound to 127.0.0.1 arrives with its own Host.
func TestPhoneAPIRefusesBrowsers(t *testing.T) {
	s := mustStart(t, Config{PhoneAPI: "127.0.0.1:0"})
	mustBindESME(t, s)
	base := "http://" + s.PhoneAddr()
	const mo = `{"from":"254700000001","to":"22333","text":"BAL"}`
	for _, c := range []struct {
		name, method, path, contentType string
		header                          map[string]string
		want                            int
	}{
		{"json", "POST", "/mo", "application/json", nil, http.StatusAccepted},
		{"json with charset", "POST", "/mo", "application/json; charset=utf-8", nil, http.StatusAccepted},
		{"by localhost", "POST", "/mo", "application/json", map[string]string{"Host": "localhost"}, http.StatusAccepted},
		{"no content type", "POST", "/mo", "", nil, http.StatusUnsupportedMediaType},
		{"form", "POST", "/mo", "application/x-www-form-urlencoded", nil, http.StatusUnsupportedMediaType},
		{"plain text", "POST", "/mo", "text/plain", nil, http.StatusUnsupportedMediaType},
		{"another site's script", "POST", "/mo", "application/json", map[string]string{"Origin": "https://evil.example"}, http.StatusForbidden},
		{"even a loopback origin", "POST", "/mo", "application/json", map[string]string{"Origin": base}, http.StatusForbidden},
		{"history read by a script", "GET", "/mt/history", "", map[string]string{"Origin": "https://evil.example"}, http.StatusForbidden},
		{"stream read by a script", "GET", "/mt", "", map[string]string{"Origin": "null"}, http.StatusForbidden},
		{"rebound name", "GET", "/mt/history", "", map[string]string{"Host": "evil.example:2790"}, http.StatusForbidden},
		{"history", "GET", "/mt/history", "", nil, http.StatusOK},
	} {
		t.Run(c.name, func(t *testing.T) {
			var body *strings.Reader
			if c.method == "POST" {
				body = strings.NewReader(mo)
			} else {
				body = strings.NewReader("")
			}
			req, err := http.NewRequestWithContext(ctxT(t), c.method, base+c.path, body)
			if err != nil {
				t.Fatal(err)
			}
			if c.contentType != "" {
				req.Header.Set("Content-Type", c.contentType)
			}
			for k, v := range c.header {
				if k == "Host" {
					req.Host = v
				} else {
					req.Header.Set(k, v)
				}
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != c.want {
				t.Fatalf("status %d, want %d", resp.StatusCode, c.want)
			}
		})
	}
}
