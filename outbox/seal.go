package outbox

import (
	"errors"
	"fmt"
	"time"

	"github.com/payswitch/payswitch/internal/seal"
	"github.com/payswitch/payswitch/store"
)

// ErrSealed: a sealed text could not be opened (no key, or another key).
var ErrSealed = errors.New("outbox: cannot open sealed text")

// sealedPlaceholder stands for a sealed text that this Outbox cannot open.
const sealedPlaceholder = "[sealed]"

// NewSealed is New for a switch that keeps its one-time codes out of the database in
// clear: Outbox.Enqueue encrypts the text of every message whose Purpose is "otp" (the
// SMS that carries a code), and of every call that has a text (a code to speak), with
// AES-256-GCM, and Claim, Get, List and Receipt return it
// opened. key is the switch's secret (the OTP secret does; at least 16 bytes): the
// encryption key is derived from it, so the same secret never serves two purposes.
//
// A sealed message that cannot be opened (the secret changed) fails when claimed, and
// reads show its text as "[sealed]".
func NewSealed(db *store.DB, now func() time.Time, key []byte) (*Outbox, error) {
	sealer, err := seal.New(key, "payswitch outbox seal v1")
	if err != nil {
		return nil, fmt.Errorf("outbox: %w", err)
	}
	o := New(db, now)
	o.sealer = sealer
	return o, nil
}

// sealable reports whether Outbox.Enqueue seals m's text: the SMS that carry a code
// (purpose "otp", and "request", a merchant's request to pay with the code that pays
// it), and any call's text, which is only ever a code to speak.
func sealable(m Message) bool {
	return m.Purpose == "otp" || m.Purpose == "request" || m.Kind == KindCall && m.Text != ""
}

// sealAD binds a sealed text to its message, so that it cannot be moved to another
// recipient's row and opened there.
func sealAD(kind, to, paymentID string) []byte {
	return []byte(kind + "\x00" + to + "\x00" + paymentID)
}

func (o *Outbox) sealText(m Message) (string, error) {
	sealed, err := o.sealer.Seal([]byte(m.Text), sealAD(m.Kind, m.To, m.PaymentID))
	if err != nil {
		return "", fmt.Errorf("outbox: %w", err)
	}
	return sealed, nil
}

// openText replaces m.Text, read from a row marked sealed, with its clear text.
func (o *Outbox) openText(m *Message) error {
	sealed := m.Text
	m.Text = sealedPlaceholder
	if o.sealer == nil {
		return fmt.Errorf("%w: message %d: this outbox has no key", ErrSealed, m.ID)
	}
	text, err := o.sealer.Open(sealed, sealAD(m.Kind, m.To, m.PaymentID))
	if err != nil {
		return fmt.Errorf("%w: message %d: %v", ErrSealed, m.ID, err)
	}
	m.Text = string(text)
	return nil
}
