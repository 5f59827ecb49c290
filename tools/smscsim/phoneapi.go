package smscsim

import (
	"encoding/json"
	"errors"
	"mime"
	"net"
	"net/http"
	"strings"
)

// MO is the body of POST /mo: a phone sending text to a short code.
type MO struct {
	From string `json:"from"`
	To   string `json:"to"`
	Text string `json:"text"`
}

// USSDInput is the body of POST /ussd: what the user of phone From keys in for USSD.
type USSDInput struct {
	From string `json:"from"`
	Text string `json:"text"`
}

// phoneAPI serves the HTTP API that tools/phone (or a script) uses to play
// phones:
//
//	POST /mo                    {"from","to","text"} -> 202 Accepted
//	GET  /mt?msisdn=N           newline-delimited JSON MTs as they arrive
//	GET  /mt/history?msisdn=N   JSON array of the MTs kept so far
//	GET  /ussd?msisdn=N         the USSD screen the phone shows (USSDScreen), 404 for none
//	POST /ussd                  {"from","text"} -> 202: answers the screen that waits for
//	                            an answer, else dials text when it is a service code
//	                            (*384#); 409 when it is neither
//
// msisdn may be left out of /mt and /mt/history for every number.
//
// It has no sign-in: it listens on loopback only (Start refuses anything else), and
// guard keeps out the one visitor loopback lets in, a web browser on this machine.
func (s *Sim) phoneAPI() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /mo", s.handleMO)
	mux.HandleFunc("GET /mt", s.handleMTStream)
	mux.HandleFunc("GET /mt/history", s.handleMTHistory)
	mux.HandleFunc("GET /ussd", s.handleUSSDScreen)
	mux.HandleFunc("POST /ussd", s.handleUSSDInput)
	return guard(mux)
}

// guard refuses what a web page could send to the phone API from a browser on this
// machine, so that a page cannot pay from a simulated phone or read its codes:
//   - any Origin header (403): browsers add it to a script's requests, and no page is
//     served here, so no origin is ours;
//   - a Host that is not a loopback IP or localhost (403): a page whose name an attacker
//     re-points at 127.0.0.1 (DNS rebinding) reads responses as its own, and sends its
//     own name as Host;
//   - a POST whose Content-Type is not application/json (415): an HTML form cannot
//     send that type, and a script that sets it needs a CORS preflight, never granted.
func guard(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, ok := r.Header["Origin"]; ok {
			httpError(w, http.StatusForbidden, "requests from web pages are refused")
			return
		}
		host, _, err := net.SplitHostPort(r.Host)
		if err != nil {
			host = r.Host // no port
		}
		if !LoopbackHost(strings.Trim(host, "[]")) {
			httpError(w, http.StatusForbidden, "Host must be a loopback address or localhost")
			return
		}
		if r.Method == http.MethodPost {
			if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/json" {
				httpError(w, http.StatusUnsupportedMediaType, "Content-Type must be application/json")
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}

func (s *Sim) handleMO(w http.ResponseWriter, r *http.Request) {
	var mo MO
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 64<<10))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&mo); err != nil {
		httpError(w, http.StatusBadRequest, "bad JSON: "+err.Error())
		return
	}
	switch err := s.SendMO(r.Context(), mo.From, mo.To, mo.Text); {
	case err == nil:
		w.WriteHeader(http.StatusAccepted)
	case errors.Is(err, ErrBadMessage):
		httpError(w, http.StatusBadRequest, err.Error())
	default:
		httpError(w, http.StatusServiceUnavailable, err.Error())
	}
}

func (s *Sim) handleMTStream(w http.ResponseWriter, r *http.Request) {
	ch, stop := s.Subscribe(r.URL.Query().Get("msisdn"))
	defer stop()
	w.Header().Set("Content-Type", "application/x-ndjson")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w)
	if err := rc.Flush(); err != nil {
		return
	}
	enc := json.NewEncoder(w)
	for {
		select {
		case mt, ok := <-ch:
			if !ok {
				return // the sim closed
			}
			if enc.Encode(mt) != nil || rc.Flush() != nil {
				return
			}
		case <-r.Context().Done():
			return
		}
	}
}

func (s *Sim) handleMTHistory(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(s.MTs(r.URL.Query().Get("msisdn")))
}

func (s *Sim) handleUSSDScreen(w http.ResponseWriter, r *http.Request) {
	msisdn := r.URL.Query().Get("msisdn")
	if msisdn == "" {
		httpError(w, http.StatusBadRequest, "msisdn is required")
		return
	}
	sc, ok := s.USSDScreen(msisdn)
	if !ok {
		httpError(w, http.StatusNotFound, "no USSD screen")
		return
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(sc)
}

// handleUSSDInput answers the phone's open USSD screen, or dials a service code, as a
// phone's keypad does: while a screen waits for an answer, whatever is keyed answers it.
func (s *Sim) handleUSSDInput(w http.ResponseWriter, r *http.Request) {
	var in USSDInput
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 64<<10))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&in); err != nil {
		httpError(w, http.StatusBadRequest, "bad JSON: "+err.Error())
		return
	}
	if in.From == "" {
		httpError(w, http.StatusBadRequest, "from is required")
		return
	}
	err := s.AnswerUSSD(r.Context(), in.From, in.Text)
	if errors.Is(err, ErrNoUSSDScreen) && IsDial(strings.TrimSpace(in.Text)) {
		err = s.DialUSSD(r.Context(), in.From, in.Text)
	}
	switch {
	case err == nil:
		w.WriteHeader(http.StatusAccepted)
	case errors.Is(err, ErrNoUSSDScreen):
		httpError(w, http.StatusConflict, "no USSD screen awaits an answer; dial a service code such as *384#")
	default:
		httpError(w, http.StatusServiceUnavailable, err.Error())
	}
}

func httpError(w http.ResponseWriter, code int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(map[string]string{"error": msg})
}
