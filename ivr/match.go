package ivr

import (
	"context"
	"slices"

	"github.com/payswitch/payswitch/outbox"
	payswitch "github.com/payswitch/payswitch/switch"
)

// voiceLink is the outbox link name of calls handed to the voice gateway.
const voiceLink = "voice"

// callsToScan is how many of a number's newest calls are searched for the one a
// callback is about.
const callsToScan = 50

// matchCall finds the call message an outbound callback is about, among the newest
// calls to phone, the number called:
//
//  1. the call whose gateway IDs hold sessionID: the ID the gateway answered our request
//     with, or a session ID matched before (durable, so a restart changes nothing);
//  2. else the newest call that went to the gateway (sending or sent) within the match
//     window. Its send time is the Caller's record, or when it was queued after a
//     restart. The session ID is then recorded on it with MarkSent, so the next
//     callbacks of the call, and a restart, find it by rule 1.
//
// A callback can arrive before the Caller has recorded the gateway's answer, which is
// why a call still sending qualifies.
func (s *Service) matchCall(ctx context.Context, sessionID, phone string) (outbox.Message, bool) {
	msgs, err := s.queue.Calls(ctx, phone, callsToScan)
	if err != nil {
		s.log.Error().Err(err).Str("to", payswitch.Mask(phone)).Msg("outbound call look-up failed")
		return outbox.Message{}, false
	}
	now := s.now()
	var newest *outbox.Message
	for i := range msgs {
		m := &msgs[i]
		if slices.Contains(m.MessageIDs, sessionID) {
			return *m, true
		}
		if newest != nil {
			continue
		}
		switch m.State {
		case outbox.StateSending, outbox.StateSent, outbox.StateDelivered:
			if at := s.sentAt(*m); now.Sub(at) <= s.cfg.MatchWindow && at.Sub(now) <= s.cfg.MatchWindow {
				newest = m
			}
		}
	}
	if newest == nil {
		return outbox.Message{}, false
	}
	if err := s.queue.MarkSent(ctx, *newest, voiceLink, []string{sessionID}); err != nil {
		// The match stands for this process; only a restart mid-call would need it.
		s.log.Warn().Err(err).Int64("outbox_id", newest.ID).Msg("could not record the call's session ID")
	}
	return *newest, true
}

// startOutbound begins the script of an outbound call: found is false when the call is
// not one the switch asked for (or no longer makes sense), and the answer ends it.
func (s *Service) startOutbound(ctx context.Context, sessionID string, sess *session) (Response, bool) {
	unknown := final(s.texts.Render("call_unknown", nil))
	m, ok := s.matchCall(ctx, sessionID, sess.phone)
	if !ok {
		return unknown, false
	}
	p, err := s.engine.Payment(ctx, m.PaymentID)
	if err != nil {
		return unknown, false
	}
	sess.payment = p.ID
	switch m.Purpose {
	case PurposeMerchantNotice:
		// Only the payee hears of a payment, and only of one that stands.
		if p.PayeeMSISDN != sess.phone || p.State != payswitch.StateCompleted {
			return unknown, false
		}
		sess.node = nodeNotice
		sess.notice = s.texts.Render("merchant_notice", s.vars(p))
		return s.ask(sess, sess.notice+" ", s.texts.Render("notice_repeat", nil), 1), true
	case PurposePayerConfirm:
		if p.PayerMSISDN != sess.phone {
			return unknown, false
		}
		if p.State != payswitch.StatePendingOTP {
			return s.paymentState(ctx, p.ID), true
		}
		sess.node = nodeCode
		if m.Text != "" {
			// The code SMS could not be delivered: the switch made a new code for this
			// call (sealed in the queue) and it is spoken here, to the payer's own number.
			v := s.vars(p)
			v["code"] = Spell(m.Text)
			return s.ask(sess, s.texts.Render("payer_code", v)+" ", s.enterCode(), s.engine.CodeDigits()), true
		}
		return s.ask(sess, s.texts.Render("payer_confirm", s.vars(p))+" ", s.enterCode(), s.engine.CodeDigits()), true
	}
	return unknown, false
}
