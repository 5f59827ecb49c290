package smpp

import (
	"testing"

	"github.com/payswitch/payswitch/outbox"
)

// The messages that carry a code, or lead to one, are routed by prefix only (contract
// section 9): the code SMS, and a merchant's request to pay, which carries the code that
// pays it. Nothing else is.
func TestCarriesCode(t *testing.T) {
	for purpose, want := range map[string]bool{
		"otp": true, "request": true,
		"reply": false, "receipt": false, "notice": false, "expired": false, "": false,
	} {
		if got := CarriesCode(outbox.Message{To: "254700000001", Purpose: purpose}); got != want {
			t.Errorf("purpose %q: CarriesCode %v, want %v", purpose, got, want)
		}
	}
}
