package payswitch

import (
	"strings"
	"testing"
	"time"

	"github.com/payswitch/payswitch/otp"
)

func TestDecideCancel(t *testing.T) {
	r := testRules(t)
	for _, tc := range []struct {
		name     string
		s        pendingSnapshot
		problem  Problem
		messages string
	}{
		{"cancels the waiting payment", pendingSnapshot{Now: decideNow, Channel: ChannelUSSD, Waiting: waitingPayment()},
			ProblemNone, "cancelled"},
		{"nothing waits", pendingSnapshot{Now: decideNow, Channel: ChannelUSSD}, ProblemNoPending, ""},
		{"nothing waits, answered by SMS", pendingSnapshot{Now: decideNow, Channel: ChannelSMS, ReplyTo: "254700000001"},
			ProblemNoPending, "reply"},
		{"the session's payment is not the one waiting",
			pendingSnapshot{Now: decideNow, Channel: ChannelUSSD, Waiting: waitingPayment(), AskedFor: "PAYBBBBBBB"},
			ProblemNoPending, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := r.cancel(tc.s)
			if d.Outcome.Problem != tc.problem || purposes(d.Messages) != tc.messages {
				t.Fatalf("outcome %q, messages %s; want %q, %s", d.Outcome.Problem, purposes(d.Messages), tc.problem, tc.messages)
			}
			if ok := tc.problem == ProblemNone; d.Release != ok || ok != (d.Move == EvCancel) {
				t.Fatalf("release %v move %q", d.Release, d.Move)
			}
			if tc.problem == ProblemNone {
				b := d.Messages[0].Balance
				if b.Var == "" || !b.Available || b.Var != "available" || !d.Messages[0].Answer {
					t.Fatalf("cancel message %+v", d.Messages[0])
				}
			}
		})
	}
}

// CANCEL with only a merchant's request waiting moves nothing and says how to refuse
// the request (NO), not that nothing waits.
func TestDecideCancelPointsAtNO(t *testing.T) {
	r := testRules(t)
	req := waitingPayment()
	req.State = StateRequested
	d := r.cancel(pendingSnapshot{Now: decideNow, Channel: ChannelSMS, ReplyTo: "254700000001", Request: req})
	if d.Release || d.Move != "" || d.Outcome.Problem != ProblemNoPending {
		t.Fatalf("decision %+v: want a refusal that moves nothing", d)
	}
	if !strings.Contains(d.Outcome.Text, "reply NO") || !strings.Contains(d.Outcome.Text, req.ID) {
		t.Fatalf("answer %q: want it to name %s and NO", d.Outcome.Text, req.ID)
	}
	if purposes(d.Messages) != "reply" {
		t.Fatalf("messages %s, want the reply", purposes(d.Messages))
	}
}

func TestDecideResend(t *testing.T) {
	r := testRules(t)
	fresh := decideNow.Add(5 * time.Minute)
	for _, tc := range []struct {
		name     string
		s        pendingSnapshot
		step     decisionStep
		problem  Problem
		text     string
		messages string
		deadline time.Time
	}{
		{name: "asks otp for a new code", s: pendingSnapshot{Now: decideNow, Waiting: waitingPayment()}, step: resendStep},
		{name: "sends the new code", s: pendingSnapshot{Now: decideNow, Channel: ChannelSMS, Waiting: waitingPayment(),
			Code: &codeResult{code: "123456", expires: fresh}},
			text: "a new code was sent", messages: "otp", deadline: fresh},
		{name: "no more resends", s: pendingSnapshot{Now: decideNow, Channel: ChannelSMS, ReplyTo: "254700000001",
			Waiting: waitingPayment(), Code: &codeResult{err: otp.ErrResendLimit}},
			problem: ProblemResendLimit, messages: "reply"},
		{name: "an overdue payment expires instead", s: pendingSnapshot{Now: decideNow.Add(4 * time.Minute), Waiting: waitingPayment()},
			problem: ProblemCodeExpired, messages: "expired"},
		{name: "nothing waits", s: pendingSnapshot{Now: decideNow, Channel: ChannelUSSD}, problem: ProblemNoPending},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := r.resend(tc.s)
			if d.Step != tc.step || d.Outcome.Problem != tc.problem || !strings.Contains(d.Outcome.Text, tc.text) ||
				purposes(d.Messages) != tc.messages || !d.Deadline.Equal(tc.deadline) {
				t.Fatalf("step %v outcome %q %q messages %s deadline %v", d.Step, d.Outcome.Problem, d.Outcome.Text,
					purposes(d.Messages), d.Deadline)
			}
			if tc.messages == "otp" && (!strings.Contains(d.Messages[0].Text, "123456") || !d.Messages[0].Receipt) {
				t.Fatalf("code message %+v", d.Messages[0])
			}
		})
	}
}

