package outbox

import (
	"bytes"
	"testing"

	"github.com/payswitch/payswitch/internal/pgtest"
)

// A merchant's request to pay carries the code that pays it: it is sealed like a code
// SMS, and the other messages about the same payment are not.
func TestSealedRequestToPay(t *testing.T) {
	pgtest.Both(t, func(t *testing.T) {
		db := mustOpen(t)
		o, err := NewSealed(db, newClock().Now, []byte("0123456789abcdef0123456789abcdef"))
		if err != nil {
			t.Fatal(err)
		}
		const text = "PAYREQUEST: Mama Mboga asks you to pay KES 150.00. Reply with code 739104 within 10 min."
		req := sms("254700000001", text)
		req.Purpose, req.PaymentID = "request", "PAYREQUEST"
		declined := sms("254700000001", "PAYREQUEST declined: nothing was paid.")
		declined.Purpose, declined.PaymentID = "reply", "PAYREQUEST"
		ids := put(t, db, o.Enqueue, req, declined)
		for i, want := range []bool{true, false} {
			var raw string
			if err := db.Reader().QueryRow(`SELECT text FROM messages WHERE id = ?`, ids[i]).Scan(&raw); err != nil {
				t.Fatal(err)
			}
			if sealed := !bytes.Contains([]byte(raw), []byte("PAYREQUEST")); sealed != want {
				t.Errorf("message %d stored as %q: sealed %v, want %v", i, raw, sealed, want)
			}
		}
		if m := get(t, o, ids[0]); m.Text != text {
			t.Fatalf("the request opens to %q", m.Text)
		}
	})
}
