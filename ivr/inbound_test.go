package ivr

import (
	"context"
	"testing"
	"time"

	payswitch "github.com/payswitch/payswitch/switch"
)

func TestInboundPayMerchant(t *testing.T) {
	h := newHarness(t, options{})
	a := h.Wallet(alice, 100000)
	m := h.Merchant(till, "Mama Mboga", mama)
	c := h.inbound("ATVId_in1", "+254700000001") // the gateway's form of alice's number

	wantPrompt(t, c.key(""), 1, "Welcome to payswitch.", "Press 1 to pay a merchant, 2 to send money, 3 for your balance, 9 to lock the wallet of a lost phone.")
	wantPrompt(t, c.key("1"), 0, "Enter the merchant code")
	wantPrompt(t, c.key("55501#"), 0, "You are paying Mama Mboga, merchant 5 5 5 0 1.",
		"Enter the amount in whole shillings", "press 1 5 0")
	r := c.key("150#")

	ps := h.Payments(alice)
	if len(ps) != 2 { // the deposit and this one
		t.Fatalf("%d payments after the amount, want 2", len(ps))
	}
	p := h.lastPayment(alice)
	if p.State != payswitch.StatePendingOTP || p.Channel != payswitch.ChannelIVR || p.Amount != 15000 || p.PayeeCode != till {
		t.Fatalf("payment after the amount: %+v", p)
	}
	wantPrompt(t, r, 6, "A code was sent to you by SMS", "one hundred and fifty shillings",
		"Mama Mboga, merchant 5 5 5 0 1", "payment "+Spell(p.ID), "Enter the six digit code")
	if b := h.Balance(a.ID); b.Held != 15000 || b.Posted != 100000 {
		t.Errorf("alice while the code is awaited: %+v, want 15000 held of 100000", b)
	}

	wantFinal(t, c.key(h.code(alice)+"#"), "Payment "+Spell(p.ID)+" is complete.",
		"You paid one hundred and fifty shillings to Mama Mboga, merchant 5 5 5 0 1.",
		"Your new balance is eight hundred and fifty shillings.", "Goodbye.")
	if got := h.payment(p.ID).State; got != payswitch.StateCompleted {
		t.Errorf("payment %s, want completed", got)
	}
	if b := h.Balance(a.ID); b.Posted != 85000 || b.Held != 0 {
		t.Errorf("alice after: %+v, want 85000 posted, nothing held", b)
	}
	if b := h.Balance(m.ID); b.Posted != 15000 {
		t.Errorf("merchant after: %+v, want 15000", b)
	}
	// The gateway asking again after the end hears the same result, and nothing moves.
	wantFinal(t, c.key(""), "is complete")
	if b := h.Balance(m.ID); b.Posted != 15000 {
		t.Errorf("merchant after a repeat: %+v", b)
	}
	if c.hangUp().Say != nil || h.svc.Sessions() != 0 {
		t.Errorf("hang-up: want an empty answer and no session left, have %d", h.svc.Sessions())
	}
}

func TestInboundSendMoney(t *testing.T) {
	h := newHarness(t, options{})
	a := h.Wallet(alice, 100000)
	b := h.Wallet(bob, 0)
	c := h.inbound("s-send", "0700000001") // national form

	c.key("")
	wantPrompt(t, c.key("2"), 0, "Enter the phone number to send money to")
	wantPrompt(t, c.key("0700000002#"), 0, "You are sending money to 0 7 0 0 0 0 0 0 0 2.", "whole shillings")
	wantPrompt(t, c.key("500"), 6, "A code was sent to you by SMS", "five hundred shillings",
		"a number starting 2 5 4 7 and ending 0 0 2")
	wantFinal(t, c.key(h.code(alice)), "is complete", "You paid five hundred shillings to",
		"Your new balance is five hundred shillings.")
	if got := h.Balance(b.ID).Posted; got != 50000 {
		t.Errorf("bob has %d, want 50000", got)
	}
	if got := h.Balance(a.ID).Posted; got != 50000 {
		t.Errorf("alice has %d, want 50000", got)
	}
}

func TestInboundBalance(t *testing.T) {
	tests := []struct {
		name   string
		caller string
		want   string
	}{
		{"wallet", "254700000001", "Your available balance is one thousand five hundred shillings and fifty cents."},
		{"merchant's phone", mama, "Your available balance is zero shillings."},
	}
	h := newHarness(t, options{})
	h.Wallet(alice, 150050)
	h.Merchant(till, "Mama Mboga", mama)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := h.inbound("bal-"+tt.name, tt.caller)
			c.key("")
			wantFinal(t, c.key("3"), tt.want, "Goodbye.")
		})
	}
}

