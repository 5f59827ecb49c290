package payswitch

import (
	"crypto/rand"
)

// idAlphabet leaves out I and O, which people misread as 1 and 0 on a small screen.
const idAlphabet = "ABCDEFGHJKLMNPQRSTUVWXYZ0123456789"

// NewPaymentID returns a 10-character payment ID of upper-case letters and digits. It
// starts with a letter and never holds more than two digits in a row, so that in an OTP
// message it reads as a word and can never be mistaken for the code or an amount.
func NewPaymentID() string {
	var id [10]byte
	var buf [32]byte
	for {
		rand.Read(buf[:])
		n, run := 0, 0
		for _, b := range buf {
			// Rejection sampling keeps every symbol equally likely: 238 = 7*34.
			if b >= 238 {
				continue
			}
			c := idAlphabet[int(b)%len(idAlphabet)]
			isDigit := c >= '0' && c <= '9'
			if isDigit && (n == 0 || run == 2) {
				continue
			}
			if isDigit {
				run++
			} else {
				run = 0
			}
			id[n] = c
			n++
			if n == len(id) {
				return string(id[:])
			}
		}
	}
}

// ValidPaymentID reports whether s has the shape of a payment ID.
func ValidPaymentID(s string) bool {
	if len(s) != 10 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'A' && c <= 'Z' || c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}
