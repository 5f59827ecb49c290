// Package console serves the operators' console under /console/: server-rendered pages
// (html/template, auto-escaped), assets embedded in the binary, no script but the
// vendored htmx, a strict Content-Security-Policy, a CSRF token on every form and
// server-side sessions signed in with a token of the config.
//
// It reads and writes the switch only through Backend, which serve adapts.
package console

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/payswitch/payswitch/internal/failures"
	"github.com/rs/zerolog"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed assets
var assetFS embed.FS

// Role is what a signed-in token may do.
type Role string

// The roles of the config's tokens.
const (
	Operator Role = "operator" // reads and writes
	Auditor  Role = "auditor"  // reads only: no write buttons, and every write refused
)

// Token is one token of the config that may sign in.
type Token struct {
	Name, Token string
	Role        Role
}

// Config sets the console up.
type Config struct {
	Tokens []Token
	// SecureCookies marks the cookies Secure even on plain HTTP: for a switch behind a
	// TLS-terminating proxy. A request that came over TLS gets Secure cookies anyway.
	SecureCookies bool
	Location      *time.Location // times are shown in it; nil: UTC
	Now           func() time.Time
	Log           zerolog.Logger
}

// contentSecurityPolicy allows nothing but this origin's own files: no inline script
// or style, no eval, no frames, forms only to here.
const contentSecurityPolicy = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'"

// Cookie names. The login cookie carries the sign-in form's CSRF token before there is a
// session (a double-submit token): a page elsewhere cannot sign a browser in as itself.
const (
	sessionCookie = "payswitch_console"
	loginCookie   = "payswitch_console_login"
)

// Console is the console's http.Handler.
type Console struct {
	b        Backend
	cfg      Config
	tokens   []tokenDigest
	sessions *sessions
	fails    *failures.Limiter
	pages    map[string]*template.Template
	mux      *http.ServeMux

	mu    sync.Mutex // guards rates
	rates map[string]linkSample

	// exporting is set while an export runs: each reads the whole journal, so a second
	// click waits for the first rather than doubling the work.
	exporting atomic.Bool
}

type tokenDigest struct {
	name   string
	role   Role
	digest [32]byte
}

type linkSample struct {
	at        time.Time
	submitted uint64
}

// New builds the console over b.
func New(b Backend, cfg Config) (*Console, error) {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Location == nil {
		cfg.Location = time.UTC
	}
	c := &Console{b: b, cfg: cfg, sessions: newSessions(), fails: failures.New(10, time.Minute),
		mux: http.NewServeMux(), rates: map[string]linkSample{}}
	for _, t := range cfg.Tokens {
		if t.Token == "" {
			continue // an unset variable must not become a token that an empty form matches
		}
		if t.Role != Operator && t.Role != Auditor {
			return nil, fmt.Errorf("console: token %q: role %q: want operator or auditor", t.Name, t.Role)
		}
		c.tokens = append(c.tokens, tokenDigest{name: t.Name, role: t.Role, digest: sha256.Sum256([]byte(t.Token))})
	}
	var err error
	if c.pages, err = parsePages(cfg.Location); err != nil {
		return nil, err
	}
	assets, err := fs.Sub(assetFS, "assets")
	if err != nil {
		return nil, fmt.Errorf("console: assets: %w", err)
	}
	files := http.StripPrefix("/console/assets/", http.FileServerFS(assets))
	c.mux.Handle("GET /console/assets/", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "public, max-age=3600")
		files.ServeHTTP(w, r)
	}))
	c.mux.HandleFunc("GET /console/login", c.loginForm)
	c.mux.HandleFunc("POST /console/login", c.login)
	c.route("POST /console/logout", Auditor, c.logout)
	c.route("GET /console/{$}", Auditor, c.overview)
	c.route("GET /console/live", Auditor, c.overviewLive)
	c.route("GET /console/find", Auditor, c.find)
	c.route("GET /console/accounts/{id}", Auditor, c.account)
	c.route("POST /console/accounts/{id}/status", Operator, c.accountStatus)
	c.route("GET /console/payments/{id}", Auditor, c.payment)
	c.route("POST /console/payments/{id}/reverse", Operator, c.reverse)
	c.route("POST /console/payments/{id}/escrow", Operator, c.settleEscrow)
	c.route("POST /console/payments/{id}/refund", Operator, c.refund)
	c.route("POST /console/accounts/{id}/tier", Operator, c.accountTier)
	c.route("GET /console/cash", Auditor, c.cash)
	c.route("POST /console/cash", Operator, c.deposit)
	c.route("GET /console/audit", Auditor, c.audit)
	c.route("POST /console/audit/export", Auditor, c.export)
	c.route("GET /console/phone", Operator, c.phone)
	c.route("GET /console/phone/thread", Operator, c.phoneThread)
	c.route("POST /console/phone/sms", Operator, c.phoneSMS)
	c.route("POST /console/phone/ussd", Operator, c.phoneUSSD)
	c.route("GET /console/phone/pushed", Operator, c.phonePushed)
	c.route("POST /console/phone/pushed", Operator, c.phoneAnswerPushed)
	c.route("/console/", Auditor, func(w http.ResponseWriter, r *http.Request, s *request) error {
		return notFound("no such page")
	})
	return c, nil
}

