package smpp

import (
	"context"
	"fmt"
	"time"

	"github.com/payswitch/payswitch/outbox"
)

// A merchant's request to pay (contract section 10) reaches the payer as an SMS that
// carries its code and, where the payer's carrier link has ussd_push, also as a
// network-initiated USSD screen: the engine queues, in the request's transaction, an
// outbox SMS of purpose outbox.PurposeRequestPush to the payer, whose Text is the screen
// (merchant, amount, description, "1. Pay", "2. Refuse"; never the code) and whose Meta
// names the payment under outbox.MetaPushPayment (the constants live in outbox, which
// the engine imports, so that the engine need not know SMPP). The Sender turns it into
// a USSD session.

// PushMaxAge is how long after it was queued a request push may still go out. A push
// that waited longer (its link was down) fails with ErrPushExpired: by then the payer
// has had the SMS for a while, and a screen popping up late is more confusing than
// useful; the SMS still confirms the request until it expires.
const PushMaxAge = 10 * time.Minute

// PushSessions opens the menus' side of a pushed request; *ussd.Menu is one. The
// Sender calls it before each submit_sm of the push, so that an answer that comes
// faster than the submit_sm_resp finds its session.
type PushSessions interface {
	// OpenPush registers the session in which msisdn answers screen, about paymentID,
	// over link (an answer that arrives over any other link, or from any other number,
	// is not this session's), and returns the text to send (the screen's first page)
	// and the its_session_info that names the session. Called again for the same
	// payment and number before anyone answered, it returns the same session, now
	// expected over link.
	OpenPush(link, msisdn, paymentID, screen string) (text string, sessionInfo []byte, err error)
}

// IsPush reports whether m is a request push (outbox.PurposeRequestPush).
func IsPush(m outbox.Message) bool { return m.Purpose == outbox.PurposeRequestPush }

// SetPush gives the Sender the menus that take the answers to request pushes. Without
// it every push is finished unsent. Call it before Run.
func (s *Sender) SetPush(p PushSessions) { s.push = p }

// routePush picks the target of a request push whose carrier route is l: l itself,
// with its failover standing by (or taking over while l is down) only when the failover
// has ussd_push too. A push to a number whose own carrier link has no ussd_push, or
// with no menus to answer it, is a job to skip: finished unsent, not an error, since
// the SMS carries the request all the same. Any other push older than PushMaxAge fails.
func (s *Sender) routePush(targets map[string]Target, m outbox.Message, l *Link) (job, error) {
	switch {
	case !l.USSDPush():
		return job{m: m, target: l, skip: "link " + l.Name() + " has no ussd_push"}, nil
	case s.push == nil:
		return job{m: m, target: l, skip: "no USSD menus take the answers"}, nil
	}
	// The switch's clock stamped CreatedAt and the sender's judges it: they are one
	// clock in serve, unless a test runs the switch ahead of the machine, which only
	// makes a push look younger.
	if age := s.now().Sub(m.CreatedAt); age > s.pushMaxAge {
		return job{}, fmt.Errorf("%w: queued %s ago", ErrPushExpired, age.Round(time.Second))
	}
	j := job{m: m, target: l}
	if fo, ok := targets[l.Failover()].(*Link); ok && fo != l && fo.USSDPush() {
		j.fallback = fo
		if l.State() != StateBound && fo.State() == StateBound {
			j.target, j.fallback = fo, nil
		}
	}
	return j, nil
}

// pushMT opens the USSD session of request push m on t and returns the submit_sm
// that shows its screen: a USSR request (continue: the phone waits for an answer)
// with the session's its_session_info.
func (s *Sender) pushMT(ctx context.Context, m outbox.Message, t Target) (MT, error) {
	payment := m.Meta[outbox.MetaPushPayment]
	if payment == "" {
		payment = m.PaymentID
	}
	if payment == "" {
		return MT{}, fmt.Errorf("%w: request push without %s", ErrBadMeta, outbox.MetaPushPayment)
	}
	text, info, err := s.push.OpenPush(t.Name(), m.To, payment, m.Text)
	if err != nil {
		return MT{}, fmt.Errorf("%w: %w", ErrPushRefused, err)
	}
	return MT{
		To: m.To, From: m.From, Text: text, Receipt: m.RequestReceipt,
		USSD: &USSDInfo{ServiceOp: USSDUSSRRequest, SessionInfo: info},
		Ref:  refOf(m.ID), Late: s.lateSent(ctx, m, t),
	}, nil
}
