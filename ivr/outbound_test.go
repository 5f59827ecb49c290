package ivr

import (
	"context"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/payswitch/payswitch/outbox"
	payswitch "github.com/payswitch/payswitch/switch"
)

// pay makes alice pay amount to the till by SMS, as far as completion.
func (h *harness) pay(amount string) *payswitch.Payment {
	h.t.Helper()
	ctx := context.Background()
	if err := h.Engine.HandleSMS(ctx, alice, "PAY "+till+" "+amount); err != nil {
		h.t.Fatal(err)
	}
	if err := h.Engine.HandleSMS(ctx, alice, h.code(alice)); err != nil {
		h.t.Fatal(err)
	}
	p := h.lastPayment(alice)
	if p.State != payswitch.StateCompleted {
		h.t.Fatalf("payment %s is %s", p.ID, p.State)
	}
	return p
}

// sent waits until the call message id has been handed to the gateway.
func (h *harness) sent(id int64) outbox.Message {
	h.t.Helper()
	var m outbox.Message
	eventually(h.t, "the call to be sent", func() bool {
		var err error
		m, err = h.Outbox.Get(context.Background(), id)
		return err == nil && m.State == outbox.StateSent
	})
	return m
}

func TestMerchantNoticeCall(t *testing.T) {
	h := newHarness(t, options{gateway: true})
	h.Wallet(alice, 1000000)
	h.Merchant(till, "Mama Mboga", mama)
	h.gateway.setAnswer(func(n int, w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusCreated)
		w.Write([]byte(`{"sessionId": "ATVId_notice", "status": "Queued"}`))
	})
	h.run()

	p := h.pay("1500.50")
	calls := h.callsTo(mama)
	if len(calls) != 1 || calls[0].Purpose != PurposeMerchantNotice || calls[0].PaymentID != p.ID {
		t.Fatalf("calls queued for the merchant: %+v", calls)
	}
	m := h.sent(calls[0].ID)
	if !slices.Equal(m.MessageIDs, []string{"ATVId_notice"}) || m.Link != "voice" {
		t.Errorf("sent call: link %q ids %v, want voice [ATVId_notice]", m.Link, m.MessageIDs)
	}
	reqs := h.gateway.requests()
	if len(reqs) != 1 {
		t.Fatalf("%d gateway requests, want 1", len(reqs))
	}
	want := callRequest{To: mama, From: ivrNumber, Purpose: "merchant_notice", PaymentID: p.ID}
	if reqs[0].Body != want {
		t.Errorf("gateway got %s, want %+v", reqs[0].RawBody, want)
	}
	if reqs[0].Auth != "Bearer "+token || reqs[0].ContentType != "application/json" || reqs[0].IdempotencyKey == "" {
		t.Errorf("gateway headers: %+v", reqs[0])
	}

	c := h.outboundCall("ATVId_notice", "+"+mama)
	notice := "This is payswitch. You have received one thousand five hundred shillings and fifty cents from " +
		"a number starting 2 5 4 7 and ending 0 0 1, payment " + Spell(p.ID) + "."
	wantPrompt(t, c.key(""), 1, notice, "Press 1 to hear this again.")
	wantPrompt(t, c.key("1"), 1, notice, "Press 1 to hear this again.")
	wantFinal(t, c.key("2"), "Goodbye.")
	c.hangUp()
	if h.queue.markSent.Load() != 1 {
		t.Errorf("MarkSent %d times, want 1", h.queue.markSent.Load())
	}
}

func TestMerchantNoticeRepeatsAreBounded(t *testing.T) {
	h := newHarness(t, options{gateway: true})
	h.Wallet(alice, 100000)
	h.Merchant(till, "Mama Mboga", mama)
	h.run()
	p := h.pay("150")
	m := h.sent(h.callsTo(mama)[0].ID)
	c := h.outboundCall(m.MessageIDs[0], mama)
	wantPrompt(t, c.key(""), 1, "one hundred and fifty shillings", Spell(p.ID))
	for range maxNotices {
		wantPrompt(t, c.key("1"), 1, "one hundred and fifty shillings")
	}
	wantFinal(t, c.key("1"), "Goodbye.")
}

// A call recorded with its gateway ID is found by that ID after a restart (a new
// service, no memory of the call), even long after.
func TestOutboundCallMatchedAfterRestart(t *testing.T) {
	h := newHarness(t, options{gateway: true})
	h.Wallet(alice, 100000)
	h.Merchant(till, "Mama Mboga", mama)
	h.run()
	p := h.pay("150")
	m := h.sent(h.callsTo(mama)[0].ID)
	c := h.outboundCall(m.MessageIDs[0], "0700000900")
	wantPrompt(t, c.key(""), 1, "one hundred and fifty shillings", Spell(p.ID))

	h.Clock.Advance(time.Hour)
	svc, err := New(Config{Number: ivrNumber}, h.Engine, h.queue, h.Clock.Now, h.svc.log, nil)
	if err != nil {
		t.Fatal(err)
	}
	h.svc = svc
	h.srv.Config.Handler = svc.Handler()
	wantPrompt(t, c.key("1"), 1, "one hundred and fifty shillings", Spell(p.ID))
}

