package api

import (
	"net"
	"net/http"
)

// clientIP is the address a request came from (the switch listens directly; no proxy
// headers are trusted).
func clientIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}
