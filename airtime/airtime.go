package airtime

import (
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode"

	"github.com/payswitch/payswitch/internal/mask"
)

// Errors returned by this package. Carrier trouble is never an error: it is an Unknown
// Result with a Reason.
var (
	// ErrBadRequest marks a Request that must not be sent (a programmer error upstream).
	ErrBadRequest = errors.New("airtime: bad request")
	// ErrBadConfig marks a CarrierConfig that NewRouter cannot use.
	ErrBadConfig = errors.New("airtime: bad carrier configuration")
)

// Outcome is what a carrier said about a top-up.
type Outcome string

// Outcomes. Unknown means no definite answer yet: the caller keeps the payment pending
// and asks again later with Resolve.
const (
	Success Outcome = "success"
	Failed  Outcome = "failed"
	Unknown Outcome = "unknown"
)

// Result is the answer to Credit or Resolve.
type Result struct {
	Outcome          Outcome
	CarrierReference string // the carrier's ID for the credit, on Success (may be empty)
	Reason           string // why, on Failed (fit to show a customer) and Unknown (for operators)
}

// Request is one top-up as the carrier sees it.
type Request struct {
	Reference string // the payment ID; the carrier's idempotency key
	MSISDN    string // digits only, country code first
	Amount    int64  // minor units
	Currency  string // ISO 4217 code
}

// Validate reports why r must not be sent, wrapping ErrBadRequest.
func (r Request) Validate() error {
	switch {
	case r.Reference == "" || len(r.Reference) > 64 || strings.ContainsFunc(r.Reference, notRefChar):
		// The reference becomes a URL path segment of the lookup, so it is kept to
		// characters that need no escaping and cannot be "." or "..".
		return fmt.Errorf("%w: reference %q: 1 to 64 letters, digits, '-' or '_'", ErrBadRequest, r.Reference)
	case len(r.MSISDN) < 7 || len(r.MSISDN) > 15 || strings.ContainsFunc(r.MSISDN, notDigit):
		return fmt.Errorf("%w: msisdn %s: 7 to 15 digits", ErrBadRequest, mask.MSISDN(r.MSISDN))
	case r.Amount <= 0:
		return fmt.Errorf("%w: amount %d: must be positive", ErrBadRequest, r.Amount)
	case len(r.Currency) != 3 || strings.ContainsFunc(r.Currency, func(c rune) bool { return c < 'A' || c > 'Z' }):
		return fmt.Errorf("%w: currency %q: three upper-case letters", ErrBadRequest, r.Currency)
	}
	return nil
}

func notDigit(c rune) bool { return c < '0' || c > '9' }

func notRefChar(c rune) bool {
	return !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_')
}

// clean makes text from a carrier safe to store, log and put in an SMS: no control
// characters, spaces collapsed, at most max runes.
func clean(s string, max int) string {
	s = strings.Map(func(c rune) rune {
		if unicode.IsControl(c) || c == unicode.ReplacementChar {
			return ' '
		}
		return c
	}, s)
	s = strings.Join(strings.Fields(s), " ")
	if r := []rune(s); len(r) > max {
		s = string(r[:max])
	}
	return s
}

// Defaults for CarrierConfig and each Carrier.
const (
	DefaultTimeout   = 10 * time.Second // per HTTP request when CarrierConfig.Timeout is 0
	breakerThreshold = 5                // consecutive faults that open the breaker
	breakerCooldown  = 30 * time.Second // how long it stays open before a trial
	defaultTries     = 3                // POSTs per Credit before the lookup
	defaultBackoff   = 200 * time.Millisecond
	maxBody          = 64 << 10 // larger answers are not airtime answers
)
