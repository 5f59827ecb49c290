package payswitch

import (
	"errors"
	"strconv"
	"time"

	"github.com/payswitch/payswitch/otp"
)

// pendingSnapshot is what deciding a cancel, a resend or an expiry looks at: a payment
// waiting for its code, as read inside the write.
type pendingSnapshot struct {
	Now      time.Time
	Channel  Channel
	ReplyTo  string   // where an SMS answer goes
	AskedFor string   // the payment a USSD or IVR session names, or ""
	Waiting  *Payment // the number's payment waiting for its code, or nil
	// Request is the merchant's request waiting for the number, read by CANCEL only
	// when nothing of its own waits: the answer then says how to refuse it.
	Request *Payment
	Code    *codeResult
}

// waiting is the payment the command is about, or nil when none waits or the session
// named another.
func (s pendingSnapshot) waiting() *Payment {
	if s.Waiting == nil || s.AskedFor != "" && s.Waiting.ID != s.AskedFor {
		return nil
	}
	return s.Waiting
}

// cancel ends the waiting payment and releases its hold.
func (r *rules) cancel(s pendingSnapshot) Decision {
	p := s.waiting()
	if p == nil && s.Request != nil && s.AskedFor == "" {
		// CANCEL ends only the payer's own payment; a merchant's request is refused with
		// NO, and the answer says so rather than that nothing waits.
		out := r.refuse(ProblemNoPending, s.Request, nil)
		out.Payment, out.Text = nil, r.texts.Render("cancel_request", r.vars(s.Request))
		return r.replyIfSMS(Decision{Outcome: out}, s.Channel, s.ReplyTo)
	}
	if p == nil {
		return r.replyIfSMS(Decision{Outcome: r.refuse(ProblemNoPending, nil, map[string]string{})}, s.Channel, s.ReplyTo)
	}
	msg := r.sms(p.PayerMSISDN, "cancelled", p.ID, "", false)
	for i := range msg {
		msg[i].Key, msg[i].Vars, msg[i].Answer = "cancelled", r.vars(p), true
		msg[i].Balance = balanceRef{Account: p.PayerAccount, Available: true, Var: "available"}
	}
	return Decision{Payment: p, Release: true, Move: EvCancel, Reason: "cancelled by payer",
		Auth: []authNote{{Channel: s.Channel, Event: "cancelled"}}, Messages: msg, Outcome: Outcome{Payment: p}}
}

// resend issues a new code for the waiting payment; the old code dies. otp keeps the
// code's resend count and time, so the decision asks for the resend (resendStep) and
// decides on otp's answer: a new code, or ErrResendLimit or ErrResendTooSoon.
func (r *rules) resend(s pendingSnapshot) Decision {
	p := s.waiting()
	if p == nil {
		return r.replyIfSMS(Decision{Outcome: r.refuse(ProblemNoPending, nil, map[string]string{})}, s.Channel, s.ReplyTo)
	}
	if !s.Now.Before(p.ExpiresAt) {
		return r.expireRefused(p)
	}
	if s.Code == nil {
		return Decision{Step: resendStep}
	}
	switch {
	case errors.Is(s.Code.err, otp.ErrResendLimit):
		return r.replyIfSMS(Decision{Outcome: r.refuse(ProblemResendLimit, p, nil)}, s.Channel, s.ReplyTo)
	case errors.Is(s.Code.err, otp.ErrResendTooSoon):
		v := r.vars(p)
		// The current code was issued one TTL before the payment's deadline.
		wait := p.ExpiresAt.Add(-r.ttl).Add(r.resendInterval).Sub(s.Now)
		v["seconds"] = strconv.Itoa(int((wait + time.Second - 1) / time.Second))
		return r.replyIfSMS(Decision{Outcome: r.refuse(ProblemResendTooSoon, p, v)}, s.Channel, s.ReplyTo)
	}
	v := r.vars(p)
	return Decision{Payment: p, Deadline: s.Code.expires,
		Auth:     []authNote{{Channel: s.Channel, Event: "resent"}},
		Messages: r.sms(p.PayerMSISDN, "otp", p.ID, r.texts.RenderCode(withFee("otp_resent", p), v, s.Code.code, r.digits), true),
		Outcome:  Outcome{Payment: p, Text: r.texts.Render("code_sent", v)}}
}

// expireDue decides the expiry sweeper's visit to payment p, waiting for its code or a
// merchant's request: it expires p unless p was confirmed, cancelled, declined or given a
// new code meanwhile.
func (r *rules) expireDue(p *Payment, now time.Time) Decision {
	if p.State != StatePendingOTP && p.State != StateRequested || now.Before(p.ExpiresAt) {
		return Decision{}
	}
	return r.expire(p)
}

// deliverySnapshot is what deciding on an SMSC's delivery receipt for a code SMS looks at.
type deliverySnapshot struct {
	Now       time.Time
	PaymentID string
	MSISDN    string
	Delivered bool
	Status    string
	Payment   *Payment // the payment, read only when a new code could be offered; or nil
	Code      *codeResult
}

// offersVoice reports whether a receipt like s's may lead to a new code offered by a
// call, so that the applier reads the payment.
func (r *rules) offersVoice(s deliverySnapshot) bool {
	return !s.Delivered && r.cfg.VoiceNumber != ""
}

// codeDelivery notes in the authentication history that the SMSC delivered (or could not
// deliver) a code message. When it could not and voice is on, a new code is made for the
// still-pending payment and offered by a call to the payer's own number (the old code
// dies; it counts as a resend, so otp may refuse it: then nothing more happens).
func (r *rules) codeDelivery(s deliverySnapshot) Decision {
	event := otp.EventDelivered
	if !s.Delivered {
		event = otp.EventDeliveryFailed
	}
	d := Decision{Auth: []authNote{{PaymentID: s.PaymentID, MSISDN: s.MSISDN, Channel: ChannelSMS, Event: event, Detail: s.Status}}}
	p := s.Payment
	if !r.offersVoice(s) || p == nil || p.State != StatePendingOTP || p.PayerMSISDN != s.MSISDN || !s.Now.Before(p.ExpiresAt) {
		return d // delivered, settled meanwhile, or not this number's: nothing to offer
	}
	if s.Code == nil {
		return Decision{Step: reissueStep}
	}
	if s.Code.err != nil {
		return d // no resends left, or no live code
	}
	d.Payment, d.Deadline = p, s.Code.expires
	d.Auth = append(d.Auth, authNote{Channel: ChannelIVR, Event: "resent", Detail: "by voice call: the code SMS was undeliverable"})
	// The call's text is the code; the outbox seals it like a code SMS.
	d.Messages = r.call(p.PayerMSISDN, "payer_confirm", p.ID, s.Code.code)
	return d
}