func TestDecideResendTooSoonCountsFromTheCurrentCode(t *testing.T) {
	r := testRules(t)
	p := waitingPayment()
	p.ExpiresAt = decideNow.Add(r.ttl - 10*time.Second) // its code was issued 10 s ago
	d := r.resend(pendingSnapshot{Now: decideNow, Waiting: p, Code: &codeResult{err: otp.ErrResendTooSoon}})
	if d.Outcome.Problem != ProblemResendTooSoon || !strings.Contains(d.Outcome.Text, "wait 20 s") {
		t.Fatalf("%q %q", d.Outcome.Problem, d.Outcome.Text)
	}
}

func TestDecideExpireDue(t *testing.T) {
	r := testRules(t)
	p := waitingPayment()
	if d := r.expireDue(p, decideNow); d.Move != "" || d.Release {
		t.Fatalf("a payment not yet due: %+v", d)
	}
	d := r.expireDue(p, p.ExpiresAt)
	if d.Move != EvExpire || !d.Release || purposes(d.Messages) != "expired" || d.Auth[0].Event != "expired" {
		t.Fatalf("a payment due: %+v", d)
	}
	done := waitingPayment()
	done.State = StateCompleted
	if d := r.expireDue(done, done.ExpiresAt.Add(time.Hour)); d.Move != "" {
		t.Fatalf("a completed payment: %+v", d)
	}
}

func TestDecideCodeDelivery(t *testing.T) {
	voice := testRules(t)
	voice.cfg.VoiceNumber = "254711000000"
	base := func() deliverySnapshot {
		return deliverySnapshot{Now: decideNow, PaymentID: "PAYAAAAAAA", MSISDN: "254700000001", Status: "UNDELIV",
			Payment: waitingPayment()}
	}
	for _, tc := range []struct {
		name  string
		r     *rules
		snap  func(s *deliverySnapshot)
		step  decisionStep
		auth  string
		calls string
	}{
		{"delivered is noted", voice, func(s *deliverySnapshot) { s.Delivered = true }, noStep, "delivered", ""},
		{"undelivered without voice is noted", testRules(t), nil, noStep, "delivery_failed", ""},
		{"undelivered with voice asks for a new code", voice, nil, reissueStep, "", ""},
		{"the new code is offered by a call", voice, func(s *deliverySnapshot) {
			s.Code = &codeResult{code: "654321", expires: decideNow.Add(5 * time.Minute)}
		}, noStep, "delivery_failed,resent", "payer_confirm"},
		{"no resends left", voice, func(s *deliverySnapshot) { s.Code = &codeResult{err: otp.ErrResendLimit} },
			noStep, "delivery_failed", ""},
		{"settled meanwhile", voice, func(s *deliverySnapshot) { s.Payment.State = StateCompleted }, noStep, "delivery_failed", ""},
		{"another number's", voice, func(s *deliverySnapshot) { s.MSISDN = "254700000002" }, noStep, "delivery_failed", ""},
		{"overdue", voice, func(s *deliverySnapshot) { s.Now = s.Payment.ExpiresAt }, noStep, "delivery_failed", ""},
		{"no such payment", voice, func(s *deliverySnapshot) { s.Payment = nil }, noStep, "delivery_failed", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := base()
			if tc.snap != nil {
				tc.snap(&s)
			}
			d := tc.r.codeDelivery(s)
			var evs []string
			for _, a := range d.Auth {
				evs = append(evs, a.Event)
			}
			if d.Step != tc.step || strings.Join(evs, ",") != tc.auth || purposes(d.Messages) != tc.calls {
				t.Fatalf("step %v auth %v messages %s", d.Step, evs, purposes(d.Messages))
			}
			if tc.calls != "" && (d.Messages[0].Text != "654321" || d.Messages[0].Kind != "call") {
				t.Fatalf("call %+v", d.Messages[0])
			}
		})
	}
}
