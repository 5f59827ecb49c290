package ivr

import (
	"fmt"
	"regexp"
	"testing"
)

// Attack (issue 17, memory): forged first callbacks from one number keep at most
// maxPerNumber calls of it in memory, the newest; before the fix each one was kept
// until it timed out.
func TestSessionsCappedPerNumber(t *testing.T) {
	h := newHarness(t, options{})
	h.Wallet(alice, 100000)
	h.Merchant(till, "Mama Mboga", mama)
	var calls []*call
	for i := range 40 {
		c := h.inbound(fmt.Sprintf("flood-%d", i), alice)
		wantPrompt(t, c.key(""), 1, "Press 1 to pay a merchant")
		calls = append(calls, c)
	}
	if n := h.svc.Sessions(); n != maxPerNumber {
		t.Fatalf("%d sessions after a flood from one number, want %d", n, maxPerNumber)
	}
	// The newest calls go on; the oldest were forgotten.
	wantPrompt(t, calls[len(calls)-1].key("1"), 0, "Enter the merchant code")
	wantFinal(t, calls[0].key("1"), "this call has timed out")
	// Another number is not affected by alice's flood.
	h.Wallet(bob, 100000)
	b := h.inbound("bob-1", bob)
	wantPrompt(t, b.key(""), 1, "Press 1")
	wantPrompt(t, b.key("1"), 0, "Enter the merchant code")
}

// Attack (issue 17, memory): a flood of forged calls from many numbers fills the global
// limit; the oldest calls are forgotten and a real caller still gets the menu and goes
// on. Before the fix the limit refused newcomers ("we are very busy").
func TestSessionsCappedGlobally(t *testing.T) {
	h := newHarness(t, options{})
	h.Merchant(till, "Mama Mboga", mama)
	const limit = 10
	h.svc.sessions.max = limit
	for i := range 8 {
		n := fmt.Sprintf("2547110000%02d", i)
		h.Wallet(n, 0)
		for j := range maxPerNumber {
			h.inbound(fmt.Sprintf("forged-%d-%d", i, j), n).key("")
		}
	}
	if n := h.svc.Sessions(); n != limit {
		t.Fatalf("%d sessions after a flood, want %d", n, limit)
	}
	h.Wallet(alice, 100000)
	c := h.inbound("real", alice)
	wantPrompt(t, c.key(""), 1, "Welcome to payswitch.", "Press 1 to pay a merchant")
	wantPrompt(t, c.key("1"), 0, "Enter the merchant code")
	if n := h.svc.Sessions(); n != limit {
		t.Errorf("%d sessions, want %d", n, limit)
	}
	wantFinal(t, h.inbound("forged-0-0", "254711000000").key("1"), "this call has timed out")
}

// Issue 18: a caller whose number has no account hears so at once, not after the menu;
// since issue 25 it is offered the lost-phone lock, and silence or another key ends the
// call.
func TestInboundUnregisteredToldAtOnce(t *testing.T) {
	h := newHarness(t, options{})
	for _, k := range []string{"", "1"} {
		c := h.inbound("nobody-"+k, "0700000077")
		wantPrompt(t, c.key(""), 1, "This number has no payswitch account; please visit an agent to open one.",
			"To lock the wallet of a lost phone, press 9.")
		wantFinal(t, c.key(k), "This number has no payswitch account. Please visit an agent to open one.")
	}
}

// lowerStart finds a sentence that starts in lower case.
var lowerStart = regexp.MustCompile(`(^|[.!?] +)[a-z]`)

// Issue 18: every spoken sentence starts with a capital letter, also when a text starts
// a sentence with a placeholder ("{amount} paid").
func TestSentencesStartWithCapital(t *testing.T) {
	h := newHarness(t, options{cfg: func(c *Config) {
		c.Texts = map[string]string{"success": "{amount} paid to {payee}. payment {id} is complete."}
	}})
	h.Wallet(alice, 100000)
	h.Wallet(bob, 0)
	c := h.inbound("caps", alice)
	for _, keys := range []string{"", "2", "0700000002#", "150#"} {
		if r := c.key(keys); lowerStart.MatchString(r.text()) {
			t.Errorf("after %q: %q", keys, r.text())
		}
	}
	wantFinal(t, c.key(h.code(alice)), "One hundred and fifty shillings paid to ",
		"Payment "+Spell(h.lastPayment(alice).ID)+" is complete.")

	for key, text := range DefaultTexts {
		if lowerStart.MatchString(text) {
			t.Errorf("text %s starts a sentence in lower case: %q", key, text)
		}
	}
	for _, tt := range []struct{ in, want string }{
		{"one. two! three? four", "One. Two! Three? Four"},
		{"Payment K 7. 5 shillings. e.g.x", "Payment K 7. 5 shillings. E.g.x"},
		{"1.5 and a.b", "1.5 and a.b"},
		{"", ""},
	} {
		if got := sentences(tt.in); got != tt.want {
			t.Errorf("sentences(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}
