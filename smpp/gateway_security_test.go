package smpp_test

// Attacks on the second factor through the switch's own SMPP server (issue 17): a bound
// ESME writing "from" someone else's number, a pin that would carry codes to an ESME,
// an account that goes away with the answers. A real ESME (go-smpp) binds to the
// Gateway over loopback and a real carrier link binds to the demo SMSC.

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fiorix/go-smpp/smpp/pdu"
	"github.com/fiorix/go-smpp/smpp/pdu/pdufield"
	"github.com/fiorix/go-smpp/smpp/pdu/pdutlv"
	"github.com/payswitch/payswitch/outbox"
	"github.com/payswitch/payswitch/smpp"
	"github.com/payswitch/payswitch/store"
	"github.com/rs/zerolog"
)

// testClock is wall time moved forward by what a test adds: the outbox, the sender and
// the gateway share one so that a test can pass a grace without waiting for it.
type testClock struct{ offset atomic.Int64 }

func (c *testClock) now() time.Time          { return time.Now().Add(time.Duration(c.offset.Load())) }
func (c *testClock) advance(d time.Duration) { c.offset.Add(int64(d)) }

// securityRig is a Gateway whose account "agg" (password "secret") may send from
// numbers starting 2541, a carrier link "carrier-a" (no prefixes: any number) to the
// demo SMSC, and a Sender over both, all on one test clock.
type securityRig struct {
	clock   *testClock
	db      *store.DB
	o       *outbox.Outbox
	g       *smpp.Gateway
	sink    *moSink
	phones  *collector // what reaches phones through the carrier
	carrier *smpp.Link
}

func startSecurityRig(t *testing.T, grace time.Duration) *securityRig {
	t.Helper()
	r := &securityRig{clock: &testClock{}, sink: newMOSink()}
	db, err := store.Open(filepath.Join(t.TempDir(), "payswitch.db"), store.Options{Synchronous: "NORMAL"},
		outbox.Schema, smpp.GatewaySchema)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	r.db, r.o = db, outbox.New(db, r.clock.now)
	r.g, err = smpp.NewGateway(smpp.GatewayConfig{
		Listen: "127.0.0.1:0", Shortcode: shortcode, RespTimeout: 2 * time.Second, PinGrace: grace,
		Accounts: []smpp.GatewayAccount{{SystemID: "agg", Password: "secret", Prefixes: []string{"2541"}}},
	}, db, r.sink, zerolog.Nop(), nil)
	if err != nil {
		t.Fatal(err)
	}
	smpp.SetGatewayClock(r.g, r.clock.now)
	if err := r.g.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.g.Close() })
	sim := startSim(t, "carrier-a")
	r.carrier = startLink(t, sim, smpp.LinkConfig{Name: "carrier-a"}, nil, nil)
	waitState(t, smpp.StateBound, r.carrier)
	r.phones = collect(t, sim)

	s := smpp.NewSender(r.o, []*smpp.Link{r.carrier}, zerolog.Nop())
	s.AddAffinity(r.g)
	smpp.SetSenderTimings(s, 20*time.Millisecond, time.Second, 1000)
	smpp.SetSenderClock(s, r.clock.now)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("sender: %v", err)
		}
	})
	return r
}

// noDeliver fails when the ESME has received a deliver_sm.
func (a *aggregator) noDeliver(t *testing.T, what string) {
	t.Helper()
	select {
	case p := <-a.dl:
		t.Fatalf("%s: the ESME received %q", what, p.Fields()["short_message"])
	default:
	}
}

// Attack (a), the issue's: an account allowed numbers starting 2541 writes "from"
// Alice's 254700000001 to start a transfer and get her code on its own bind. The
// submit_sm is refused with ESME_RINVSRCADR; it reaches no handler and pins nothing,
// and Alice's code (had the engine sent one) goes over the carrier to her phone.
func TestGatewaySourceOutsideAccountPrefixesRefused(t *testing.T) {
	r := startSecurityRig(t, time.Minute)
	attacker := mustBind(t, r.g.Addr(), "agg", "secret")

	_, err := attacker.submit("254700000001", shortcode, "SEND 0700000666 500")
	if statusOf(err) != 0x0A { // ESME_RINVSRCADR
		t.Fatalf("submit_sm from a number outside the account's prefixes: %v, want ESME_RINVSRCADR", err)
	}
	// The response comes only after the handler, so an MO it had been given would be
	// waiting here already.
	if n := len(r.sink.mos); n != 0 {
		t.Fatalf("the refused submit_sm reached the handler: %+v", <-r.sink.mos)
	}
	if pin, err := r.g.TargetFor(context.Background(), "254700000001"); err != nil || pin.Target != "" {
		t.Fatalf("the refused submit_sm pinned the number: %+v %v", pin, err)
	}

	id := enqueue(t, r.db, r.o, outbox.Message{To: "254700000001", Purpose: "otp", PaymentID: "PAY0000001",
		Text: "Code 482913 for KES 500.00"})[0]
	r.phones.waitFor(t, "Code 482913 for KES 500.00", 1)
	if m := waitMessage(t, r.o, id, "sent", sent); m.Link != "carrier-a" {
		t.Fatalf("Alice's code went over %s", m.Link)
	}
	attacker.noDeliver(t, "after Alice's code was sent")

	// The same account still relays its own numbers.
	if _, err := attacker.submit("254100000001", shortcode, "BAL"); err != nil {
		t.Fatalf("submit_sm within the account's prefixes: %v", err)
	}
	if m := r.sink.take(t); m.From != "254100000001" || m.Link != "server:agg" {
		t.Fatalf("MO %+v", m)
	}
}

