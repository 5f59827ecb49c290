package ivr

import (
	"context"
	"encoding/xml"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/payswitch/payswitch/outbox"
	payswitch "github.com/payswitch/payswitch/switch"
)

// Tests of issue 17: no callback may act as anyone, and the second factor is never
// spoken. Each attack test failed on the code before the fix.

// fallbackCall has alice request a payment of amount to the till by SMS and the SMSC
// report her code SMS undeliverable, as for a phone that is off: the switch then queues
// a payer_confirm call that carries a new code. It returns the payment and that call
// message, whose Text (opened from its seal) is the code.
func (h *harness) fallbackCall(amount string) (*payswitch.Payment, outbox.Message) {
	h.t.Helper()
	ctx := context.Background()
	if err := h.Engine.HandleSMS(ctx, alice, "PAY "+till+" "+amount); err != nil {
		h.t.Fatal(err)
	}
	p := h.lastPayment(alice)
	if err := h.Engine.RecordCodeDelivery(ctx, p.ID, alice, false, "UNDELIV"); err != nil {
		h.t.Fatal(err)
	}
	for _, m := range h.callsTo(alice) {
		if m.Purpose == PurposePayerConfirm && m.PaymentID == p.ID {
			if len(m.Text) != 6 {
				h.t.Fatalf("the fallback call carries %d characters, want a 6-digit code", len(m.Text))
			}
			return p, m
		}
	}
	h.t.Fatalf("no payer_confirm call queued for %s", p.ID)
	return nil, outbox.Message{}
}

// spoken matches code in a text however it is written: "482913", "4 8 2 9 1 3", "4, 8, 2".
func spoken(code string) *regexp.Regexp {
	return regexp.MustCompile(strings.Join(strings.Split(code, ""), `\D{0,2}`))
}

// noCode fails the test when r, as the gateway gets it, carries code in any form.
func noCode(t testing.TB, r Response, code string) {
	t.Helper()
	body, err := xml.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	if spoken(code).Match(body) {
		t.Fatalf("the answer carries the code: %s", body)
	}
}

// The attack of issue 17: a forged USSD payment on a number whose phone is off, then a
// forged /ivr callback for that number, heard the fallback code and completed the
// payment. Now a callback whose sessionId is not the gateway's call ID is rejected,
// whatever it keys, and the code is in no answer.
func TestForgedCallbackCannotHearFallbackCode(t *testing.T) {
	h := newHarness(t, options{gateway: true})
	a := h.Wallet(alice, 100000)
	h.Merchant(till, "Mama Mboga", mama)
	h.run()
	p, call := h.fallbackCall("150")
	sent := h.sent(call.ID)
	code := call.Text

	for _, id := range []string{"forged-1", "ATVId_9", strings.ToLower(sent.MessageIDs[0]) + "x"} {
		forged := h.outboundCall(id, alice)
		for _, keys := range []string{"", "150#", code + "#", "1"} {
			r := forged.key(keys)
			noCode(t, r, code)
			if r.Reject == nil || r.Say != nil || r.GetDigits != nil {
				t.Fatalf("forged callback %q keying %q: want <Reject/>, got %+v", id, keys, r)
			}
		}
	}
	if h.svc.Sessions() != 0 {
		t.Errorf("forged callbacks left %d sessions", h.svc.Sessions())
	}
	if got := h.payment(p.ID).State; got != payswitch.StatePendingOTP {
		t.Fatalf("payment %s after forged callbacks, want pending_otp", got)
	}
	if b := h.Balance(a.ID); b.Posted != 100000 || b.Held != 15000 {
		t.Errorf("alice after forged callbacks: %+v", b)
	}
}

