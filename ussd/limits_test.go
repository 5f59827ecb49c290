package ussd

import (
	"context"
	"fmt"
	"testing"
)

// Attack (issue 17, memory): forged dials from one number keep at most maxPerNumber
// sessions of it in memory, the newest; before the fix every dial was kept until it
// timed out.
func TestSessionsCappedPerNumber(t *testing.T) {
	h := newHarness(t, nil)
	h.Wallet(alice, 100000)
	var dials []*gateway
	for i := range 40 {
		g, got := h.dial(fmt.Sprintf("flood-%d", i), alice)
		if got != mainScreen {
			t.Fatalf("dial %d: %q", i, got)
		}
		dials = append(dials, g)
	}
	if n := h.menu.Sessions(); n != maxPerNumber {
		t.Fatalf("%d sessions after a flood from one number, want %d", n, maxPerNumber)
	}
	wantPrefix(t, dials[len(dials)-1].send("4"), "CON My account")
	wantPrefix(t, dials[0].send("4"), "END This session has ended.")
	// Another number is not affected by alice's flood.
	h.Wallet(bob, 0)
	g, got := h.dial("bob-1", bob)
	if got != mainScreen {
		t.Fatalf("bob's dial: %q", got)
	}
	wantPrefix(t, g.send("4"), "CON My account")
}

// Attack (issue 17, memory): a flood of dials from many numbers fills the global limit;
// the oldest sessions are forgotten and a real user still gets the menu and goes on.
func TestSessionsCappedGlobally(t *testing.T) {
	h := newHarness(t, nil)
	const limit = 10
	h.menu.sessions.roster.max = limit
	for i := range 8 {
		n := fmt.Sprintf("2547110000%02d", i)
		h.Wallet(n, 0)
		for j := range maxPerNumber {
			h.dial(fmt.Sprintf("forged-%d-%d", i, j), n)
		}
	}
	if n := h.menu.Sessions(); n != limit {
		t.Fatalf("%d sessions after a flood, want %d", n, limit)
	}
	h.Wallet(alice, 100000)
	g, got := h.dial("real", alice)
	if got != mainScreen {
		t.Fatalf("a real dial during the flood: %q", got)
	}
	wantPrefix(t, g.send("4"), "CON My account")
	if n := h.menu.Sessions(); n != limit {
		t.Errorf("%d sessions, want %d", n, limit)
	}
	if n := h.menu.sessions.roster.order.Len(); n != limit {
		t.Errorf("roster of %d, want %d", n, limit)
	}
	oldest := &gateway{h: h, sid: "forged-0-0", phone: "254711000000"}
	wantPrefix(t, oldest.send("4"), "END This session has ended.")
}

// Issue 18, and memory: a number with no account is told so on its dial, with END and
// nothing kept in memory, over HTTP and SMPP alike.
func TestUnregisteredDialEndsAtOnce(t *testing.T) {
	h := newHarness(t, nil)
	const want = "END This number has no payswitch account. Visit an agent to open one."
	for i := range 20 {
		if _, got := h.dial(fmt.Sprintf("nobody-%d", i), "254700000077"); got != want {
			t.Fatalf("dial from a number with no account: %q, want %q", got, want)
		}
	}
	text, end, err := h.menu.HandleSMPP(context.Background(), "carrier-a", "254700000077", OpPSSRIndication, []byte{0x04, 0x00}, "*384#")
	if err != nil || !end || text != want[len("END "):] {
		t.Fatalf("SMPP dial: %q end=%v err=%v", text, end, err)
	}
	if n := h.menu.Sessions(); n != 0 {
		t.Errorf("%d sessions left by a number with no account", n)
	}
	// A merchant's phone has an account: its dial gets the menu (and its balance).
	h.merchant(till, mama)
	g, got := h.dial("mama", mama)
	if got != mainScreen {
		t.Fatalf("merchant's dial: %q", got)
	}
	wantPrefix(t, g.send("4"), "CON My account")
}
