package ivr

import (
	"strings"
	"testing"
	"time"

	payswitch "github.com/payswitch/payswitch/switch"
)

// The wrong code that locks the number ends its payment, and the caller hears that the
// number is locked and until when, not that tries are left.
func TestInboundWrongCodeThatLocks(t *testing.T) {
	h := newHarness(t, options{fraud: payswitch.Fraud{WrongCodesLock: 2, LockWindow: 24 * time.Hour, LockDuration: time.Hour},
		cfg: func(c *Config) { c.Location = time.FixedZone("EAT", 3*3600) }})
	a := h.Wallet(alice, 100000)
	h.Merchant(till, "Mama Mboga", mama)
	c := h.inbound("lock", alice)
	for _, k := range []string{"", "1", till, "150"} {
		c.key(k)
	}
	code := h.code(alice)
	id := h.lastPayment(alice).ID
	c.key(wrongCode(code))
	r := c.key(wrongCode(code))
	wantFinal(t, r, "Too many wrong codes. Payment "+Spell(id)+" failed and nothing was paid.", "This number is locked until", "EAT")
	if strings.Contains(r.text(), "left") {
		t.Errorf("the locking code promised tries: %q", r.text())
	}
	if got := h.payment(id).State; got != payswitch.StateFailed {
		t.Errorf("payment %s, want failed", got)
	}
	if b := h.Balance(a.ID); b.Posted != 100000 || b.Held != 0 {
		t.Errorf("alice: %+v, want everything back", b)
	}
}

// Codes keyed through a callback source that has used up its wrong codes for the number
// are not checked: the caller is sent to the SMS instead, and the payment still waits.
func TestInboundOriginLimited(t *testing.T) {
	h := newHarness(t, options{origin: "ivr:192.0.2.7",
		fraud: payswitch.Fraud{WrongCodesLock: 5, WrongCodesPerOrigin: 1, LockWindow: 24 * time.Hour, LockDuration: time.Hour}})
	h.Wallet(alice, 100000)
	h.Merchant(till, "Mama Mboga", mama)
	c := h.inbound("origin", alice)
	for _, k := range []string{"", "1", till, "150"} {
		c.key(k)
	}
	code := h.code(alice)
	id := h.lastPayment(alice).ID
	c.key(wrongCode(code))
	wantFinal(t, c.key(code), "Too many wrong codes came through this line.", "reply to our SMS with the code")
	if got := h.payment(id).State; got != payswitch.StatePendingOTP {
		t.Errorf("payment %s, want it still waiting for the SMS reply", got)
	}
}
