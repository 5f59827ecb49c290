package smpp

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/payswitch/payswitch/outbox"
	"github.com/rs/zerolog"
)

// pushRecorder is PushSessions that hands out session numbers from 0x40 and records
// what it was asked.
type pushRecorder struct {
	mu     sync.Mutex // guards opened
	opened []string   // "link msisdn payment screen"
	err    error
}

func (p *pushRecorder) OpenPush(link, msisdn, paymentID, screen string) (string, []byte, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.err != nil {
		return "", nil, p.err
	}
	p.opened = append(p.opened, strings.Join([]string{link, msisdn, paymentID, screen}, " "))
	return "page 1 of " + screen, []byte{byte(0x40 + len(p.opened)), 0}, nil
}

func (p *pushRecorder) calls() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.opened...)
}

func TestSenderRoutesPushes(t *testing.T) {
	pushA := NewLink(LinkConfig{Name: "a", Prefixes: []string{"2547"}, Failover: "b", USSDPush: true}, HandlerFuncs{}, zerolog.Nop(), nil)
	b := NewLink(LinkConfig{Name: "b", Prefixes: []string{"2541"}, Failover: "c"}, HandlerFuncs{}, zerolog.Nop(), nil)
	pushC := NewLink(LinkConfig{Name: "c", Prefixes: []string{"2542"}, Failover: "a", USSDPush: true}, HandlerFuncs{}, zerolog.Nop(), nil)
	agg := &fakeTarget{name: "server:agg", state: StateBound}
	aff := &fakeAffinity{targets: []Target{agg}, pins: map[string]Pin{
		"254700000009": {Target: "server:agg", Prefix: 6, Grace: time.Minute},
	}}
	s := NewSender(nil, []*Link{pushA, b, pushC}, zerolog.Nop())
	s.AddAffinity(aff)
	s.SetPush(&pushRecorder{})
	t0 := time.Date(2026, 12, 6, 4, 0, 0, 0, time.UTC)
	s.now = func() time.Time { return t0 }
	targets := map[string]Target{"a": pushA, "b": b, "c": pushC, "server:agg": agg}
	push := func(to string, m outbox.Message) outbox.Message {
		m.To, m.Purpose, m.Text = to, outbox.PurposeRequestPush, "Mama Mboga asks KES 150.00.\n1. Pay\n2. Refuse"
		if m.CreatedAt.IsZero() {
			m.CreatedAt = t0.Add(-time.Minute)
		}
		return m
	}
	tests := []struct {
		name                   string
		aState, bState, cState string
		m                      outbox.Message
		want, orElse, skip     string // target, fallback and the reason to skip ("" none)
		err                    error
	}{
		{"a push link", StateBound, StateBound, StateBound, push("254700000001", outbox.Message{}), "a", "", "", nil},
		{"never to the aggregator the number is pinned to", StateBound, StateBound, StateBound,
			push("254700000009", outbox.Message{}), "a", "", "", nil},
		{"never to a meta link", StateBound, StateBound, StateBound,
			push("254700000009", outbox.Message{Meta: map[string]string{MetaLink: "server:agg"}}), "a", "", "", nil},
		{"a failover without ussd_push does not stand by", StateDown, StateBound, StateBound, push("254700000001", outbox.Message{}), "a", "", "", nil},
		{"a failover with ussd_push stands by", StateBound, StateBound, StateBound, push("254200000001", outbox.Message{}), "c", "a", "", nil},
		{"a failover with ussd_push takes over while the link is down", StateBound, StateBound, StateDown, push("254200000001", outbox.Message{}), "a", "", "", nil},
		{"the number's link has no ussd_push: skipped, though its failover has", StateBound, StateBound, StateBound,
			push("254100000001", outbox.Message{}), "b", "", "link b has no ussd_push", nil},
		{"too old", StateBound, StateBound, StateBound, push("254700000001", outbox.Message{CreatedAt: t0.Add(-PushMaxAge - time.Second)}),
			"", "", "", ErrPushExpired},
		{"too old, and no ussd_push: skipped all the same", StateBound, StateBound, StateBound,
			push("254100000001", outbox.Message{CreatedAt: t0.Add(-PushMaxAge - time.Second)}), "b", "", "link b has no ussd_push", nil},
		{"no route", StateBound, StateBound, StateBound, push("255700000001", outbox.Message{}), "", "", "", ErrNoRoute},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			setState(pushA, tc.aState)
			setState(b, tc.bState)
			setState(pushC, tc.cState)
			j, err := s.route(context.Background(), targets, tc.m)
			if !errors.Is(err, tc.err) {
				t.Fatalf("route: %v, want %v", err, tc.err)
			}
			if err != nil {
				if IsTemporary(err) {
					t.Fatalf("%v is temporary: it would be retried", err)
				}
				return
			}
			fallback := ""
			if j.fallback != nil {
				fallback = j.fallback.Name()
			}
			if j.target.Name() != tc.want || fallback != tc.orElse || j.skip != tc.skip {
				t.Fatalf("route = %s (fallback %q, skip %q), want %s (%q, %q)", j.target.Name(), fallback, j.skip,
					tc.want, tc.orElse, tc.skip)
			}
		})
	}

	// Without menus to take the answers, a push goes nowhere.
	s.SetPush(nil)
	setState(pushA, StateBound)
	if j, err := s.route(context.Background(), targets, push("254700000001", outbox.Message{})); err != nil || j.skip == "" {
		t.Fatalf("push without menus: %+v %v, want a skip", j, err)
	}
}

