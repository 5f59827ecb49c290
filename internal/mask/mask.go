// Package mask hides phone numbers for logs, errors and messages to other people. It is
// the one rule every package uses, so that a number looks the same wherever it is shown.
package mask

// MSISDN keeps the first 4 and last 3 characters of a number and hides the rest:
// "254700000001" becomes "2547****001". A number of 5 to 7 characters keeps only its
// first 2 ("22333" becomes "22****"), a shorter one becomes "****", and "" stays "" so
// that a missing number is visibly missing. A masked number masks to itself.
func MSISDN(s string) string {
	r := []rune(s)
	switch {
	case len(r) == 0:
		return ""
	case len(r) >= 8:
		return string(r[:4]) + "****" + string(r[len(r)-3:])
	case len(r) >= 5:
		return string(r[:2]) + "****"
	default:
		return "****"
	}
}