func TestInboundWrongKeys(t *testing.T) {
	tests := []struct {
		name    string
		before  []string // keys that reach the prompt under test
		wrong   string
		because string // said before the prompt again
		prompt  string
	}{
		{"menu key", nil, "7", "Sorry, that is not a valid choice.", "Press 1 to pay a merchant"},
		{"menu silence", nil, "", "Sorry, we did not get your answer.", "Press 1 to pay a merchant"},
		{"menu star", nil, "*", "not a valid choice", "Press 1 to pay a merchant"},
		{"unknown merchant", []string{"1"}, "99999#", "There is no merchant 9 9 9 9 9.", "Enter the merchant code"},
		{"short merchant code", []string{"1"}, "5#", "not a valid choice", "Enter the merchant code"},
		{"bad number", []string{"2"}, "12#", "That is not a valid phone number.", "Enter the phone number"},
		{"zero amount", []string{"1", "55501"}, "0#", "That is not a valid amount.", "Enter the amount"},
		{"amount silence", []string{"1", "55501"}, "", "did not get your answer", "Enter the amount"},
		{"code too short", []string{"1", "55501", "150"}, "123#", "Codes have six digits.", "Enter the six digit code"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, options{})
			a := h.Wallet(alice, 100000)
			m := h.Merchant(till, "Mama Mboga", mama)
			c := h.inbound("wrong", alice)
			c.key("")
			for _, k := range tt.before {
				c.key(k)
			}
			payments := len(h.Payments(alice))
			for i := range maxRepeats {
				r := c.key(tt.wrong)
				if r.GetDigits == nil {
					t.Fatalf("wrong key %d ended the call: %q", i+1, r.text())
				}
				wantSays(t, r, tt.because, tt.prompt)
			}
			r := c.key(tt.wrong)
			wantFinal(t, r, "Goodbye.")
			if len(tt.before) == 3 {
				wantSays(t, r, "is still waiting", "reply to our SMS with the code")
			} else {
				wantSays(t, r, "Nothing was paid.")
			}
			if got := len(h.Payments(alice)); got != payments {
				t.Errorf("%d payments after the wrong keys, want %d", got, payments)
			}
			if b := h.Balance(a.ID); b.Posted != 100000 {
				t.Errorf("alice: %+v", b)
			}
			if b := h.Balance(m.ID); b.Posted != 0 {
				t.Errorf("merchant: %+v", b)
			}
		})
	}
}

// A good key after a wrong one starts the count afresh.
func TestInboundWrongKeyThenRight(t *testing.T) {
	h := newHarness(t, options{})
	h.Wallet(alice, 100000)
	h.Merchant(till, "Mama Mboga", mama)
	c := h.inbound("recover", alice)
	c.key("")
	c.key("7")
	c.key("7")
	wantPrompt(t, c.key("1"), 0, "Enter the merchant code")
	c.key("1")
	c.key("1")
	wantPrompt(t, c.key(till), 0, "Mama Mboga")
}

func TestInboundWrongCodeThenRight(t *testing.T) {
	h := newHarness(t, options{})
	a := h.Wallet(alice, 100000)
	m := h.Merchant(till, "Mama Mboga", mama)
	c := h.inbound("code", alice)
	for _, k := range []string{"", "1", till, "150"} {
		c.key(k)
	}
	code := h.code(alice)
	wantPrompt(t, c.key(wrongCode(code)), 6, "That code is not right. You have two tries left.")
	wantPrompt(t, c.key(wrongCode(code)), 6, "You have one try left.")
	wantFinal(t, c.key(code), "is complete")
	if b := h.Balance(m.ID); b.Posted != 15000 {
		t.Errorf("merchant: %+v", b)
	}
	if b := h.Balance(a.ID); b.Posted != 85000 {
		t.Errorf("alice: %+v", b)
	}
}

func TestInboundTooManyWrongCodes(t *testing.T) {
	h := newHarness(t, options{})
	a := h.Wallet(alice, 100000)
	c := h.inbound("code", alice)
	h.Merchant(till, "Mama Mboga", mama)
	for _, k := range []string{"", "1", till, "150"} {
		c.key(k)
	}
	code := h.code(alice)
	id := h.lastPayment(alice).ID
	c.key(wrongCode(code))
	c.key(wrongCode(code))
	wantFinal(t, c.key(wrongCode(code)), "Too many wrong codes. Payment "+Spell(id)+" failed and nothing was paid.")
	if got := h.payment(id).State; got != payswitch.StateFailed {
		t.Errorf("payment %s, want failed", got)
	}
	if b := h.Balance(a.ID); b.Posted != 100000 || b.Held != 0 {
		t.Errorf("alice: %+v, want everything back", b)
	}
}

func wrongCode(code string) string {
	if code == "000000" {
		return "111111"
	}
	return "000000"
}

