package webhook

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"testing"
	"time"
)

func TestSignIsHMACOfTimestampDotBody(t *testing.T) {
	body := []byte(`{"id":"evt_1"}`)
	m := hmac.New(sha256.New, []byte(secretA))
	m.Write([]byte("1772359200." + string(body)))
	want := "t=1772359200,v1=" + hex.EncodeToString(m.Sum(nil))
	if got := Sign([]byte(secretA), 1772359200, body); got != want {
		t.Fatalf("Sign = %s, want %s", got, want)
	}
}

func TestVerify(t *testing.T) {
	secret, body := []byte(secretA), []byte(`{"id":"evt_1","type":"payment.completed"}`)
	now := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	sig := Sign(secret, now.Unix(), body)
	_, v1, _ := cut(sig)
	old := Sign([]byte(secretB), now.Unix(), body)
	_, oldV1, _ := cut(old)
	for _, tc := range []struct {
		name   string
		header string
		body   []byte
		now    time.Time
		want   error
	}{
		{"good", sig, body, now, nil},
		{"4m59s old", sig, body, now.Add(299 * time.Second), nil},
		{"a little ahead", sig, body, now.Add(-time.Minute), nil},
		{"spaces", " t=" + fmt.Sprint(now.Unix()) + ", v1=" + v1 + " ", body, now, nil},
		{"rotation: several v1", fmt.Sprintf("t=%d,v1=%s,v1=%s", now.Unix(), oldV1, v1), body, now, nil},
		{"unknown scheme ignored", sig + ",v0=abc", body, now, nil},
		{"missing", "", body, now, ErrNoSignature},
		{"no t", "v1=" + v1, body, now, ErrMalformedSignature},
		{"no v1", fmt.Sprintf("t=%d", now.Unix()), body, now, ErrMalformedSignature},
		{"t twice", fmt.Sprintf("t=%d,t=%d,v1=%s", now.Unix(), now.Unix(), v1), body, now, ErrMalformedSignature},
		{"t not a number", "t=soon,v1=" + v1, body, now, ErrMalformedSignature},
		{"v1 not hex", fmt.Sprintf("t=%d,v1=zz", now.Unix()), body, now, ErrMalformedSignature},
		{"not key=value", "garbage", body, now, ErrMalformedSignature},
		{"tampered body", sig, []byte(`{"id":"evt_1","type":"payment.refunded"}`), now, ErrSignatureMismatch},
		{"other secret only", old, body, now, ErrSignatureMismatch},
		{"timestamp moved", fmt.Sprintf("t=%d,v1=%s", now.Unix()+1, v1), body, now, ErrSignatureMismatch},
		{"5m01s old", sig, body, now.Add(301 * time.Second), ErrSignatureTime},
		{"a day old", sig, body, now.Add(24 * time.Hour), ErrSignatureTime},
		{"6m ahead", sig, body, now.Add(-6 * time.Minute), ErrSignatureTime},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := Verify(tc.header, secret, tc.body, tc.now, 0)
			if tc.want == nil && err != nil || tc.want != nil && !errors.Is(err, tc.want) {
				t.Fatalf("Verify = %v, want %v", err, tc.want)
			}
		})
	}
	if err := Verify(sig, secret, body, now.Add(time.Hour), 2*time.Hour); err != nil {
		t.Fatalf("with a tolerance of 2h, an hour-old signature: %v", err)
	}
}

// cut splits a header "t=...,v1=..." into its t and v1 values.
func cut(header string) (t, v1 string, ok bool) {
	var n int64
	var s string
	if _, err := fmt.Sscanf(header, "t=%d,v1=%s", &n, &s); err != nil {
		return "", "", false
	}
	return fmt.Sprint(n), s, true
}

// ExampleVerify is how a merchant's system in Go checks a delivery.
func ExampleVerify() {
	secret := []byte("whsec-merchant-a-0123456789") // as given in PUT .../webhook
	body := []byte(`{"id":"evt_0a1b2c3d4e5f6g7h8i9j","type":"payment.completed","created_at":"2026-03-01T10:00:00Z","data":{}}`)
	header := Sign(secret, 1772359200, body) // what the switch sends in Payswitch-Signature
	now := time.Unix(1772359230, 0)          // the receiver's clock, 30 s later

	fmt.Println(Verify(header, secret, body, now, DefaultTolerance))
	fmt.Println(Verify(header, secret, []byte(`{"id":"evt_forged"}`), now, DefaultTolerance))
	// Output:
	// <nil>
	// webhook: signature does not match the body
}
