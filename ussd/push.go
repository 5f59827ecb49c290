package ussd

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"

	payswitch "github.com/payswitch/payswitch/switch"
)

// A merchant's request to pay (contract section 10) may also be pushed to the payer's
// phone as a network-initiated USSD screen: the SMPP sender calls OpenPush before it
// submits the screen, and the phone's answers arrive as USSR confirms (HandleSMPP) in
// a push session: 1 asks for the code that came by SMS and confirms with it, 2 refuses.
//
// Push sessions have a table of their own, beside the dialogues that phones start, with
// limits of their own (maxPushSessions, maxPushPerNumber). A session is the number's
// (normalised) and its session number's, and it takes answers only from that number
// and only over the link the screen went out on: the phone proves itself by being the
// number the carrier delivered the session to, never by what it types. An answer that
// matches no push session is a step of the phone's own dialogues (Step), and so an
// unknown one ends there, changing nothing.
//
// A session answers for the session timeout after its last step. It is then kept as
// long again, so that an answer that comes too late hears that the request ended (and
// that the SMS still takes the code) rather than being told to dial again.

// ErrPushRefused is returned by OpenPush for a push it cannot open: a malformed number
// or an empty payment, link or screen, or no session number free for the phone.
var ErrPushRefused = errors.New("ussd: push refused")

// Decliner is what refusing a pushed request needs of the engine, besides Engine.
// New takes it from the engine when the engine has it (*payswitch.Engine, once it
// declines requests); without it, 2 tells the payer to reply NO to the SMS instead.
type Decliner interface {
	Decline(ctx context.Context, ch payswitch.Channel, msisdn, paymentID string) (payswitch.Outcome, error)
}

// Limits on push sessions. A number has at most one request waiting at once (the
// engine answers payer_busy to a second), so a few per number leave room for one that
// ended and is kept for its late answers; the total bounds what merchants' requests
// can make the switch hold in memory.
const (
	maxPushSessions  = 50_000
	maxPushPerNumber = 3
)

// pushInfo is what a push session knows beyond a session's fields.
type pushInfo struct {
	link     string // the link the screen went out on, and the only one its answers may come over
	number   byte   // the session number, its_session_info's first octet
	body     string // the pushed screen without its option lines
	opts     string // the option lines ("1. Pay\n2. Refuse"), kept together on a page
	answered bool   // an answer came: the session is no longer the screen as pushed
}

func pushKey(phone string, number byte) string {
	return "push:" + phone + "/" + strconv.Itoa(int(number))
}

// OpenPush registers the session in which msisdn answers screen, the request to pay
// paymentID, over link, and returns the text to send (the screen's first page: a long
// one is paged with "98. More") and the its_session_info to send it with (the session
// number, then sequence number 0). Called again for the same payment and number before
// an answer came (a submit_sm that is sent again), it returns the same session, now
// expected over link. It implements smpp.PushSessions.
//
// The session number is one that no session of the number, pushed or dialled, holds.
func (m *Menu) OpenPush(link, msisdn, paymentID, screen string) (string, []byte, error) {
	if link == "" || paymentID == "" || strings.TrimSpace(screen) == "" || len(screen) > maxText {
		return "", nil, fmt.Errorf("%w: needs a link, a payment and a screen of at most %d bytes", ErrPushRefused, maxText)
	}
	phone, err := m.engine.Normalize(msisdn)
	if err != nil {
		return "", nil, fmt.Errorf("%w: phone number %q", ErrPushRefused, payswitch.Mask(msisdn))
	}
	now := m.now()
	if m.db != nil {
		return m.openPushDB(link, msisdn, phone, paymentID, screen, now)
	}
	if text, info, ok := m.reopenPush(link, phone, paymentID, now); ok {
		return text, info, nil
	}
	body, opts := splitOptions(screen)
	keep := now.Add(-2 * m.timeout).UnixNano()
	start := m.pushSeq.Add(1)
	for i := range uint32(256) {
		n := byte(start + i)
		key := pushKey(phone, n)
		if m.pushes.has(key) || m.sessions.has(smppKey(phone, []byte{n})) || m.sessions.has(smppKey(msisdn, []byte{n})) {
			continue
		}
		s, fresh := m.pushes.open(key, phone, keep, true, false)
		if !fresh { // taken meanwhile
			continue
		}
		s.seen, s.payment = now.UnixNano(), paymentID
		s.push = &pushInfo{link: link, number: n, body: body, opts: opts}
		scr := m.show(s, body, opts, false, nodePushChoice)
		s.last = scr.Text
		s.mu.Unlock()
		return scr.Text, []byte{n, 0}, nil
	}
	return "", nil, fmt.Errorf("%w: no session number free for %s", ErrPushRefused, payswitch.Mask(phone))
}