// Attack (b): a number within the account's prefixes wrote through it and is pinned to
// it. Its code SMS still goes over the carrier link chosen by prefix, also when a meta
// link names the account; an answer without a code follows the pin.
func TestGatewayCodeNeverFollowsThePin(t *testing.T) {
	r := startSecurityRig(t, time.Minute)
	agg := mustBind(t, r.g.Addr(), "agg", "secret")
	if _, err := agg.submit("254100000001", shortcode, "SEND 0711000002 100"); err != nil {
		t.Fatal(err)
	}
	r.sink.take(t)
	if pin, _ := r.g.TargetFor(context.Background(), "254100000001"); pin.Target != "server:agg" {
		t.Fatalf("not pinned: %+v", pin)
	}

	ids := enqueue(t, r.db, r.o,
		outbox.Message{To: "254100000001", Purpose: "otp", PaymentID: "PAY0000002", Text: "Code 111222 for KES 100.00"},
		outbox.Message{To: "254100000001", Purpose: "otp", PaymentID: "PAY0000002", Text: "Code 333444 for KES 100.00",
			Meta: map[string]string{smpp.MetaLink: "server:agg"}})
	r.phones.waitFor(t, "Code 111222 for KES 100.00", 1)
	r.phones.waitFor(t, "Code 333444 for KES 100.00", 1)
	for _, id := range ids {
		if m := waitMessage(t, r.o, id, "sent", sent); m.Link != "carrier-a" {
			t.Fatalf("code SMS %d went over %s", id, m.Link)
		}
	}
	agg.noDeliver(t, "after the codes were sent")

	id := enqueue(t, r.db, r.o, outbox.Message{To: "254100000001", Purpose: "reply", Text: "Your balance is KES 9.00"})[0]
	if _, to, text := agg.expectDeliver(t); to != "254100000001" || text != "Your balance is KES 9.00" {
		t.Fatalf("deliver_sm to %s %q", to, text)
	}
	if m := waitMessage(t, r.o, id, "sent", sent); m.Link != "server:agg" {
		t.Fatalf("the reply went over %s", m.Link)
	}
}

// Attack (c): the pinned account goes away. Its number's answers wait for it at most
// the pin's grace, counted from their creation, and then go over the carrier.
func TestGatewayPinnedAccountDownGraceThenCarrier(t *testing.T) {
	const grace = time.Minute
	r := startSecurityRig(t, grace)
	agg := mustBind(t, r.g.Addr(), "agg", "secret")
	if _, err := agg.submit("254100000003", shortcode, "BAL"); err != nil {
		t.Fatal(err)
	}
	r.sink.take(t)
	agg.trx.Close()
	waitSessions(t, r.g, "server:agg", 0)

	id := enqueue(t, r.db, r.o, outbox.Message{To: "254100000003", Purpose: "reply", Text: "Your balance is KES 3.00"})[0]
	waitMessage(t, r.o, id, "waiting for the account", func(m outbox.Message) bool {
		return m.Attempts >= 2 && m.State == outbox.StateQueued
	})
	if got := r.phones.byText()["Your balance is KES 3.00"]; len(got) != 0 {
		t.Fatalf("went over the carrier within the grace: %+v", got)
	}

	r.clock.advance(grace)
	r.o.Kick()
	r.phones.waitFor(t, "Your balance is KES 3.00", 1)
	if m := waitMessage(t, r.o, id, "sent", sent); m.Link != "carrier-a" {
		t.Fatalf("after the grace it went over %s", m.Link)
	}
}

