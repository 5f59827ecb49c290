package console

import (
	"context"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/payswitch/payswitch/ledger"
)

// stubBackend answers the console with an empty switch; the real one is tested in the
// root package against a running switch. Only the session rules are tested here, with
// a clock the test moves.
type stubBackend struct{}

var _ Backend = stubBackend{}

func (stubBackend) Overview(context.Context) (Overview, error) { return Overview{}, nil }
func (stubBackend) Activity(context.Context, time.Time) ([]ActivityRow, error) {
	return nil, nil
}
func (stubBackend) SettlementRuns(context.Context, int) ([]SettlementRun, error) { return nil, nil }
func (stubBackend) StoreSales(context.Context, string, time.Time) ([]StoreSales, error) {
	return nil, nil
}
func (stubBackend) Find(context.Context, string) (Found, error) { return Found{}, nil }
func (stubBackend) Account(_ context.Context, id string) (ledger.Account, error) {
	return ledger.Account{}, ErrNotFound
}
func (stubBackend) AccountPayments(context.Context, ledger.Account, string, int) ([]Payment, string, error) {
	return nil, "", nil
}
func (stubBackend) AccountEntries(context.Context, string, int64, int) ([]ledger.Entry, error) {
	return nil, nil
}
func (stubBackend) SetAccountStatus(context.Context, string, ledger.Status, string, string) error {
	return nil
}
func (stubBackend) AccountChanges(context.Context, string, int) ([]AccountChange, error) {
	return nil, nil
}
func (stubBackend) Payment(context.Context, string) (PaymentDetail, error) {
	return PaymentDetail{}, ErrNotFound
}
func (stubBackend) Reverse(context.Context, string, string, string) error { return nil }
func (stubBackend) SettleEscrow(context.Context, string, string, string, string) error {
	return nil
}
func (stubBackend) Refund(context.Context, RefundRequest) (bool, error) { return true, nil }
func (stubBackend) SetAccountTier(context.Context, TierChange) error    { return nil }
func (stubBackend) Deposit(context.Context, string, int64, string) (string, error) {
	return "", nil
}
func (stubBackend) Export(context.Context, string) error { return nil }
func (stubBackend) Currency() string                     { return "KES" }
func (stubBackend) Phone() Phone                         { return nil }

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

func newTestConsole(t *testing.T) (*httptest.Server, *clock, *Console) {
	t.Helper()
	clk := &clock{t: time.Date(2026, 3, 1, 8, 0, 0, 0, time.UTC)}
	c, err := New(stubBackend{}, Config{Now: clk.now, Tokens: []Token{
		{Name: "ops", Token: "ops-secret", Role: Operator},
		{Name: "unset", Token: "", Role: Operator},
	}})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(c)
	t.Cleanup(srv.Close)
	return srv, clk, c
}

