package smscsim

import (
	"encoding/json"
	"errors"
	"net/http"
)

// MO is the body of POST /mo: a phone sending text to a short code.
type MO struct {
	From string `json:"from"`
	To   string `json:"to"`
	Text string `json:"text"`
}

// phoneAPI serves the HTTP API that tools/phone (or a script) uses to play
// phones:
//
//	POST /mo                    {"from","to","text"} -> 202 Accepted
//	GET  /mt?msisdn=N           newline-delimited JSON MTs as they arrive
//	GET  /mt/history?msisdn=N   JSON array of the MTs kept so far
//
// msisdn may be left out for every number.
func (s *Sim) phoneAPI() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /mo", s.handleMO)
	mux.HandleFunc("GET /mt", s.handleMTStream)
	mux.HandleFunc("GET /mt/history", s.handleMTHistory)
	return mux
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

func httpError(w http.ResponseWriter, code int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(map[string]string{"error": msg})
}