// ServeHTTP implements http.Handler. Every answer carries the security headers.
func (c *Console) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Security-Policy", contentSecurityPolicy)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	// Payment IDs and numbers are in the console's URLs: they go nowhere else. (Not
	// no-referrer: under it, browsers send "Origin: null" with the console's own forms.)
	h.Set("Referrer-Policy", "same-origin")
	c.mux.ServeHTTP(w, r)
}

// request is a signed-in request: its session and cookie.
type request struct {
	session
	cookie string
}

// CanWrite reports whether the session may change anything; templates hide the write
// forms when it may not.
func (s *request) CanWrite() bool { return s.role == Operator }

// route mounts a page that needs a session of at least role min. A browser that is not
// signed in is sent to the sign-in form; every POST must carry the session's CSRF token.
func (c *Console) route(pattern string, min Role, h func(w http.ResponseWriter, r *http.Request, s *request) error) {
	c.mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		now := c.cfg.Now()
		ck, _ := r.Cookie(sessionCookie)
		var sess session
		ok := false
		if ck != nil {
			sess, ok = c.sessions.get(ck.Value, now)
		}
		if !ok {
			if r.Method == http.MethodGet && r.Header.Get("HX-Request") == "" {
				http.Redirect(w, r, "/console/login", http.StatusSeeOther)
				return
			}
			// An htmx poll or a form whose session has ended: htmx follows HX-Redirect.
			w.Header().Set("HX-Redirect", "/console/login")
			http.Error(w, "signed out: sign in again at /console/login", http.StatusUnauthorized)
			return
		}
		req := &request{session: sess, cookie: ck.Value}
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
			if !c.sameOrigin(r) || !sameToken(r.PostFormValue("csrf"), sess.csrf) {
				c.render(w, r, http.StatusForbidden, "error", req, pageData{Title: "Refused",
					Err: "this form is out of date or did not come from the console (CSRF check failed); nothing was changed"})
				return
			}
		}
		if min == Operator && sess.role != Operator {
			c.cfg.Log.Warn().Str("token", sess.name).Str("path", r.URL.Path).Msg("console: an auditor was refused an operator's page or write")
			c.render(w, r, http.StatusForbidden, "error", req, pageData{Title: "Refused",
				Err: "an auditor may look at everything but change nothing; nothing was changed"})
			return
		}
		ctx, cancel := context.WithTimeout(r.Context(), 30*time.Second)
		defer cancel()
		if err := h(w, r.WithContext(ctx), req); err != nil {
			c.fail(w, r, req, err)
		}
	})
}

// sameOrigin refuses a write that a browser says came from another site. The CSRF
// token already stops those; this is a second lock on the same door.
func (c *Console) sameOrigin(r *http.Request) bool {
	if site := r.Header.Get("Sec-Fetch-Site"); site != "" && site != "same-origin" && site != "none" {
		return false
	}
	// "null" says nothing: browsers send it for opaque origins, and under some referrer
	// policies and privacy settings for a page's own forms too. The token decides then.
	if o := r.Header.Get("Origin"); o != "" && o != "null" {
		host := strings.TrimPrefix(strings.TrimPrefix(o, "http://"), "https://")
		return host == r.Host
	}
	return true
}

// httpError is an error with the status it answers.
type httpError struct {
	status int
	msg    string
}

func (e httpError) Error() string { return e.msg }

func notFound(msg string) error   { return httpError{http.StatusNotFound, msg} }
func badRequest(msg string) error { return httpError{http.StatusBadRequest, msg} }

// why is a refusal's reason as a person reads it, without the package's prefixes.
func why(err error) string {
	msg := err.Error()
	for _, p := range []string{ErrRefused.Error() + ": ", ErrNotFound.Error() + ": "} {
		msg = strings.TrimPrefix(msg, p)
	}
	return msg
}

