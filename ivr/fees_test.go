package ivr

import (
	"strings"
	"testing"

	payswitch "github.com/payswitch/payswitch/switch"
)

// flatTariff charges fee on every payment.
type flatTariff struct{ fee int64 }

func (f flatTariff) Fee(string, int64) (int64, bool) { return f.fee, true }

// A payment with a fee is spoken with it, at the code step and at the end; a free one
// is spoken as before.
func TestFeeSpoken(t *testing.T) {
	for _, fee := range []int64{0, 700} {
		h := newHarness(t, options{engine: func(c *payswitch.Config) { c.Tariff = flatTariff{fee: fee} }})
		h.Wallet(alice, 100000)
		h.Merchant(till, "Mama Mboga", mama)
		c := h.inbound("call", alice)
		for _, k := range []string{"", "1", till + "#"} {
			c.key(k)
		}
		asked := c.key("150#")
		done := c.key(h.code(alice) + "#")
		p := h.lastPayment(alice)
		if p.State != payswitch.StateCompleted || p.Fee != fee {
			t.Fatalf("fee %d: payment %+v", fee, p)
		}
		if fee == 0 {
			wantPrompt(t, asked, 6, "to pay one hundred and fifty shillings to Mama Mboga")
			wantFinal(t, done, "You paid one hundred and fifty shillings to Mama Mboga, merchant",
				"Your new balance is eight hundred and fifty shillings.")
			if strings.Contains(asked.text()+done.text(), "fee") {
				t.Fatalf("a free payment names a fee: %q %q", asked.text(), done.text())
			}
			continue
		}
		wantPrompt(t, asked, 6, "with a fee of seven shillings, payment")
		wantFinal(t, done, "and a fee of seven shillings.", "Your new balance is eight hundred and forty-three shillings.")
	}
}
