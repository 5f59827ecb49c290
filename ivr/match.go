package ivr

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/payswitch/payswitch/outbox"
	payswitch "github.com/payswitch/payswitch/switch"
)

// voiceLink is the outbox link name of calls handed to the voice gateway.
const voiceLink = "voice"

// callsToScan is how many of a number's newest calls are searched for the one a
// callback is about.
const callsToScan = 50

// matchCall finds the call message an outbound callback is about: the call to phone,
// the number called, whose gateway call ID (the one the gateway answered our request
// with, recorded by the Caller with MarkSent) is sessionID. Nothing else matches. A
// callback cannot prove that it comes from the gateway, and a payer_confirm call may
// carry a code: matching "the newest call to this number" let one forged callback
// take over a call the switch had just asked for.
//
// The gateway may post a call's first callback before its answer to our request has
// been recorded. So when no call matches and a request to phone is in flight, the
// callback waits, for at most flightWait, for those requests to be recorded, and looks
// again by ID.
func (s *Service) matchCall(ctx context.Context, sessionID, phone string) (outbox.Message, bool) {
	m, ok, err := s.callByGatewayID(ctx, sessionID, phone)
	if err == nil && !ok && s.caller != nil {
		// Look again even when nothing is in flight by now: the request may have been
		// recorded between the first look-up and this check.
		s.caller.awaitFlights(ctx, phone, s.flightWait)
		m, ok, err = s.callByGatewayID(ctx, sessionID, phone)
	}
	if err == nil && !ok && s.db != nil {
		m, ok, err = s.awaitOtherNodes(ctx, sessionID, phone)
	}
	if err != nil {
		s.log.Error().Err(err).Str("to", payswitch.Mask(phone)).Msg("outbound call look-up failed")
		return outbox.Message{}, false
	}
	return m, ok
}

// remoteFlightPoll is how often a callback looks again for its call while another
// node's Caller has a request to the same number in flight.
const remoteFlightPoll = 50 * time.Millisecond

// awaitOtherNodes looks again for the call to phone with gateway call ID id, for at most
// flightWait, while a call to phone is being sent: on PostgreSQL the request may be in
// flight on another node's Caller, whose flights this node cannot see, and its message
// is then in state sending until the gateway's answer is recorded.
func (s *Service) awaitOtherNodes(ctx context.Context, id, phone string) (outbox.Message, bool, error) {
	limit := time.NewTimer(s.flightWait)
	defer limit.Stop()
	tick := time.NewTicker(remoteFlightPoll)
	defer tick.Stop()
	for {
		msgs, err := s.queue.Calls(ctx, phone, callsToScan)
		if err != nil {
			return outbox.Message{}, false, fmt.Errorf("ivr: calls to %s: %w", payswitch.Mask(phone), err)
		}
		sending := false
		for _, m := range msgs {
			if slices.Contains(m.MessageIDs, id) {
				return m, true, nil
			}
			sending = sending || m.State == outbox.StateSending
		}
		if !sending {
			return outbox.Message{}, false, nil
		}
		select {
		case <-ctx.Done():
			return outbox.Message{}, false, nil
		case <-limit.C:
			return outbox.Message{}, false, nil
		case <-tick.C:
		}
	}
}

// callByGatewayID is the call to phone whose gateway call IDs hold id.
func (s *Service) callByGatewayID(ctx context.Context, id, phone string) (outbox.Message, bool, error) {
	return s.findCall(ctx, phone, func(m outbox.Message) bool { return slices.Contains(m.MessageIDs, id) })
}

// callByID is the call message with outbox ID id, which went to phone.
func (s *Service) callByID(ctx context.Context, id int64, phone string) (outbox.Message, bool, error) {
	return s.findCall(ctx, phone, func(m outbox.Message) bool { return m.ID == id })
}

func (s *Service) findCall(ctx context.Context, phone string, match func(outbox.Message) bool) (outbox.Message, bool, error) {
	msgs, err := s.queue.Calls(ctx, phone, callsToScan)
	if err != nil {
		return outbox.Message{}, false, fmt.Errorf("ivr: calls to %s: %w", payswitch.Mask(phone), err)
	}
	for _, m := range msgs {
		if match(m) {
			return m, true, nil
		}
	}
	return outbox.Message{}, false, nil
}

// startOutbound begins the script of an outbound call: found is false when the call is
// not one the switch asked for (the answer is a Reject) or no longer makes sense (the
// answer ends it).
func (s *Service) startOutbound(ctx context.Context, sessionID string, sess *session) (Response, bool) {
	unknown := final(s.texts.Render("call_unknown", nil))
	m, ok := s.matchCall(ctx, sessionID, sess.phone)
	if !ok {
		return rejection(), false
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
		if m.Text != "" {
			// The code SMS could not be delivered and the switch made a new code for this
			// call: see fallback.
			sess.node, sess.callMsg = nodeFallback, m.ID
			return s.ask(sess, s.texts.Render("payer_fallback", s.vars(p))+" ", s.askAmountAgain(p), 0), true
		}
		sess.node = nodeCode
		return s.ask(sess, s.texts.Render(s.withFee("payer_confirm", p), s.vars(p))+" ", s.enterCode(), s.engine.CodeDigits()), true
	}
	return unknown, false
}