// The real fallback call never says the code: the payer hears the payment and keys its
// amount, and the IVR confirms with the call's code itself.
func TestFallbackCallConfirmsByAmount(t *testing.T) {
	h := newHarness(t, options{gateway: true})
	a := h.Wallet(alice, 100000)
	m := h.Merchant(till, "Mama Mboga", mama)
	h.run()
	p, call := h.fallbackCall("150.50")
	code := call.Text
	c := h.outboundCall(h.sent(call.ID).MessageIDs[0], "+"+alice)

	r := c.key("")
	noCode(t, r, code)
	wantPrompt(t, r, 0, "This is payswitch. We could not send you a code by SMS for payment "+Spell(p.ID)+".",
		"If you did not, hang up and nothing will be paid.",
		"The payment is one hundred and fifty shillings and fifty cents to Mama Mboga, merchant 5 5 5 0 1.",
		"key in the amount in whole shillings")
	for _, keys := range []string{"15050#", "", code + "#"} {
		r = c.key(keys)
		noCode(t, r, code)
		if keys == "" {
			wantPrompt(t, r, 0, "we did not get your answer", "The payment is one hundred and fifty shillings")
		} else {
			wantPrompt(t, r, 0, "That is not the amount of this payment.", "The payment is one hundred and fifty shillings")
		}
		if got := h.payment(p.ID).State; got != payswitch.StatePendingOTP {
			t.Fatalf("payment %s after keying %q", got, keys)
		}
		c.h.svc.mu.Lock()
		if sess := c.h.svc.sessions.get(c.id); sess != nil {
			sess.misses = 0 // only the answers are under test here, not the give-up
		}
		c.h.svc.mu.Unlock()
	}
	r = c.key("0150#")
	noCode(t, r, code)
	wantFinal(t, r, "Payment "+Spell(p.ID)+" is complete.",
		"You paid one hundred and fifty shillings and fifty cents to Mama Mboga, merchant 5 5 5 0 1.")
	if b := h.Balance(a.ID); b.Posted != 100000-15050 || b.Held != 0 {
		t.Errorf("alice: %+v", b)
	}
	if b := h.Balance(m.ID); b.Posted != 15050 {
		t.Errorf("merchant: %+v", b)
	}
}

// A payer who keys a wrong amount three times hears that nothing was paid; the payment
// keeps waiting, and no code was spoken.
func TestFallbackCallGivesUp(t *testing.T) {
	h := newHarness(t, options{gateway: true})
	h.Wallet(alice, 100000)
	h.Merchant(till, "Mama Mboga", mama)
	h.run()
	p, call := h.fallbackCall("150")
	c := h.outboundCall(h.sent(call.ID).MessageIDs[0], alice)
	noCode(t, c.key(""), call.Text)
	for range maxRepeats {
		noCode(t, c.key("1#"), call.Text)
	}
	r := c.key("1#")
	noCode(t, r, call.Text)
	wantFinal(t, r, "Payment "+Spell(p.ID)+" was not confirmed. Nothing was paid.")
	if got := h.payment(p.ID).State; got != payswitch.StatePendingOTP {
		t.Errorf("payment %s, want pending_otp", got)
	}
}

// A fallback call whose code died (a newer one was made by RESEND) cannot confirm.
func TestFallbackCallAfterNewerCode(t *testing.T) {
	h := newHarness(t, options{gateway: true})
	h.Wallet(alice, 100000)
	h.Merchant(till, "Mama Mboga", mama)
	h.run()
	p, call := h.fallbackCall("150")
	c := h.outboundCall(h.sent(call.ID).MessageIDs[0], alice)
	c.key("")
	h.Clock.Advance(2 * time.Minute) // past the resend interval
	if err := h.Engine.HandleSMS(context.Background(), alice, "RESEND"); err != nil {
		t.Fatal(err)
	}
	r := c.key("150#")
	noCode(t, r, call.Text)
	wantFinal(t, r, "can no longer confirm payment "+Spell(p.ID), "Nothing was paid.")
	if got := h.payment(p.ID).State; got != payswitch.StatePendingOTP {
		t.Errorf("payment %s, want pending_otp", got)
	}
}

// earlyGateway makes the gateway post a callback of the first call it is asked for
// before it answers that request: it starts post, waits until that callback waits for the request to be
// recorded, then answers with the call ID id.
func (h *harness) earlyGateway(id string, post func() Response) <-chan Response {
	h.t.Helper()
	got := make(chan Response, 1)
	waiting := make(chan struct{}, 1)
	h.svc.Caller().waiting = func() {
		select {
		case waiting <- struct{}{}:
		default:
		}
	}
	h.gateway.setAnswer(func(n int, w http.ResponseWriter, r *http.Request) {
		if n > 1 { // a later call (the merchant's notice, say): answered at once
			w.Write([]byte(`{"sessionId": "later-` + strconv.Itoa(n) + `"}`))
			return
		}
		go func() { got <- post() }()
		select {
		case <-waiting:
		case <-r.Context().Done():
			return
		}
		w.Write([]byte(`{"sessionId": "` + id + `"}`))
	})
	return got
}