// reopenPush finds the live, unanswered push session of paymentID to phone and moves
// it to link.
func (m *Menu) reopenPush(link, phone, paymentID string, now time.Time) (string, []byte, bool) {
	live := now.Add(-m.timeout).UnixNano()
	for _, s := range m.pushes.ofPhone(phone) {
		s.mu.Lock()
		p := s.push
		ok := p != nil && !p.answered && s.payment == paymentID && s.node != nodeDone && s.seen >= live &&
			m.pushes.current(pushKey(phone, p.number), s)
		if ok {
			p.link, s.seen = link, now.UnixNano()
		}
		text := s.last
		s.mu.Unlock()
		if ok {
			return text, []byte{p.number, 0}, true
		}
	}
	return "", nil, false
}

// Pushes is how many push sessions are in memory, ended ones included until they are
// swept.
func (m *Menu) Pushes() int {
	if m.db != nil {
		return m.db.count(m.db.pushes, m.log)
	}
	return m.pushes.len()
}

// answerPush answers a USSR confirm from the phone from, over link, when it belongs to
// a push session; ok is false when it does not (then it is a step of a dialogue).
func (m *Menu) answerPush(ctx context.Context, link, from string, sessionInfo []byte, text string) (scr Screen, ok bool, err error) {
	if len(sessionInfo) == 0 || len(from) > maxPhone {
		return Screen{}, false, nil
	}
	phone, err := m.engine.Normalize(from)
	if err != nil {
		return Screen{}, false, nil
	}
	key := pushKey(phone, sessionInfo[0])
	now := m.now()
	if m.db != nil {
		return m.answerPushDB(ctx, link, key, text, now)
	}
	var s *session
	for {
		if s, _ = m.pushes.open(key, "", now.Add(-2*m.timeout).UnixNano(), false, false); s == nil {
			return Screen{}, false, nil
		}
		s.mu.Lock()
		if m.pushes.current(key, s) {
			break
		}
		s.mu.Unlock() // swept or evicted while we waited: look again
	}
	defer s.mu.Unlock()
	// The key holds the number; the link is checked here. An answer over another link
	// (an aggregator's bind that may send as any of its numbers) is not this session's.
	if s.push.link != link {
		return Screen{}, false, nil
	}
	scr, result, err := m.stepPush(ctx, s, text, now)
	m.steps.WithLabelValues(result).Inc()
	return scr, true, err
}

// stepPush acts on one answer in push session s, which the caller holds locked.
func (m *Menu) stepPush(ctx context.Context, s *session, text string, now time.Time) (Screen, string, error) {
	if s.node == nodeDone {
		return Screen{Text: s.last, End: true}, "end", nil
	}
	if s.seen < now.Add(-m.timeout).UnixNano() {
		scr := Screen{Text: m.static["push_ended"], End: true}
		s.shows(scr)
		return scr, "expired", nil
	}
	if len(text) > maxText {
		return Screen{}, "bad_request", fmt.Errorf("%w: text of %d bytes", ErrBadRequest, len(text))
	}
	inputs := strings.Split(text, "*")
	if len(inputs) > maxNewInputs {
		return Screen{}, "bad_request", fmt.Errorf("%w: %d inputs", ErrBadRequest, len(inputs))
	}
	s.seen = now.UnixNano()
	s.push.answered = true
	scr, err := m.act(ctx, s, Screen{}, inputs, "", "")
	if err != nil {
		return scr, "error", err
	}
	return scr, result(scr.End), nil
}

