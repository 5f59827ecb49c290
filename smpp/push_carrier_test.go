package smpp_test

// Requests to pay pushed as network-initiated USSD, over real SMPP on loopback: carrier
// links bound to the demo SMSC, one with ussd_push and one without, and the switch's
// own SMPP server with an aggregator bound that the payer's number is pinned to.

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/payswitch/payswitch/outbox"
	"github.com/payswitch/payswitch/smpp"
	"github.com/rs/zerolog"
)

// menusStub is smpp.PushSessions that opens session 0x51, 0x52, ... and records what it
// was asked.
type menusStub struct {
	mu     sync.Mutex // guards opened
	opened []string   // "link msisdn payment"
}

var _ smpp.PushSessions = (*menusStub)(nil)

func (p *menusStub) OpenPush(link, msisdn, paymentID, screen string) (string, []byte, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.opened = append(p.opened, link+" "+msisdn+" "+paymentID)
	return screen, []byte{byte(0x50 + len(p.opened)), 0}, nil
}

func (p *menusStub) calls() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.opened...)
}

func TestRequestPushOverCarrierLinks(t *testing.T) {
	db, o := mustStore(t)
	sim := startSim(t, "carrier-a", "carrier-b")
	pushing := startLink(t, sim, smpp.LinkConfig{Name: "carrier-a", Prefixes: []string{"2541"}, USSDPush: true}, nil, nil)
	plain := startLink(t, sim, smpp.LinkConfig{Name: "carrier-b", Prefixes: []string{"2547"}}, nil, nil)
	waitState(t, smpp.StateBound, pushing, plain)
	phones := collect(t, sim)

	sink := newMOSink()
	g, err := smpp.NewGateway(smpp.GatewayConfig{Listen: "127.0.0.1:0", Shortcode: shortcode, RespTimeout: 2 * time.Second,
		Accounts: []smpp.GatewayAccount{{SystemID: "agg", Password: "secret", Prefixes: []string{"2541"}}}},
		db, sink, zerolog.Nop(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := g.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { g.Close() })
	agg := mustBind(t, g.Addr(), "agg", "secret")
	const payer = "254100000001"
	if _, err := agg.submit(payer, shortcode, "BAL"); err != nil {
		t.Fatal(err)
	}
	sink.take(t)
	if pin, _ := g.TargetFor(context.Background(), payer); pin.Target != "server:agg" {
		t.Fatalf("not pinned: %+v", pin)
	}

	menus := &menusStub{}
	s := smpp.NewSender(o, []*smpp.Link{pushing, plain}, zerolog.Nop())
	s.AddAffinity(g)
	s.SetPush(menus)
	smpp.SetSenderTimings(s, 20*time.Millisecond, time.Second, 1000)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("sender: %v", err)
		}
	})

	const screen = "Mama Mboga (55501) asks KES 150.00 for Order 7, ref ABCD123456.\n1. Pay\n2. Refuse"
	push := func(to string, created time.Time) outbox.Message {
		return outbox.Message{To: to, Purpose: outbox.PurposeRequestPush, PaymentID: "ABCD123456", Text: screen,
			Meta: map[string]string{outbox.MetaPushPayment: "ABCD123456"}, CreatedAt: created}
	}

	// The pinned payer on the pushing link: a USSR request with the session the menus
	// opened for carrier-a, over carrier-a, never to the aggregator.
	id := enqueue(t, db, o, push(payer, time.Time{}))[0]
	mt := phones.waitFor(t, screen, 1)[0]
	if mt.To != payer || mt.SystemID != "carrier-a" || mt.USSD["ussd_service_op"] != "02" || mt.USSD["its_session_info"] != "5100" {
		t.Fatalf("pushed MT %+v", mt)
	}
	if m := waitMessage(t, o, id, "sent", sent); m.Link != "carrier-a" {
		t.Fatalf("push went over %q", m.Link)
	}
	if c := menus.calls(); len(c) != 1 || c[0] != "carrier-a "+payer+" ABCD123456" {
		t.Fatalf("sessions opened: %q", c)
	}
	// What is not a push still follows the pin, so the aggregator would have had it.
	enqueue(t, db, o, outbox.Message{To: payer, Purpose: "reply", Text: "Your balance is KES 9.00"})
	if _, to, text := agg.expectDeliver(t); to != payer || text != "Your balance is KES 9.00" {
		t.Fatalf("deliver_sm to %s %q", to, text)
	}
	agg.noDeliver(t, "after the push and the reply")

	// A number whose link has no ussd_push: finished unsent, over no link, no session.
	const other = "254700000001"
	id = enqueue(t, db, o, push(other, time.Time{}))[0]
	if m := waitMessage(t, o, id, "finished", sent); m.Link != "" || len(m.MessageIDs) != 0 || m.State != outbox.StateSent {
		t.Fatalf("push to a link without ussd_push: %+v", m)
	}
	enqueue(t, db, o, outbox.Message{To: other, Purpose: "reply", Text: "after the push"})
	phones.waitFor(t, "after the push", 1)
	for _, mt := range sim.MTs(other) {
		if mt.Text != "after the push" {
			t.Fatalf("the phone on the link without ussd_push got %+v", mt)
		}
	}

	// A push that could not go out in time fails for good, unsent.
	id = enqueue(t, db, o, push(payer, time.Now().Add(-smpp.PushMaxAge-time.Minute)))[0]
	m := waitMessage(t, o, id, "failed", func(m outbox.Message) bool { return m.State == outbox.StateFailed })
	if !strings.Contains(m.LastError, "too old") || m.Attempts != 1 {
		t.Fatalf("stale push %+v", m)
	}
	if c := menus.calls(); len(c) != 1 {
		t.Fatalf("sessions opened: %q", c)
	}
	if n := len(phones.byText()[screen]); n != 1 {
		t.Fatalf("%d pushed screens reached phones, want 1", n)
	}
}
