package api

import (
	"net/http"
	"strings"
)

// probedMethods are the methods unknownRoute tries on a path, in the order Allow lists
// them.
var probedMethods = [...]string{http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut,
	http.MethodPatch, http.MethodDelete}

// unknownRoute answers what no API route matched. ServeMux answers 405 by itself only
// when no pattern matches a request, and the catch-all "/api/" (there so that unknown
// paths get a JSON error) matches every one; so the methods the path does take are
// found here, by asking the mux which pattern each would reach.
func (s *Server) unknownRoute(w http.ResponseWriter, r *http.Request) {
	var allowed []string
	for _, m := range probedMethods {
		probe := r.Clone(r.Context())
		probe.Method = m
		if _, pattern := s.mux.Handler(probe); pattern != "" && pattern != "/api/" {
			allowed = append(allowed, m)
		}
	}
	if len(allowed) == 0 {
		writeError(w, http.StatusNotFound, "not_found", "no such endpoint: "+r.Method+" "+r.URL.Path)
		return
	}
	w.Header().Set("Allow", strings.Join(allowed, ", "))
	writeError(w, http.StatusMethodNotAllowed, "method_not_allowed",
		r.URL.Path+" does not take "+r.Method+"; it takes "+strings.Join(allowed, ", "))
}