// Attack (issue 17): an outbound callback whose sessionId is not the call ID the gateway
// gave for a call to that number is rejected and leaves nothing behind, even when the
// number was just called. Before the fix the newest call to the number was matched
// whatever the sessionId, and the callback heard its script.
func TestOutboundCallbackUnknown(t *testing.T) {
	h := newHarness(t, options{gateway: true})
	h.Wallet(alice, 100000)
	h.Merchant(till, "Mama Mboga", mama)
	h.run()
	h.pay("150")
	h.sent(h.callsTo(mama)[0].ID)

	tests := []struct {
		name   string
		called string
	}{
		{"number never called", bob},
		{"not a number", "anonymous"},
		{"forged session ID for the number just called", mama},
		{"forged session ID in another spelling of the number", "0700000900"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := h.outboundCall("x-"+tt.name, tt.called)
			if r := c.key(""); r.Reject == nil || r.Say != nil || r.GetDigits != nil {
				t.Fatalf("want <Reject/>, got %+v", r)
			}
			if h.svc.Sessions() != 0 {
				t.Errorf("an unknown call left a session")
			}
		})
	}
}

// The payer is called to confirm a pending payment by keying its code.
func TestPayerConfirmCall(t *testing.T) {
	h := newHarness(t, options{gateway: true})
	a := h.Wallet(alice, 100000)
	mer := h.Merchant(till, "Mama Mboga", mama)
	h.gateway.setAnswer(func(n int, w http.ResponseWriter, r *http.Request) {
		w.Write([]byte(`{"entries": [{"phoneNumber": "+254700000001", "status": "Queued", "sessionId": "call-9"}]}`))
	})
	h.run()
	ctx := context.Background()
	if err := h.Engine.HandleSMS(ctx, alice, "PAY 55501 250"); err != nil {
		t.Fatal(err)
	}
	p := h.lastPayment(alice)
	id := h.enqueueCall(alice, PurposePayerConfirm, p.ID)
	m := h.sent(id)
	if !slices.Equal(m.MessageIDs, []string{"call-9"}) {
		t.Errorf("call IDs %v, want [call-9]", m.MessageIDs)
	}
	if got := h.gateway.requests()[0].Body; got.Purpose != "payer_confirm" || got.To != alice || got.PaymentID != p.ID {
		t.Errorf("gateway got %+v", got)
	}

	c := h.outboundCall("call-9", "+"+alice)
	wantPrompt(t, c.key(""), 6, "This is payswitch. You have a payment waiting: two hundred and fifty shillings to "+
		"Mama Mboga, merchant 5 5 5 0 1, payment "+Spell(p.ID)+".", "Enter the six digit code")
	code := h.code(alice)
	wantPrompt(t, c.key(wrongCode(code)+"#"), 6, "That code is not right. You have two tries left.")
	wantFinal(t, c.key(code+"#"), "Payment "+Spell(p.ID)+" is complete.", "Your new balance is seven hundred and fifty shillings.")
	if b := h.Balance(mer.ID); b.Posted != 25000 {
		t.Errorf("merchant: %+v", b)
	}
	if b := h.Balance(a.ID); b.Posted != 75000 || b.Held != 0 {
		t.Errorf("alice: %+v", b)
	}
}

func TestPayerConfirmCallStates(t *testing.T) {
	h := newHarness(t, options{gateway: true})
	h.Wallet(alice, 100000)
	h.Wallet(bob, 100000)
	h.Merchant(till, "Mama Mboga", mama)
	h.run()
	ctx := context.Background()
	// callID is the gateway's ID of call message id, once sent.
	callID := func(id int64) string { return h.sent(id).MessageIDs[0] }

	t.Run("already confirmed", func(t *testing.T) {
		p := h.pay("150")
		c := h.outboundCall(callID(h.enqueueCall(alice, PurposePayerConfirm, p.ID)), alice)
		wantFinal(t, c.key(""), "is already complete")
	})
	t.Run("someone else's payment", func(t *testing.T) {
		if err := h.Engine.HandleSMS(ctx, alice, "PAY 55501 150"); err != nil {
			t.Fatal(err)
		}
		p := h.lastPayment(alice)
		c := h.outboundCall(callID(h.enqueueCall(bob, PurposePayerConfirm, p.ID)), bob)
		wantFinal(t, c.key(""), "we could not find what this call is about")
		if got := h.payment(p.ID).State; got != payswitch.StatePendingOTP {
			t.Errorf("payment %s", got)
		}
	})
	t.Run("payer gives up", func(t *testing.T) {
		p := h.lastPayment(alice)
		c := h.outboundCall(callID(h.enqueueCall(alice, PurposePayerConfirm, p.ID)), alice)
		wantPrompt(t, c.key(""), 6, "You have a payment waiting")
		c.key("")
		c.key("")
		wantFinal(t, c.key(""), "is still waiting", "reply to our SMS with the code")
		if got := h.payment(p.ID).State; got != payswitch.StatePendingOTP {
			t.Errorf("payment %s after the payer gave up, want pending_otp", got)
		}
	})
}