func (c *Console) fail(w http.ResponseWriter, r *http.Request, s *request, err error) {
	var he httpError
	status, msg := http.StatusInternalServerError, "internal error; nothing was changed unless the page says so"
	switch {
	case errors.As(err, &he):
		status, msg = he.status, he.msg
	case errors.Is(err, ErrNotFound):
		status, msg = http.StatusNotFound, "not found"
	case errors.Is(err, ErrRefused):
		status, msg = http.StatusUnprocessableEntity, why(err)
	case errors.Is(err, context.DeadlineExceeded):
		status, msg = http.StatusServiceUnavailable, "the switch took too long to answer; try again"
	default:
		c.cfg.Log.Error().Err(err).Str("path", r.URL.Path).Msg("console: request failed")
	}
	c.render(w, r, status, "error", s, pageData{Title: http.StatusText(status), Err: msg})
}

// clientIP is the address a request came from; no proxy header is trusted.
func clientIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

func (c *Console) secure(r *http.Request) bool { return r.TLS != nil || c.cfg.SecureCookies }

func (c *Console) setCookie(w http.ResponseWriter, r *http.Request, name, value string, maxAge time.Duration) {
	ck := &http.Cookie{Name: name, Value: value, Path: "/console/", HttpOnly: true,
		SameSite: http.SameSiteStrictMode, Secure: c.secure(r)}
	if maxAge < 0 {
		ck.MaxAge = -1
	} else if maxAge > 0 {
		ck.MaxAge = int(maxAge / time.Second)
	}
	http.SetCookie(w, ck)
}

func (c *Console) loginForm(w http.ResponseWriter, r *http.Request) {
	c.showLogin(w, r, http.StatusOK, "")
}

func (c *Console) showLogin(w http.ResponseWriter, r *http.Request, status int, msg string) {
	w.Header().Set("Cache-Control", "no-store")
	tok := randomToken()
	c.setCookie(w, r, loginCookie, tok, 10*time.Minute)
	c.render(w, r, status, "login", nil, pageData{Title: "Sign in", CSRF: tok, Err: msg})
}

// login checks the sign-in form: its CSRF token against the login cookie, then the token
// against the config's in constant time. Failures count against the client's address:
// the tenth in a minute locks it out for the rest of the minute, as the API does.
func (c *Console) login(w http.ResponseWriter, r *http.Request) {
	now := c.cfg.Now()
	client := clientIP(r)
	r.Body = http.MaxBytesReader(w, r.Body, 16<<10)
	ck, _ := r.Cookie(loginCookie)
	if ck == nil || !c.sameOrigin(r) || !sameToken(r.PostFormValue("csrf"), ck.Value) {
		c.showLogin(w, r, http.StatusForbidden, "The sign-in form was out of date; try again.")
		return
	}
	if !c.fails.Allowed(client, now) {
		w.Header().Set("Retry-After", "60")
		c.showLogin(w, r, http.StatusTooManyRequests, "Too many failed sign-ins from this address; wait a minute.")
		return
	}
	d := sha256.Sum256([]byte(strings.TrimSpace(r.PostFormValue("token"))))
	var match *tokenDigest
	for i := range c.tokens {
		if subtle.ConstantTimeCompare(d[:], c.tokens[i].digest[:]) == 1 {
			match = &c.tokens[i]
		}
	}
	if match == nil {
		if c.fails.Failed(client, now) {
			c.cfg.Log.Warn().Str("client", client).Msg("console: too many failed sign-ins from one address; refused for the rest of the minute")
		}
		c.showLogin(w, r, http.StatusUnauthorized, "That token is not valid.")
		return
	}
	id, _ := c.sessions.create(match.name, match.role, now)
	c.setCookie(w, r, sessionCookie, id, SessionMaxAge)
	c.setCookie(w, r, loginCookie, "", -1)
	c.cfg.Log.Info().Str("token", match.name).Str("role", string(match.role)).Str("client", client).Msg("console: signed in")
	http.Redirect(w, r, "/console/", http.StatusSeeOther)
}

func (c *Console) logout(w http.ResponseWriter, r *http.Request, s *request) error {
	c.sessions.end(s.cookie)
	c.setCookie(w, r, sessionCookie, "", -1)
	c.cfg.Log.Info().Str("token", s.name).Msg("console: signed out")
	http.Redirect(w, r, "/console/login", http.StatusSeeOther)
	return nil
}

// Role is the session's role, for the page header.
func (s *request) Role() Role { return s.role }

// Name is the name of the token the session signed in with (never the token).
func (s *request) Name() string { return s.name }
