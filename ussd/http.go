package ussd

import (
	"errors"
	"fmt"
	"mime"
	"net/http"
	"net/url"
	"strings"
)

// maxForm bounds the body of a gateway callback; the api server mounting the handler
// may set a lower limit of its own.
const maxForm = 16 << 10

// Handler serves the gateway callback, POST /ussd with form fields sessionId,
// serviceCode, phoneNumber, networkCode and text, answering "CON <screen>" or
// "END <screen>" as text/plain. It also accepts the end-of-session notice many gateways
// post to the same URL (a sessionId with a final status such as "Success", "Failed" or
// "Incomplete", or isActive=0): it forgets the session and answers 200 with no body.
// What is not a form with a sessionId and a phone number is answered 400 and changes
// nothing; another method than POST is 405.
func (m *Menu) Handler() http.Handler { return http.HandlerFunc(m.serveHTTP) }

func (m *Menu) serveHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		plain(w, http.StatusMethodNotAllowed, "use POST\n")
		return
	}
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/x-www-form-urlencoded" {
		plain(w, http.StatusBadRequest, "want an application/x-www-form-urlencoded form\n")
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxForm)
	if err := r.ParseForm(); err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			plain(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("the form is larger than the limit of %d bytes\n", tooBig.Limit))
			return
		}
		plain(w, http.StatusBadRequest, "bad form\n")
		return
	}
	f := r.PostForm
	sid := strings.TrimSpace(f.Get("sessionId"))
	if sid == "" {
		plain(w, http.StatusBadRequest, "missing sessionId\n")
		return
	}
	key := "http:" + sid
	if ended(f) {
		if m.End(key) {
			m.steps.WithLabelValues("gateway_end").Inc()
		}
		w.WriteHeader(http.StatusOK)
		return
	}
	if sc := f.Get("serviceCode"); sc != "" && !m.ownCode(sc) {
		// Another service's dial routed here by mistake: say so rather than show a menu
		// the user did not ask for. No session is kept.
		m.steps.WithLabelValues("unknown_service").Inc()
		plain(w, http.StatusOK, "END "+m.static["unknown_service"])
		return
	}
	scr, err := m.Step(r.Context(), Input{
		SessionID: key, Phone: f.Get("phoneNumber"), ServiceCode: f.Get("serviceCode"),
		Network: f.Get("networkCode"), Text: f.Get("text"),
	})
	if errors.Is(err, ErrBadRequest) {
		plain(w, http.StatusBadRequest, err.Error()+"\n")
		return
	}
	// Any other error was logged by Step, and scr says sorry to the user.
	plain(w, http.StatusOK, scr.String())
}

// finalStatus lists the status values gateways use in end-of-session notices.
var finalStatus = map[string]bool{
	"success": true, "completed": true, "complete": true, "failed": true, "failure": true,
	"incomplete": true, "aborted": true, "abort": true, "cancelled": true, "canceled": true,
	"timeout": true, "timedout": true, "expired": true, "closed": true, "ended": true,
	"end": true, "terminated": true, "error": true, "rejected": true, "released": true,
}

// ended reports whether a callback is an end-of-session notice rather than a step.
func ended(f url.Values) bool {
	if f.Has("isActive") && strings.TrimSpace(f.Get("isActive")) == "0" {
		return true
	}
	st := strings.ToLower(strings.TrimSpace(f.Get("status")))
	return finalStatus[strings.ReplaceAll(st, "_", "")]
}

func plain(w http.ResponseWriter, code int, body string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	w.Write([]byte(body))
}
