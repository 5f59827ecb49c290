package api

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/payswitch/payswitch/merchant"
)

// caller is who made a request: a configured token, or a merchant's key.
type caller struct {
	// name is the configured token's name, or "merchant <account> key <key id>"; a
	// change that records who made it (an account's freeze) names the caller by it.
	name     string
	role     Role
	merchant string // the merchant's account ID, for role Merchant
}

// callerKey is the context key of the caller of a request.
type callerKey struct{}

// callerOf is who made r (the zero caller outside mount).
func callerOf(r *http.Request) caller {
	c, _ := r.Context().Value(callerKey{}).(caller)
	return c
}

// actor is the name of the token r came with ("" outside mount).
func actor(r *http.Request) string { return callerOf(r).name }

// handler is an API handler: an error it returns becomes the contract's JSON error.
type handler func(w http.ResponseWriter, r *http.Request) error

// route mounts an API handler for operators, and for auditors too when min is Auditor.
// A merchant key gets 403 there.
func (s *Server) route(pattern string, min Role, h handler) { s.mount(pattern, min, false, h) }

// merchantRoute mounts an API handler that a merchant key may use as well as the tokens
// route admits (min Operator: operators and merchants; Auditor: auditors too). The
// handler must keep a merchant to what is its own (see ownMerchant, mayRead).
func (s *Server) merchantRoute(pattern string, min Role, h handler) { s.mount(pattern, min, true, h) }

func (s *Server) mount(pattern string, min Role, merchants bool, h handler) {
	_, path, _ := strings.Cut(pattern, " ")
	serve := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), s.cfg.Timeout)
		defer cancel()
		r = r.WithContext(ctx)
		// The token first: a valid token always works, so that an address's failures
		// (a neighbour behind the same NAT, a forged request from this machine) cannot
		// lock the operator out. Only failures are limited.
		c, err := s.authenticate(r)
		switch {
		case errors.Is(err, errBadToken):
			s.refuseToken(w, clientIP(r))
			return
		case err != nil:
			s.fail(w, r, err) // the keys could not be read: 503, not a refusal
			return
		}
		switch {
		case c.role == Merchant && !merchants:
			writeError(w, http.StatusForbidden, "forbidden", "a merchant key may not use this endpoint")
			return
		case min == Operator && c.role == Auditor:
			writeError(w, http.StatusForbidden, "forbidden", "this token may only read")
			return
		}
		if err := h(w, r.WithContext(context.WithValue(ctx, callerKey{}, c))); err != nil {
			s.fail(w, r, err)
		}
	})
	s.mux.Handle(pattern, s.instrument(path, s.limitBody(serve)))
}

// refuseToken answers a request without a valid token: 401, or 429 once client has
// failed too often within the window. The failure that reaches the limit is logged, so
// that an operator sees the guessing; the address is not a phone number and is logged
// whole, the token never.
func (s *Server) refuseToken(w http.ResponseWriter, client string) {
	now := s.cfg.Now()
	if !s.guesses.Allowed(client, now) {
		w.Header().Set("Retry-After", "60")
		writeError(w, http.StatusTooManyRequests, "too_many_attempts", "too many failed token attempts; wait a minute")
		return
	}
	if s.guesses.Failed(client, now) {
		s.cfg.Log.Warn().Str("client", client).Int("failures", s.guesses.Max()).Dur("window", s.guesses.Window()).
			Msg("too many bad API tokens from one address; its bad tokens get 429 for the rest of the window")
	}
	w.Header().Set("WWW-Authenticate", `Bearer realm="payswitch"`)
	writeError(w, http.StatusUnauthorized, "unauthorized", "a valid bearer token is required")
}

// errBadToken: the request has no bearer token, or one that is neither configured nor
// a live merchant key.
var errBadToken = errors.New("api: bad token")

// authenticate finds who r's bearer token belongs to. It compares the token with every
// configured one in constant time, so that neither which token nor how much of it
// matched shows in the timing; a token that is none of them may be a merchant's key,
// which the keys look up by its digest.
func (s *Server) authenticate(r *http.Request) (caller, error) {
	h := r.Header.Get("Authorization")
	scheme, tok, ok := strings.Cut(h, " ")
	tok = strings.TrimSpace(tok)
	if !ok || !strings.EqualFold(scheme, "Bearer") || tok == "" {
		return caller{}, errBadToken
	}
	d := sha256.Sum256([]byte(tok))
	var c caller
	found := 0
	for _, t := range s.tokens {
		if subtle.ConstantTimeCompare(d[:], t.digest[:]) == 1 {
			c = caller{name: t.name, role: t.role}
			found = 1
		}
	}
	if found == 1 {
		return c, nil
	}
	if s.cfg.Keys == nil {
		return caller{}, errBadToken
	}
	m, keyID, err := s.cfg.Keys.Authenticate(r.Context(), tok)
	switch {
	case errors.Is(err, merchant.ErrBadKey):
		return caller{}, errBadToken
	case err != nil:
		return caller{}, fmt.Errorf("api: check a merchant key: %w", err)
	}
	return caller{name: "merchant " + m + " key " + keyID, role: Merchant, merchant: m}, nil
}
