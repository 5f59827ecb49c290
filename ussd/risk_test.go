package ussd

import (
	"testing"

	payswitch "github.com/payswitch/payswitch/switch"
)

// A payment graded low with frictionless on (contract section 14) completes at once: the
// menu ends with the receipt instead of asking for a code.
func TestFrictionlessPaymentEndsTheSession(t *testing.T) {
	h := newHarnessWith(t, nil, func(c *payswitch.Config) {
		c.Risk = &payswitch.Risk{Frictionless: true, LowMaxAmount: 50000}
	})
	h.Wallet(alice, 100000)
	h.shop()
	g, _ := h.dial("s1", alice)
	g.send("2*55501")
	wantContains(t, g.send("150"), "CON ", "Enter the code")
	wantContains(t, g.send(h.code(alice)), "END ")
	g, _ = h.dial("s2", alice)
	g.send("2*55501")
	got := g.send("150")
	wantContains(t, got, "END ", "KES 150.00")
	ps := h.Payments(alice)
	if p := ps[0]; p.State != payswitch.StateCompleted || p.Risk != payswitch.RiskLow {
		t.Fatalf("second payment %+v", p)
	}
}