// Attack (d): a bound account floods the reassembler with parts that never complete,
// each carrying a 60 KB message_payload. Whatever it sends, the gateway holds no more
// than its caps, refuses the rest with an error status and goes on serving.
func TestGatewayReassemblyFloodCapped(t *testing.T) {
	r := startSecurityRig(t, time.Minute)
	c := dialRaw(t, r.g.Addr())
	c.c.SetDeadline(time.Now().Add(2 * time.Minute))
	c.bind(t, "agg", "secret")
	payload := bytes.Repeat([]byte("z"), 60<<10)
	// flood sends n parts "1 of total", from a different number each, a window at a
	// time (the server refuses more than 64 in flight), and counts the answers.
	flood := func(n int, total uint8) map[pdu.Status]int {
		statuses := map[pdu.Status]int{}
		const window = 32
		sent, answered := 0, 0
		for answered < n {
			for sent < n && sent-answered < window {
				sm := pdu.NewSubmitSM(pdutlv.Fields{
					pdutlv.TagMessagePayload:   payload,
					pdutlv.TagSarMsgRefNum:     []byte{byte(sent >> 8), byte(sent)},
					pdutlv.TagSarTotalSegments: []byte{total},
					pdutlv.TagSarSegmentSeqnum: []byte{1},
				})
				sm.Fields().Set(pdufield.SourceAddr, fmt.Sprintf("2541%08d", sent))
				sm.Fields().Set(pdufield.DestinationAddr, shortcode)
				c.send(t, sm, uint32(sent+2))
				sent++
			}
			h := c.read(t)
			for h.ID == pdu.EnquireLinkID {
				// The gateway probes a session that is slow to answer (a loaded machine
				// stretches the flood past its enquire_link period): answer it, as an
				// ESME does.
				c.send(t, pdu.NewEnquireLinkResp(), h.Seq)
				h = c.read(t)
			}
			if h.ID != pdu.SubmitSMRespID {
				t.Fatalf("answer %d: %s", answered, h.ID)
			}
			statuses[h.Status]++
			answered++
			if sets, held := smpp.GatewayReassemblyHeld(r.g); held > smpp.MaxReassemblyBytes || sets > smpp.MaxReassemblySets {
				t.Fatalf("after %d parts the gateway holds %d sets, %d bytes", answered, sets, held)
			}
		}
		return statuses
	}

	// The flood: parts of 255-part messages are refused outright.
	if st := flood(1500, 255); st[0x01] != 1500 { // ESME_RINVMSGLEN
		t.Fatalf("parts of 255: %v", st)
	}
	if sets, held := smpp.GatewayReassemblyHeld(r.g); sets != 0 || held != 0 {
		t.Fatalf("holding %d sets, %d bytes after refusing every part", sets, held)
	}
	// Parts of 2-part messages are taken until the bytes cap, then refused as a full queue.
	st := flood(300, 2)
	if st[0x14] == 0 || st[0]+st[0x14] != 300 { // ESME_RMSGQFUL
		t.Fatalf("parts of 2: %v", st)
	}
	if len(r.sink.mos) != 0 {
		t.Fatal("an incomplete part reached the handler")
	}
	// The gateway still serves.
	agg := mustBind(t, r.g.Addr(), "agg", "secret")
	if _, err := agg.submit("254100000009", shortcode, "BAL"); err != nil {
		t.Fatalf("after the flood: %v", err)
	}
	r.sink.take(t)
}

// rawBind dials the gateway from the local address from (e.g. "127.0.0.2") and binds;
// it returns the bind_transceiver_resp's status.
func rawBind(t *testing.T, addr, from, user, password string) pdu.Status {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatalf("dial from %s: %v", from, err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(waitLimit))
	r := &rawConn{c: c, br: bufio.NewReader(c)}
	b := pdu.NewBindTransceiver()
	b.Fields().Set(pdufield.SystemID, user)
	b.Fields().Set(pdufield.Password, password)
	r.send(t, b, 1)
	h := r.read(t)
	if h.ID != pdu.BindTransceiverRespID {
		t.Fatalf("bind from %s: %s", from, h.ID)
	}
	if h.Status != 0 {
		if next := r.read(t); next.ID != 0 { // a refused bind ends the connection
			t.Fatalf("after a refused bind the connection goes on: %s", next.ID)
		}
	}
	return h.Status
}

// Attack (e): guessing passwords over many connections. An unknown system_id and a
// wrong password get the same answer; ten failures in a minute lock the address out
// for a minute (even the right password is then refused, unchecked), while binds from
// other addresses go on.
func TestGatewayBindBruteForceThrottled(t *testing.T) {
	r := startSecurityRig(t, time.Minute)
	addr := r.g.Addr()
	const attacker, carrier = "127.0.0.1", "127.0.0.2"
	unknown := rawBind(t, addr, attacker, "nobody", "guess-0")
	wrong := rawBind(t, addr, attacker, "agg", "guess-1")
	if unknown != 0x0E || wrong != 0x0E { // ESME_RINVPASWD
		t.Fatalf("unknown system_id: 0x%x, wrong password: 0x%x; want both ESME_RINVPASWD", uint32(unknown), uint32(wrong))
	}
	for i := 2; i < 10; i++ {
		if st := rawBind(t, addr, attacker, "agg", fmt.Sprintf("guess-%d", i)); st != 0x0E {
			t.Fatalf("guess %d: 0x%x", i, uint32(st))
		}
	}
	if st := rawBind(t, addr, attacker, "agg", "secret"); st != 0x0D { // ESME_RBINDFAIL
		t.Fatalf("the right password from a locked-out address: 0x%x, want ESME_RBINDFAIL", uint32(st))
	}
	if st := rawBind(t, addr, carrier, "agg", "secret"); st != 0 {
		t.Fatalf("a bind from another address: 0x%x", uint32(st))
	}
	r.clock.advance(time.Minute)
	if st := rawBind(t, addr, attacker, "agg", "secret"); st != 0 {
		t.Fatalf("after the lockout: 0x%x", uint32(st))
	}
}