func client() *http.Client {
	jar, _ := cookiejar.New(nil)
	return &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

var csrfRe = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

func signIn(t *testing.T, c *http.Client, base, token string) int {
	t.Helper()
	resp, err := c.Get(base + "/console/login")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	m := csrfRe.FindSubmatch(body)
	if m == nil {
		t.Fatalf("no CSRF field on the sign-in form")
	}
	resp, err = c.PostForm(base+"/console/login", url.Values{"csrf": {string(m[1])}, "token": {token}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

func status(t *testing.T, c *http.Client, url string) int {
	t.Helper()
	resp, err := c.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

func TestSessionsExpire(t *testing.T) {
	srv, clk, _ := newTestConsole(t)
	for _, tc := range []struct {
		name  string
		steps []time.Duration // waits between requests, each followed by a request
		last  int             // status of the last request
	}{
		{"used within the idle timeout", []time.Duration{29 * time.Minute, 29 * time.Minute}, http.StatusOK},
		{"idle too long", []time.Duration{IdleTimeout}, http.StatusSeeOther},
		{"kept busy past the maximum age", func() []time.Duration {
			var ds []time.Duration
			for range 25 { // 25 x 29 min > 12 h
				ds = append(ds, 29*time.Minute)
			}
			return ds
		}(), http.StatusSeeOther},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := client()
			if code := signIn(t, c, srv.URL, "ops-secret"); code != http.StatusSeeOther {
				t.Fatalf("sign in: %d", code)
			}
			got := 0
			for _, d := range tc.steps {
				clk.add(d)
				if got = status(t, c, srv.URL+"/console/"); got != http.StatusOK {
					break
				}
			}
			if got != tc.last {
				t.Fatalf("last request: %d, want %d", got, tc.last)
			}
		})
	}
}

// An empty token in the config (an unset variable) signs nobody in.
func TestEmptyTokenSignsNobodyIn(t *testing.T) {
	srv, _, _ := newTestConsole(t)
	if code := signIn(t, client(), srv.URL, ""); code != http.StatusUnauthorized {
		t.Fatalf("empty token: %d, want 401", code)
	}
}

// The throttle forgives after its minute.
func TestSignInThrottleWindow(t *testing.T) {
	srv, clk, _ := newTestConsole(t)
	c := client()
	for range 10 {
		signIn(t, c, srv.URL, "wrong")
	}
	if code := signIn(t, c, srv.URL, "ops-secret"); code != http.StatusTooManyRequests {
		t.Fatalf("right token while locked out: %d, want 429", code)
	}
	clk.add(61 * time.Second)
	if code := signIn(t, c, srv.URL, "ops-secret"); code != http.StatusSeeOther {
		t.Fatalf("right token after the minute: %d, want 303", code)
	}
}

// The session table is capped: the session idle longest goes first.
func TestSessionTableIsCapped(t *testing.T) {
	s := newSessions()
	now := time.Date(2026, 3, 1, 8, 0, 0, 0, time.UTC)
	first, _ := s.create("ops", Operator, now)
	for i := range MaxSessions {
		s.create("ops", Operator, now.Add(time.Duration(i+1)*time.Millisecond))
	}
	if n := s.len(); n != MaxSessions {
		t.Fatalf("%d sessions, want %d", n, MaxSessions)
	}
	if _, ok := s.get(first, now.Add(time.Second)); ok {
		t.Fatal("the oldest session survived the cap")
	}
}

func TestParseMoney(t *testing.T) {
	for in, want := range map[string]int64{"150": 15000, "1,500.5": 150050, "0.01": 1, " 2.00 ": 200} {
		if got, err := parseMoney(in); err != nil || got != want {
			t.Errorf("parseMoney(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "0", "-5", "1.234", "abc", "1e5", "+5", "1.-5", "99999999999999"} {
		if got, err := parseMoney(in); err == nil {
			t.Errorf("parseMoney(%q) = %d, want an error", in, got)
		}
	}
	if got := money(-123456789); got != "-1,234,567.89" {
		t.Errorf("money = %q", got)
	}
}

func TestUnknownPagesAndRedirects(t *testing.T) {
	srv, _, _ := newTestConsole(t)
	c := client()
	resp, err := c.Get(srv.URL + "/console/nope")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther || !strings.HasSuffix(resp.Header.Get("Location"), "/console/login") {
		t.Fatalf("unknown page, signed out: %d", resp.StatusCode)
	}
	signIn(t, c, srv.URL, "ops-secret")
	if code := status(t, c, srv.URL+"/console/nope"); code != http.StatusNotFound {
		t.Fatalf("unknown page: %d", code)
	}
	if code := status(t, c, srv.URL+"/console/phone"); code != http.StatusNotFound {
		t.Fatalf("phone without the demo SMSC: %d, want 404", code)
	}
}

// Cookies are Secure over TLS, and on plain HTTP when the config says a proxy in front
// terminates TLS; always HttpOnly and SameSite=Strict.
func TestCookiesSecureBehindTLS(t *testing.T) {
	for _, tc := range []struct {
		name       string
		tls, flag  bool
		wantSecure bool
	}{
		{"plain HTTP", false, false, false},
		{"TLS", true, false, true},
		{"behind a TLS proxy", false, true, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := New(stubBackend{}, Config{SecureCookies: tc.flag})
			if err != nil {
				t.Fatal(err)
			}
			srv := httptest.NewUnstartedServer(c)
			if tc.tls {
				srv.StartTLS()
			} else {
				srv.Start()
			}
			defer srv.Close()
			resp, err := srv.Client().Get(srv.URL + "/console/login")
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			cks := resp.Cookies()
			if len(cks) != 1 || cks[0].Secure != tc.wantSecure || !cks[0].HttpOnly || cks[0].SameSite != http.SameSiteStrictMode {
				t.Fatalf("cookies %+v, want one, Secure %v, HttpOnly, SameSite=Strict", cks, tc.wantSecure)
			}
		})
	}
}