// A push is a USSR request with the session the menus opened, sent with the menus'
// page of the screen; it goes over the failover when the link drops after routing,
// opening the session there. Bad meta and a refusal by the menus are permanent.
func TestSenderSendsPushes(t *testing.T) {
	var got []MT
	primary := &fakeTarget{name: "a", state: StateDown, submit: func(MT) ([]string, error) { return nil, ErrNotBound }}
	failover := &fakeTarget{name: "c", state: StateBound, submit: func(m MT) ([]string, error) { got = append(got, m); return []string{"id-1"}, nil }}
	q := &recordingQueue{}
	menus := &pushRecorder{}
	s := NewSender(q, nil, zerolog.Nop())
	s.SetPush(menus)
	m := outbox.Message{ID: 7, To: "254700000001", From: "22333", Purpose: outbox.PurposeRequestPush, Text: "Pay?\n1. Pay\n2. Refuse",
		Meta: map[string]string{outbox.MetaPushPayment: "PAYABCDE01"}}
	s.finish(context.Background(), s.send(context.Background(), job{m: m, target: primary, fallback: failover}))
	if len(q.outcome) != 1 || q.outcome[0] != "sent over c as id-1" {
		t.Fatalf("outcome %v", q.outcome)
	}
	if c := menus.calls(); len(c) != 2 || c[0] != "a 254700000001 PAYABCDE01 Pay?\n1. Pay\n2. Refuse" ||
		c[1] != "c 254700000001 PAYABCDE01 Pay?\n1. Pay\n2. Refuse" {
		t.Fatalf("sessions opened: %q", c)
	}
	if len(got) != 1 || got[0].Text != "page 1 of Pay?\n1. Pay\n2. Refuse" || got[0].USSD == nil ||
		got[0].USSD.ServiceOp != USSDUSSRRequest || string(got[0].USSD.SessionInfo) != "\x42\x00" || got[0].Ref != refOf(7) {
		t.Fatalf("submitted %+v", got)
	}

	for _, tc := range []struct {
		name string
		m    outbox.Message
		err  error
		want error
	}{
		{"no payment", outbox.Message{ID: 8, To: "254700000001", Purpose: outbox.PurposeRequestPush, Text: "Pay?"}, nil, ErrBadMeta},
		{"refused by the menus", m, errors.New("ussd: push refused"), ErrPushRefused},
	} {
		t.Run(tc.name, func(t *testing.T) {
			menus.err = tc.err
			o := s.send(context.Background(), job{m: tc.m, target: failover})
			if !errors.Is(o.err, tc.want) || IsTemporary(o.err) {
				t.Fatalf("send: %v, want the permanent %v", o.err, tc.want)
			}
		})
	}
}
