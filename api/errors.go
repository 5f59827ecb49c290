package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/payswitch/payswitch/ledger"
	"github.com/payswitch/payswitch/merchant"
	payswitch "github.com/payswitch/payswitch/switch"
)

// fail maps an engine or ledger error to the contract's JSON error.
func (s *Server) fail(w http.ResponseWriter, r *http.Request, err error) {
	if fault := s.cfg.Diagnose(err); fault != "" {
		// The database cannot take the write (disk full, read-only, locked): the client
		// should wait and retry. /healthz says why, and the fault is logged once where
		// the database is watched, not here for every request.
		w.Header().Set("Retry-After", "10")
		writeError(w, http.StatusServiceUnavailable, "database_unavailable", fmt.Sprintf(
			"the database cannot be written right now (%s); the request was not completed: retry it later, with the same reference where it has one", fault))
		return
	}
	var status int
	var code string
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &tooBig):
		writeError(w, http.StatusRequestEntityTooLarge, "body_too_large", fmt.Sprintf(
			"the request body is larger than the limit of %d bytes; nothing was changed", tooBig.Limit))
		return
	case errors.Is(err, errForbidden):
		status, code = http.StatusForbidden, "forbidden"
	case errors.Is(err, errNotConfigured):
		status, code = http.StatusNotImplemented, "not_configured"
	// The refusals of a request to pay come before ErrInvalid and ErrConflict, which
	// the engine may wrap them in.
	case errors.Is(err, payswitch.ErrUnknownProduct):
		status, code = http.StatusNotFound, "unknown_product"
	case errors.Is(err, payswitch.ErrPayerBusy):
		status, code = http.StatusConflict, "payer_busy"
	case errors.Is(err, payswitch.ErrPayerStopped):
		status, code = http.StatusForbidden, "payer_stopped"
	case errors.Is(err, payswitch.ErrRequestBlocked): // risk grading (contract section 14); names no list
		status, code = http.StatusForbidden, "request_blocked"
	case errors.Is(err, payswitch.ErrRateLimited):
		status, code = http.StatusTooManyRequests, "rate_limited"
	case errors.Is(err, payswitch.ErrBalanceCap): // a tier's max_balance (contract section 14)
		status, code = http.StatusConflict, "balance_cap"
	case errors.Is(err, errBadJSON), errors.Is(err, payswitch.ErrInvalid), errors.Is(err, merchant.ErrInvalid),
		invalidInput(err):
		status, code = http.StatusBadRequest, "invalid_request"
	case errors.Is(err, payswitch.ErrNotFound), errors.Is(err, ledger.ErrNotFound), errors.Is(err, merchant.ErrNotFound):
		status, code = http.StatusNotFound, "not_found"
	case tillTaken(err):
		status, code = http.StatusConflict, "till_taken"
	case errors.Is(err, merchant.ErrTaken):
		status, code = http.StatusConflict, "conflict"
	case errors.Is(err, merchant.ErrLimit):
		status, code = http.StatusConflict, "limit_reached"
	case errors.Is(err, payswitch.ErrNotInEscrow):
		status, code = http.StatusConflict, "not_in_escrow"
	case errors.Is(err, payswitch.ErrAirtimeDelivered):
		status, code = http.StatusConflict, "airtime_delivered"
	case errors.Is(err, payswitch.ErrConflict), errors.Is(err, ledger.ErrDuplicate), errors.Is(err, ledger.ErrIdempotencyConflict):
		status, code = http.StatusConflict, "conflict"
	case errors.Is(err, ledger.ErrInsufficientFunds), errors.Is(err, payswitch.ErrInsufficientFund):
		status, code = http.StatusUnprocessableEntity, "insufficient_funds"
	case errors.Is(err, context.DeadlineExceeded):
		status, code = http.StatusServiceUnavailable, "timeout"
	default:
		s.cfg.Log.Error().Err(err).Str("path", r.URL.Path).Msg("request failed")
		writeError(w, http.StatusInternalServerError, "internal", "internal error; nothing was changed unless the result says so")
		return
	}
	writeError(w, status, code, cleanMessage(err))
}

// errNotConfigured: the switch runs without the part a route needs (Config's Keys,
// Catalog, Requests or Webhooks).
var errNotConfigured = errors.New("api: not configured on this switch")

// errForbidden: the caller's role may use the route, but not for what it asked.
var errForbidden = errors.New("api: forbidden")

// invalidInput reports whether err says the input was bad through an InvalidInput
// method, as the webhook package's validation errors do (it does not import the
// engine, so it cannot wrap payswitch.ErrInvalid).
func invalidInput(err error) bool {
	var v interface{ InvalidInput() bool }
	return errors.As(err, &v) && v.InvalidInput()
}

// cleanMessage drops the package prefixes that sentinel errors carry. Package
// merchant's errors start the message; elsewhere "merchant: " is the engine's name for
// a field ("invalid request: merchant: required") or ends a phrase ("from this
// merchant: 2547****001"), and stays.
func cleanMessage(err error) string {
	msg := strings.TrimPrefix(err.Error(), "merchant: ")
	for _, p := range []string{"payswitch: ", "ledger: ", "api: "} {
		msg = strings.ReplaceAll(msg, p, "")
	}
	return msg
}

type errorBody struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

func writeError(w http.ResponseWriter, status int, code, message string) {
	var b errorBody
	b.Error.Code, b.Error.Message = code, message
	writeJSON(w, status, b)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	// A name a merchant typed (a product's, a key's) comes back as JSON text, with <, >
	// and & escaped by the encoder; nosniff keeps a browser from reading the answer as
	// anything but JSON.
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.Encode(v)
}
