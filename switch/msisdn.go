package payswitch

import (
	"errors"
	"strings"

	"github.com/payswitch/payswitch/internal/mask"
)

// ErrBadMSISDN is returned for text that is not a phone number.
var ErrBadMSISDN = errors.New("payswitch: invalid phone number")

// separators are what people put between the digits of a number.
var separators = strings.NewReplacer(" ", "", "-", "")

// NormalizeMSISDN turns the ways people write a number into its international form
// without '+': "+254 700 000 001", "0700000001" (with countryCode "254") and
// "254700000001" are all "254700000001".
func NormalizeMSISDN(s, countryCode string) (string, error) {
	s = separators.Replace(strings.TrimSpace(s))
	s = strings.TrimPrefix(s, "+")
	if strings.HasPrefix(s, "00") {
		s = s[2:]
	} else if strings.HasPrefix(s, "0") && countryCode != "" {
		s = countryCode + s[1:]
	}
	if len(s) < 8 || len(s) > 15 || !allDigits(s) || s[0] == '0' {
		return "", ErrBadMSISDN
	}
	return s, nil
}

// Mask hides the middle of a number for logs and for messages to other people:
// "254700000001" becomes "2547****001".
func Mask(msisdn string) string { return mask.MSISDN(msisdn) }