// A caller who hangs up while the code is awaited leaves the payment pending: the code
// sent by SMS still confirms it.
func TestInboundHangUpLeavesPaymentPending(t *testing.T) {
	h := newHarness(t, options{})
	h.Wallet(alice, 100000)
	m := h.Merchant(till, "Mama Mboga", mama)
	c := h.inbound("hangup", alice)
	for _, k := range []string{"", "1", till, "150"} {
		c.key(k)
	}
	if r := c.hangUp(); r.Say != nil || r.GetDigits != nil || r.Reject != nil {
		t.Errorf("hang-up answered %+v, want an empty Response", r)
	}
	if h.svc.Sessions() != 0 {
		t.Errorf("%d sessions after the hang-up", h.svc.Sessions())
	}
	p := h.lastPayment(alice)
	if p.State != payswitch.StatePendingOTP {
		t.Fatalf("payment %s after the hang-up, want pending_otp", p.State)
	}
	// Keys for the ended call change nothing.
	wantFinal(t, c.key(h.code(alice)), "this call has timed out")
	if got := h.payment(p.ID).State; got != payswitch.StatePendingOTP {
		t.Fatalf("payment %s after keys for an ended call", got)
	}
	if err := h.Engine.HandleSMS(context.Background(), alice, h.code(alice)); err != nil {
		t.Fatal(err)
	}
	if got := h.payment(p.ID).State; got != payswitch.StateCompleted {
		t.Errorf("payment %s after the SMS code, want completed", got)
	}
	if b := h.Balance(m.ID); b.Posted != 15000 {
		t.Errorf("merchant: %+v", b)
	}
}

func TestInboundRefusals(t *testing.T) {
	t.Run("insufficient funds", func(t *testing.T) {
		h := newHarness(t, options{})
		h.Wallet(alice, 10000)
		h.Merchant(till, "Mama Mboga", mama)
		c := h.inbound("poor", alice)
		for _, k := range []string{"", "1", till} {
			c.key(k)
		}
		wantFinal(t, c.key("150"), "You do not have enough money", "one hundred shillings", "Nothing was paid.")
		if len(h.Payments(alice)) != 1 { // the deposit only
			t.Errorf("payments: %d", len(h.Payments(alice)))
		}
	})
	t.Run("unknown recipient", func(t *testing.T) {
		h := newHarness(t, options{})
		h.Wallet(alice, 10000)
		c := h.inbound("nobody", alice)
		for _, k := range []string{"", "2", "0700000055"} {
			c.key(k)
		}
		wantFinal(t, c.key("50"), "The number 0 7 0 0 0 0 0 0 5 5 has no payswitch account.")
	})
	t.Run("self payment", func(t *testing.T) {
		h := newHarness(t, options{})
		h.Wallet(alice, 10000)
		c := h.inbound("self", alice)
		for _, k := range []string{"", "2", "0700000001"} {
			c.key(k)
		}
		wantFinal(t, c.key("50"), "You cannot send money to yourself.")
	})
	t.Run("pending from SMS", func(t *testing.T) {
		h := newHarness(t, options{})
		h.Wallet(alice, 100000)
		m := h.Merchant(till, "Mama Mboga", mama)
		if err := h.Engine.HandleSMS(context.Background(), alice, "PAY 55501 200"); err != nil {
			t.Fatal(err)
		}
		p := h.lastPayment(alice)
		c := h.inbound("pending", alice)
		for _, k := range []string{"", "1", till} {
			c.key(k)
		}
		wantPrompt(t, c.key("150"), 6, "You already have payment "+Spell(p.ID), "two hundred shillings",
			"A code was sent to you by SMS.")
		wantFinal(t, c.key(h.code(alice)), "is complete", "two hundred shillings")
		if b := h.Balance(m.ID); b.Posted != 20000 {
			t.Errorf("merchant: %+v", b)
		}
	})
	t.Run("confirmed by SMS meanwhile", func(t *testing.T) {
		h := newHarness(t, options{})
		h.Wallet(alice, 100000)
		h.Merchant(till, "Mama Mboga", mama)
		c := h.inbound("both", alice)
		for _, k := range []string{"", "1", till, "150"} {
			c.key(k)
		}
		code := h.code(alice)
		if err := h.Engine.HandleSMS(context.Background(), alice, code); err != nil {
			t.Fatal(err)
		}
		wantFinal(t, c.key(code), "is already complete")
	})
}

func TestInboundSessionTimeout(t *testing.T) {
	h := newHarness(t, options{})
	h.Wallet(alice, 100000)
	c := h.inbound("idle", alice)
	c.key("")
	c.key("1")
	h.Clock.Advance(DefaultSessionTimeout + time.Second)
	if n := h.svc.Sweep(); n != 1 {
		t.Errorf("Sweep removed %d, want 1", n)
	}
	wantFinal(t, c.key(till), "this call has timed out")

	// A call that idled out is gone even before a sweep.
	c2 := h.inbound("idle2", alice)
	c2.key("")
	h.Clock.Advance(DefaultSessionTimeout + time.Second)
	wantFinal(t, c2.key("1"), "this call has timed out")
	// The same ID with no keys is a new call.
	wantPrompt(t, c2.key(""), 1, "Welcome")
}