// The gateway may post a call's first callback before it answers our request: the
// callback waits for the answer to be recorded and is matched by its ID.
func TestCallbackBeforeGatewayAnswer(t *testing.T) {
	h := newHarness(t, options{gateway: true})
	h.Wallet(alice, 100000)
	h.Merchant(till, "Mama Mboga", mama)
	c := h.outboundCall("early-1", alice)
	got := h.earlyGateway("early-1", func() Response { return c.key("") })
	h.run()
	p, call := h.fallbackCall("150")
	r := <-got
	noCode(t, r, call.Text)
	wantPrompt(t, r, 0, "We could not send you a code by SMS for payment "+Spell(p.ID))
	wantFinal(t, c.key("150#"), "is complete")
}

// Attack: a forged callback posted while the switch's request for a call is in flight
// is not taken for that call. Before the fix a call still being requested was matched
// by its number and the forged callback heard the code.
func TestForgedCallbackWhileCallInFlight(t *testing.T) {
	h := newHarness(t, options{gateway: true})
	h.Wallet(alice, 100000)
	h.Merchant(till, "Mama Mboga", mama)
	forged := h.outboundCall("forged-early", alice)
	got := h.earlyGateway("real-1", func() Response { return forged.key("") })
	h.run()
	p, call := h.fallbackCall("150")
	r := <-got
	noCode(t, r, call.Text)
	if r.Reject == nil || r.Say != nil || r.GetDigits != nil {
		t.Fatalf("forged callback during the request: want <Reject/>, got %+v", r)
	}
	// The real call is not disturbed.
	real := h.outboundCall(h.sent(call.ID).MessageIDs[0], alice)
	wantPrompt(t, real.key(""), 0, "for payment "+Spell(p.ID))
}

// A callback waits for a request in flight only briefly: a gateway that never answers
// does not hold it past flightWait.
func TestCallbackWaitIsBounded(t *testing.T) {
	h := newHarness(t, options{gateway: true})
	h.Wallet(alice, 100000)
	h.Merchant(till, "Mama Mboga", mama)
	h.svc.flightWait = 20 * time.Millisecond
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	stuck := make(chan struct{}, 1)
	h.gateway.setAnswer(func(n int, w http.ResponseWriter, r *http.Request) {
		select {
		case stuck <- struct{}{}:
		default:
		}
		select {
		case <-release:
		case <-r.Context().Done():
		}
	})
	h.run()
	h.fallbackCall("150")
	<-stuck
	if r := h.outboundCall("early-2", alice).key(""); r.Reject == nil {
		t.Fatalf("want <Reject/> once the wait is over, got %+v", r)
	}
}

// Attack: a gateway that answers without a call ID leaves the call unmatchable, so its
// callbacks (and any forged ones) are rejected rather than matched by number. Before
// the fix the callback was matched to the newest call to the number and heard the code.
func TestGatewayAnswerWithoutCallID(t *testing.T) {
	h := newHarness(t, options{gateway: true})
	h.Wallet(alice, 100000)
	h.Merchant(till, "Mama Mboga", mama)
	h.gateway.setAnswer(func(n int, w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusAccepted) })
	h.run()
	p, call := h.fallbackCall("150")
	if m := h.sent(call.ID); len(m.MessageIDs) != 0 {
		t.Fatalf("call IDs %v from an answer without one", m.MessageIDs)
	}
	r := h.post(url.Values{"sessionId": {"gw-77"}, "isActive": {"1"}, "direction": {"Outbound"},
		"callerNumber": {ivrNumber}, "destinationNumber": {alice}})
	noCode(t, r, call.Text)
	if r.Reject == nil {
		t.Fatalf("want <Reject/>, got %+v", r)
	}
	if got := h.payment(p.ID).State; got != payswitch.StatePendingOTP {
		t.Errorf("payment %s, want pending_otp", got)
	}
}