// endPush forgets the push session of from with the session number of sessionInfo,
// if there is one: the phone dialled with that session number, so the network has
// ended the pushed dialogue.
func (m *Menu) endPush(from string, sessionInfo []byte) {
	if len(sessionInfo) == 0 || len(from) > maxPhone {
		return
	}
	phone, err := m.engine.Normalize(from)
	switch {
	case err != nil:
	case m.db != nil:
		m.db.remove(m.db.pushes, pushKey(phone, sessionInfo[0]), m.log)
	default:
		m.pushes.remove(pushKey(phone, sessionInfo[0]))
	}
}

// pushChoice acts on an answer to the pushed screen: 1 pays, 2 refuses, and the code
// that came by SMS, typed at once, confirms as at the code prompt (contract section 10:
// the pushed screen "takes the code just the same"; a code has at least 4 digits, so it
// is never a choice).
func (m *Menu) pushChoice(ctx context.Context, s *session, in string) (Screen, error) {
	switch {
	case in == "1":
		return m.ask(s, "", "push_code", nodePushCode), nil
	case in == "2":
		return m.refuse(ctx, s)
	case len(in) == m.engine.CodeDigits() && digits(in):
		return m.pushCode(ctx, s, in)
	}
	return m.show(s, joinLines(m.static["bad_choice"], s.push.body), s.push.opts, false, nodePushChoice), nil
}

// refuse declines the pushed request.
func (m *Menu) refuse(ctx context.Context, s *session) (Screen, error) {
	if m.decline == nil {
		return m.end(s, m.static["push_refuse_by_sms"]), nil
	}
	out, err := m.decline.Decline(ctx, payswitch.ChannelUSSD, s.phone, s.payment)
	if err != nil {
		return Screen{}, fmt.Errorf("ussd: decline %s: %w", s.payment, err)
	}
	if out.Problem == payswitch.ProblemNoPending || out.Text == "" {
		return m.settled(ctx, s)
	}
	return m.end(s, out.Text), nil
}

// pushCode acts on an input to the pushed request's code prompt.
func (m *Menu) pushCode(ctx context.Context, s *session, in string) (Screen, error) {
	if len(in) != m.engine.CodeDigits() || !digits(in) {
		return m.ask(s, m.static["bad_code"], "push_code", nodePushCode), nil
	}
	out, err := m.engine.Confirm(ctx, payswitch.ChannelUSSD, s.phone, s.payment, in)
	if err != nil {
		return Screen{}, fmt.Errorf("ussd: confirm %s: %w", s.payment, err)
	}
	switch out.Problem {
	case payswitch.ProblemWrongCode:
		return m.ask(s, out.Text, "push_code", nodePushCode), nil
	case payswitch.ProblemNoPending:
		return m.settled(ctx, s)
	}
	return m.end(s, out.Text), nil
}

// optionLine is a menu option at the end of a pushed screen: "1. Pay".
var optionLine = regexp.MustCompile(`^[0-9]{1,2}\. `)

// splitOptions cuts the option lines off the end of screen, so that paging keeps them
// together on the last page.
func splitOptions(screen string) (body, opts string) {
	lines := strings.Split(strings.TrimRight(screen, " \n"), "\n")
	i := len(lines)
	for i > 0 && optionLine.MatchString(lines[i-1]) {
		i--
	}
	return strings.Join(lines[:i], "\n"), strings.Join(lines[i:], "\n")
}
