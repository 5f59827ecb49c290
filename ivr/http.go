package ivr

import (
	"context"
	"net/http"
	"strings"
)

// maxForm bounds the body of a callback; the api server mounting the handler may set a
// lower limit of its own.
const maxForm = 16 << 10

// callback is one gateway request, as posted.
type callback struct {
	sessionID string
	active    bool   // isActive is not "0"
	direction string // "inbound", "outbound" or "" (not said)
	caller    string // callerNumber
	dest      string // destinationNumber
	digits    string // dtmfDigits, raw
}

// Handler serves the voice gateway's callback, POST /ivr with form fields sessionId,
// isActive, direction, callerNumber, destinationNumber and dtmfDigits, answering
// application/xml. Whatever arrives, the answer is 200 with a valid Response: a body
// that is not a form, or a form without a session ID, gets <Reject/>; an unknown or
// timed-out call gets a polite Say that ends it; isActive=0 forgets the call and gets an
// empty Response. Only a method other than POST is refused (405).
func (s *Service) Handler() http.Handler { return http.HandlerFunc(s.serveHTTP) }

func (s *Service) serveHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		http.Error(w, "use POST", http.StatusMethodNotAllowed)
		return
	}
	// A bug must cost one call, not the gateway's patience: answer it as an error.
	defer func() {
		if v := recover(); v != nil {
			s.log.Error().Interface("panic", v).Msg("ivr callback panicked")
			s.callbacks.WithLabelValues("unknown", "error").Inc()
			writeXML(w, final(s.texts.Render("temporary_error", nil)))
		}
	}()
	r.Body = http.MaxBytesReader(w, r.Body, maxForm)
	if err := r.ParseForm(); err != nil {
		s.callbacks.WithLabelValues("unknown", "reject").Inc()
		writeXML(w, rejection())
		return
	}
	f := r.Form // the body's fields, then the query's: some gateways put them in the URL
	cb := callback{
		sessionID: strings.TrimSpace(f.Get("sessionId")),
		active:    strings.TrimSpace(f.Get("isActive")) != "0",
		direction: strings.ToLower(strings.TrimSpace(f.Get("direction"))),
		caller:    f.Get("callerNumber"),
		dest:      f.Get("destinationNumber"),
		digits:    f.Get("dtmfDigits"),
	}
	ctx, cancel := context.WithTimeout(r.Context(), stepTimeout)
	defer cancel()
	writeXML(w, s.handle(ctx, cb))
}
