package outbox

import (
	"testing"
	"time"

	"github.com/payswitch/payswitch/internal/pgtest"
)

// PaymentMessages finds a payment's messages near the times given, among many others,
// and never opens a code.
func TestPaymentMessages(t *testing.T) {
	pgtest.Both(t, func(t *testing.T) {
		db := mustOpen(t)
		o, err := NewSealed(db, newClock().Now, []byte("0123456789abcdef0123456789abcdef"))
		if err != nil {
			t.Fatal(err)
		}
		start := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
		at := func(d time.Duration, m Message) Message { m.CreatedAt = start.Add(d); return m }
		other := func(d time.Duration) Message {
			return at(d, Message{Kind: KindSMS, To: "254700000009", Text: "noise", PaymentID: "OTHERPAYMT", Purpose: "receipt"})
		}
		// Noise before, between and after the payment's messages; a reversal a day later.
		var ms []Message
		for i := range 3000 {
			ms = append(ms, other(time.Duration(i)*time.Millisecond))
		}
		ms = append(ms,
			at(5*time.Second, Message{Kind: KindSMS, To: "254700000001", Text: "code 123456 for PAYMENTAAA", PaymentID: "PAYMENTAAA", Purpose: "otp"}),
			at(6*time.Second, Message{Kind: KindSMS, To: "254700000001", Text: "PAYMENTAAA confirmed", PaymentID: "PAYMENTAAA", Purpose: "receipt"}))
		for i := range 3000 {
			ms = append(ms, other(10*time.Second+time.Duration(i)*time.Millisecond))
		}
		ms = append(ms, at(24*time.Hour, Message{Kind: KindSMS, To: "254700000001", Text: "PAYMENTAAA reversed", PaymentID: "PAYMENTAAA", Purpose: "reversal"}))
		put(t, db, o.Enqueue, ms...)

		got, err := o.PaymentMessages(ctx, "PAYMENTAAA", []time.Time{start.Add(5 * time.Second), start.Add(6 * time.Second), start.Add(24 * time.Hour)})
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 3 {
			t.Fatalf("%d messages, want 3: %+v", len(got), got)
		}
		if !got[0].Sealed || got[0].Text != "" {
			t.Fatalf("the code message: sealed %v, text %q; want it sealed and withheld", got[0].Sealed, got[0].Text)
		}
		if got[1].Text != "PAYMENTAAA confirmed" || got[2].Text != "PAYMENTAAA reversed" || got[1].Sealed {
			t.Fatalf("messages %+v", got[1:])
		}
		// A time after every message, and no messages at all.
		if got, err := o.PaymentMessages(ctx, "PAYMENTAAA", []time.Time{start.Add(48 * time.Hour)}); err != nil || len(got) != 0 {
			t.Fatalf("after everything: %d, %v", len(got), err)
		}
		empty, err := NewSealed(mustOpen(t), nil, []byte("0123456789abcdef0123456789abcdef"))
		if err != nil {
			t.Fatal(err)
		}
		if got, err := empty.PaymentMessages(ctx, "PAYMENTAAA", []time.Time{start}); err != nil || len(got) != 0 {
			t.Fatalf("no messages: %d, %v", len(got), err)
		}
	})
}
