package webhook

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// SignatureHeader carries a delivery's signature: "t=<unix seconds>,v1=<hex HMAC-SHA256
// of "<t>.<body>" under the merchant's secret>".
const SignatureHeader = "Payswitch-Signature"

// DefaultTolerance is how far a signature's timestamp may be from the receiver's clock,
// either way, for Verify to accept it: a captured delivery cannot be replayed later.
const DefaultTolerance = 5 * time.Minute

// Verify's refusals.
var (
	ErrNoSignature        = errors.New("webhook: no signature")
	ErrMalformedSignature = errors.New("webhook: malformed signature header")
	ErrSignatureMismatch  = errors.New("webhook: signature does not match the body")
	ErrSignatureTime      = errors.New("webhook: signature timestamp outside the tolerance")
)

// maxSignatureParts bounds the work a forged header can cause.
const maxSignatureParts = 16

// Sign returns the SignatureHeader value for body sent at t (Unix seconds) to a merchant
// whose secret is secret.
func Sign(secret []byte, t int64, body []byte) string {
	return "t=" + strconv.FormatInt(t, 10) + ",v1=" + hex.EncodeToString(mac(secret, t, body))
}

// mac is HMAC-SHA256 of "<t>.<body>" under secret.
func mac(secret []byte, t int64, body []byte) []byte {
	m := hmac.New(sha256.New, secret)
	m.Write(strconv.AppendInt(nil, t, 10))
	m.Write([]byte{'.'})
	m.Write(body)
	return m.Sum(nil)
}

// Verify checks a delivery as its receiver should: header is the SignatureHeader value
// as received, body the raw request body (before any parsing), now the receiver's clock
// and tolerance how far the timestamp may be from it (0: DefaultTolerance). The header
// may carry several v1 values (while a secret is being changed): one that matches is
// enough. Keys other than t and v1 are ignored, for schemes yet to come.
func Verify(header string, secret, body []byte, now time.Time, tolerance time.Duration) error {
	if tolerance <= 0 {
		tolerance = DefaultTolerance
	}
	header = strings.TrimSpace(header)
	if header == "" {
		return ErrNoSignature
	}
	parts := strings.Split(header, ",")
	if len(parts) > maxSignatureParts {
		return fmt.Errorf("%w: %d parts", ErrMalformedSignature, len(parts))
	}
	var (
		t    int64
		hasT bool
		sigs [][]byte
	)
	for _, p := range parts {
		k, v, ok := strings.Cut(strings.TrimSpace(p), "=")
		if !ok {
			return fmt.Errorf("%w: %q is not key=value", ErrMalformedSignature, p)
		}
		switch k {
		case "t":
			n, err := strconv.ParseInt(v, 10, 64)
			if hasT || err != nil || n <= 0 {
				return fmt.Errorf("%w: bad or repeated t", ErrMalformedSignature)
			}
			t, hasT = n, true
		case "v1":
			s, err := hex.DecodeString(v)
			if err != nil || len(s) != sha256.Size {
				return fmt.Errorf("%w: v1 is not 64 hex digits", ErrMalformedSignature)
			}
			sigs = append(sigs, s)
		}
	}
	if !hasT || len(sigs) == 0 {
		return fmt.Errorf("%w: want t=<seconds>,v1=<hex>", ErrMalformedSignature)
	}
	want := mac(secret, t, body)
	match := false
	for _, s := range sigs {
		if hmac.Equal(s, want) {
			match = true
		}
	}
	if !match {
		return ErrSignatureMismatch
	}
	// Checked once the signature is known good, so that the timestamp is the sender's.
	switch age := now.Sub(time.Unix(t, 0)); {
	case age > tolerance:
		return fmt.Errorf("%w: signed %v ago", ErrSignatureTime, age.Truncate(time.Second))
	case age < -tolerance:
		return fmt.Errorf("%w: signed %v in the future", ErrSignatureTime, (-age).Truncate(time.Second))
	}
	return nil
}
