package smpp_test

// The switch's own SMPP server (Gateway) with go-smpp's client as the aggregator.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	smppcli "github.com/fiorix/go-smpp/smpp"
	"github.com/fiorix/go-smpp/smpp/pdu"
	"github.com/fiorix/go-smpp/smpp/pdu/pdufield"
	"github.com/fiorix/go-smpp/smpp/pdu/pdutext"
	"github.com/fiorix/go-smpp/smpp/pdu/pdutlv"
	"github.com/payswitch/payswitch/internal/pgtest"
	"github.com/payswitch/payswitch/outbox"
	"github.com/payswitch/payswitch/smpp"
	"github.com/payswitch/payswitch/store"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
)

// moSink is the switch behind the gateway: it records MO, failing the next ones when
// asked.
type moSink struct {
	mu   sync.Mutex // guards fail
	fail int
	mos  chan smpp.MO
}

func newMOSink() *moSink { return &moSink{mos: make(chan smpp.MO, 100)} }

func (s *moSink) HandleMO(ctx context.Context, m smpp.MO) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fail > 0 {
		s.fail--
		return errors.New("database is locked")
	}
	s.mos <- m
	return nil
}

func (s *moSink) HandleReceipt(context.Context, smpp.Receipt) error { return nil }

func (s *moSink) take(t testing.TB) smpp.MO {
	t.Helper()
	select {
	case m := <-s.mos:
		return m
	case <-time.After(waitLimit):
		t.Fatal("no MO reached the handler")
		return smpp.MO{}
	}
}

// startGateway serves the gateway on a loopback port until the test ends. Account
// "agg-x" (password "secret-x") may hold 2 binds, "agg-y" ("secret-y") the default,
// both may send from numbers starting 2547, and "agg-off" has no password.
func startGateway(t testing.TB, db *store.DB, h smpp.Handler, reg prometheus.Registerer) *smpp.Gateway {
	t.Helper()
	g, err := smpp.NewGateway(smpp.GatewayConfig{
		Listen: "127.0.0.1:0", Shortcode: shortcode, USSDServiceCode: "*384#", RespTimeout: 2 * time.Second,
		Accounts: []smpp.GatewayAccount{
			{SystemID: "agg-x", Password: "secret-x", MaxBinds: 2, Prefixes: []string{"2547"}},
			{SystemID: "agg-y", Password: "secret-y", Prefixes: []string{"2547"}},
			{SystemID: "agg-off"},
		},
	}, db, h, zerolog.Nop(), reg)
	if err != nil {
		t.Fatal(err)
	}
	if err := g.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { g.Close() })
	return g
}

// aggregator is a go-smpp Transceiver bound to the gateway; deliver_sm it receives
// land in dl.
type aggregator struct {
	trx *smppcli.Transceiver
	dl  chan pdu.Body
}

// bindAggregator binds a go-smpp Transceiver and returns it with the first bind status.
func bindAggregator(t testing.TB, addr, user, password string) (*aggregator, smppcli.ConnStatus) {
	t.Helper()
	a := &aggregator{dl: make(chan pdu.Body, 100)}
	a.trx = &smppcli.Transceiver{Addr: addr, User: user, Passwd: password, RespTimeout: 5 * time.Second,
		BindInterval: time.Hour, Handler: func(p pdu.Body) {
			if p.Header().ID == pdu.DeliverSMID {
				a.dl <- p
			}
		}}
	t.Cleanup(func() { a.trx.Close() })
	select {
	case st := <-a.trx.Bind():
		return a, st
	case <-time.After(waitLimit):
		t.Fatal("go-smpp client never reported a bind status")
		return nil, nil
	}
}

func mustBind(t testing.TB, addr, user, password string) *aggregator {
	t.Helper()
	a, st := bindAggregator(t, addr, user, password)
	if st.Status() != smppcli.Connected {
		t.Fatalf("bind %s: %v %v", user, st.Status(), st.Error())
	}
	return a
}

// submit sends a submit_sm from a phone to dst and returns the response's message id.
func (a *aggregator) submit(from, dst, text string) (string, error) {
	sm, err := a.trx.Submit(&smppcli.ShortMessage{Src: from, Dst: dst, Text: pdutext.Raw(text)})
	if err != nil {
		return "", err
	}
	return sm.RespID(), nil
}

// expectDeliver waits for a deliver_sm and returns its destination and decoded text.
func (a *aggregator) expectDeliver(t testing.TB) (from, to, text string) {
	t.Helper()
	select {
	case p := <-a.dl:
		f := p.Fields()
		coding := f[pdufield.DataCoding].Bytes()[0]
		part, err := smpp.Decode(coding, 0, f[pdufield.ShortMessage].Bytes(), nil)
		if err != nil {
			t.Fatal(err)
		}
		return f[pdufield.SourceAddr].String(), f[pdufield.DestinationAddr].String(), part.Text
	case <-time.After(waitLimit):
		t.Fatal("no deliver_sm reached the aggregator")
		return "", "", ""
	}
}

func statusOf(err error) pdu.Status {
	var st pdu.Status
	errors.As(err, &st)
	return st
}

func TestGatewayBindAuth(t *testing.T) {
	db, _ := mustStore(t)
	g := startGateway(t, db, newMOSink(), nil)
	tests := []struct {
		name, user, password string
		want                 pdu.Status
	}{
		{"right password", "agg-y", "secret-y", 0},
		{"wrong password", "agg-y", "secret-x", 0x0E}, // ESME_RINVPASWD
		// As a wrong password: a bind does not tell which accounts exist.
		{"unknown system_id", "agg-z", "secret-y", 0x0E},
		{"disabled account", "agg-off", "", 0x0E},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a, st := bindAggregator(t, g.Addr(), tc.user, tc.password)
			if tc.want == 0 {
				if st.Status() != smppcli.Connected {
					t.Fatalf("bind: %v %v", st.Status(), st.Error())
				}
				a.trx.Close()
				return
			}
			if st.Status() != smppcli.BindFailed || statusOf(st.Error()) != tc.want {
				t.Fatalf("bind: %v %v, want %v", st.Status(), st.Error(), tc.want)
			}
		})
	}

	t.Run("too many binds", func(t *testing.T) {
		first := mustBind(t, g.Addr(), "agg-x", "secret-x")
		mustBind(t, g.Addr(), "agg-x", "secret-x")
		_, st := bindAggregator(t, g.Addr(), "agg-x", "secret-x")
		if st.Status() != smppcli.BindFailed || statusOf(st.Error()) != 0x05 { // ESME_RALYBND
			t.Fatalf("third bind: %v %v", st.Status(), st.Error())
		}
		// Another account is not affected, and a freed bind can be taken again.
		mustBind(t, g.Addr(), "agg-y", "secret-y")
		first.trx.Close()
		waitSessions(t, g, "server:agg-x", 1)
		mustBind(t, g.Addr(), "agg-x", "secret-x")
	})

	t.Run("nothing before a bind", func(t *testing.T) {
		c := dialRaw(t, g.Addr())
		c.send(t, pdu.NewEnquireLink(), 1)
		if h := c.read(t); h.ID != pdu.EnquireLinkRespID || h.Status != 0x04 { // ESME_RINVBNDSTS
			t.Fatalf("enquire_link before bind: %s 0x%x", h.ID, uint32(h.Status))
		}
	})
}

// waitSessions polls until the named account holds n binds.
func waitSessions(t testing.TB, g *smpp.Gateway, name string, n int) {
	t.Helper()
	deadline := time.Now().Add(waitLimit)
	for {
		for _, st := range g.Stats() {
			if st.Name == name && st.Sessions == n {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s never held %d binds: %+v", name, n, g.Stats())
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func TestGatewayMO(t *testing.T) {
	pgtest.Both(t, func(t *testing.T) {
		db, _ := mustStore(t)
		sink := newMOSink()
		reg := prometheus.NewRegistry()
		g := startGateway(t, db, sink, reg)
		agg := mustBind(t, g.Addr(), "agg-x", "secret-x")
		ctx := context.Background()

		id, err := agg.submit("254700000001", shortcode, "PAY 55501 150")
		if err != nil || id == "" {
			t.Fatalf("submit_sm: %q %v", id, err)
		}
		m := sink.take(t)
		if m.Link != "server:agg-x" || m.From != "254700000001" || m.To != shortcode || m.Text != "PAY 55501 150" {
			t.Fatalf("MO %+v", m)
		}
		if pin, err := g.TargetFor(ctx, "+254700000001"); err != nil || pin.Target != "server:agg-x" {
			t.Fatalf("pinned to %q %v", pin.Target, err)
		}

		t.Run("handler fails: ESME_RX_T_APPN, then accepted again", func(t *testing.T) {
			sink.mu.Lock()
			sink.fail = 1
			sink.mu.Unlock()
			if _, err := agg.submit("254700000002", shortcode, "BAL"); statusOf(err) != 0x64 {
				t.Fatalf("submit_sm while the handler fails: %v", err)
			}
			if _, err := agg.submit("254700000002", shortcode, "BAL"); err != nil {
				t.Fatal(err)
			}
			if m := sink.take(t); m.Text != "BAL" || m.From != "254700000002" {
				t.Fatalf("MO %+v", m)
			}
		})

		t.Run("other destination: ESME_RINVDSTADR", func(t *testing.T) {
			if _, err := agg.submit("254700000003", "254711111111", "hello"); statusOf(err) != 0x0B {
				t.Fatalf("submit_sm to a phone: %v", err)
			}
			if pin, _ := g.TargetFor(ctx, "254700000003"); pin.Target != "" {
				t.Fatalf("a refused submit_sm pinned the number to %q", pin.Target)
			}
		})

		t.Run("USSD to the service code", func(t *testing.T) {
			sm := &smppcli.ShortMessage{Src: "254700000005", Dst: "*384#", Text: pdutext.Raw("*384#"),
				TLVFields: pdutlv.Fields{pdutlv.TagUssdServiceOp: uint8(smpp.USSDPSSRIndication), pdutlv.TagItsSessionInfo: []byte{0, 9}}}
			if _, err := agg.trx.Submit(sm); err != nil {
				t.Fatal(err)
			}
			m := sink.take(t)
			if m.To != "*384#" || m.USSD == nil || m.USSD.ServiceOp != smpp.USSDPSSRIndication || !bytes.Equal(m.USSD.SessionInfo, []byte{0, 9}) {
				t.Fatalf("USSD MO %+v %+v", m, m.USSD)
			}
			// Without ussd_service_op the service code is just another destination.
			if _, err := agg.submit("254700000005", "*384#", "1"); statusOf(err) != 0x0B {
				t.Fatalf("plain submit_sm to the service code: %v", err)
			}
		})

		t.Run("concatenated MO", func(t *testing.T) {
			long := strings.Repeat("MINI please, ", 20)
			parts, err := agg.trx.SubmitLongMsg(&smppcli.ShortMessage{Src: "254700000004", Dst: shortcode, Text: pdutext.Raw(long)})
			if err != nil || len(parts) < 2 {
				t.Fatalf("%d parts, %v", len(parts), err)
			}
			if m := sink.take(t); m.Text != long || m.From != "254700000004" {
				t.Fatalf("reassembled MO %q", m.Text)
			}
		})

		t.Run("a later MO through another account moves the pin", func(t *testing.T) {
			other := mustBind(t, g.Addr(), "agg-y", "secret-y")
			if _, err := other.submit("254700000001", shortcode, "BAL"); err != nil {
				t.Fatal(err)
			}
			sink.take(t)
			if pin, _ := g.TargetFor(ctx, "254700000001"); pin.Target != "server:agg-y" {
				t.Fatalf("pinned to %q", pin.Target)
			}
		})

		if v := metricValue(t, reg, "payswitch_smpp_messages_total", "server:agg-x", "direction", "in"); v < 5 {
			t.Fatalf("messages_total{in} = %v", v)
		}
	})
}

// The switch's answers to a number that wrote through an aggregator go back to that
// aggregator as deliver_sm, durably: while it is not bound they wait in the outbox.
// Other numbers keep their carrier routes.
func TestGatewayMTGoesBackToTheAggregator(t *testing.T) {
	pgtest.Both(t, func(t *testing.T) {
		db, o := mustStore(t)
		sink := newMOSink()
		g := startGateway(t, db, sink, nil)
		sim := startSim(t, "carrier-a")
		carrier := startLink(t, sim, smpp.LinkConfig{Name: "carrier-a"}, nil, nil)
		waitState(t, smpp.StateBound, carrier)
		mts := collect(t, sim)
		runSender(t, o, []*smpp.Link{carrier}, time.Second, g)

		agg := mustBind(t, g.Addr(), "agg-x", "secret-x")
		if _, err := agg.submit("254700000001", shortcode, "BAL"); err != nil {
			t.Fatal(err)
		}
		sink.take(t)

		id := enqueue(t, db, o, outbox.Message{To: "254700000001", Text: "Your balance is KES 1,500.00"})[0]
		from, to, text := agg.expectDeliver(t)
		if from != shortcode || to != "254700000001" || text != "Your balance is KES 1,500.00" {
			t.Fatalf("deliver_sm %s -> %s %q", from, to, text)
		}
		if m := waitMessage(t, o, id, "sent", sent); m.Link != "server:agg-x" || len(m.MessageIDs) != 1 {
			t.Fatalf("outbox: link %s ids %v", m.Link, m.MessageIDs)
		}

		// A number that never wrote through the aggregator goes over the carrier.
		enqueue(t, db, o, outbox.Message{To: "254700000009", Text: "carrier route"})
		if got := mts.waitFor(t, "carrier route", 1); got[0].SystemID != "carrier-a" {
			t.Fatalf("went to %s", got[0].SystemID)
		}

		// The aggregator goes away for a while; the answer waits for it, and never takes
		// the carrier route instead.
		agg.trx.Close()
		waitSessions(t, g, "server:agg-x", 0)
		id = enqueue(t, db, o, outbox.Message{To: "254700000001", Text: "Confirmed. New balance KES 1,350.00", RequestReceipt: true})[0]
		waitMessage(t, o, id, "retried", func(m outbox.Message) bool {
			return m.Attempts >= 2 && strings.Contains(m.LastError, smpp.ErrNotBound.Error())
		})
		agg = mustBind(t, g.Addr(), "agg-x", "secret-x")
		if _, _, text := agg.expectDeliver(t); text != "Confirmed. New balance KES 1,350.00" {
			t.Fatalf("after rebind: %q", text)
		}
		if m := waitMessage(t, o, id, "sent", sent); m.Link != "server:agg-x" {
			t.Fatalf("outbox link %s", m.Link)
		}
		if got := mts.byText()["Confirmed. New balance KES 1,350.00"]; len(got) != 0 {
			t.Fatalf("the answer also went over the carrier: %+v", got)
		}
		st := g.Stats()
		if st[0].Name != "server:agg-x" || st[0].State != smpp.StateBound || st[0].Submitted != 2 || st[0].Failed == 0 {
			t.Fatalf("stats %+v", st)
		}
	})
}

// rawConn is a bare TCP connection speaking SMPP by hand, for what clients never send.
type rawConn struct {
	c  net.Conn
	br *bufio.Reader
}

func dialRaw(t testing.TB, addr string) *rawConn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(waitLimit))
	return &rawConn{c: c, br: bufio.NewReader(c)}
}

func (r *rawConn) send(t testing.TB, p pdu.Body, seq uint32) {
	t.Helper()
	p.Header().Seq = seq
	var b bytes.Buffer
	if err := p.SerializeTo(&b); err != nil {
		t.Fatal(err)
	}
	r.write(t, b.Bytes())
}

func (r *rawConn) write(t testing.TB, b []byte) {
	t.Helper()
	if _, err := r.c.Write(b); err != nil {
		t.Fatal(err)
	}
}

// read returns the next PDU's header; io.EOF (as a zero header) when the server hung up.
func (r *rawConn) read(t testing.TB) pdu.Header {
	t.Helper()
	var hb [16]byte
	if _, err := io.ReadFull(r.br, hb[:]); err != nil {
		return pdu.Header{}
	}
	h := pdu.Header{Len: binary.BigEndian.Uint32(hb[0:]), ID: pdu.ID(binary.BigEndian.Uint32(hb[4:])),
		Status: pdu.Status(binary.BigEndian.Uint32(hb[8:])), Seq: binary.BigEndian.Uint32(hb[12:])}
	if _, err := io.CopyN(io.Discard, r.br, int64(h.Len)-16); err != nil {
		t.Fatal(err)
	}
	return h
}

func (r *rawConn) bind(t testing.TB, user, password string) {
	t.Helper()
	b := pdu.NewBindTransceiver()
	b.Fields().Set(pdufield.SystemID, user)
	b.Fields().Set(pdufield.Password, password)
	r.send(t, b, 1)
	if h := r.read(t); h.ID != pdu.BindTransceiverRespID || h.Status != 0 {
		t.Fatalf("bind: %s 0x%x", h.ID, uint32(h.Status))
	}
}

// Malformed and oversized PDUs get a generic_nack or a closed connection, never a
// crash, and other sessions go on.
func TestGatewayBadPDUs(t *testing.T) {
	db, _ := mustStore(t)
	sink := newMOSink()
	g := startGateway(t, db, sink, nil)
	agg := mustBind(t, g.Addr(), "agg-y", "secret-y")

	c := dialRaw(t, g.Addr())
	c.bind(t, "agg-x", "secret-x")
	// An unknown command id: generic_nack ESME_RINVCMDID, and the session goes on.
	c.write(t, []byte{0, 0, 0, 16, 0, 0, 0x12, 0x34, 0, 0, 0, 0, 0, 0, 0, 7})
	if h := c.read(t); h.ID != pdu.GenericNACKID || h.Status != 0x03 || h.Seq != 7 {
		t.Fatalf("unknown command: %s 0x%x seq %d", h.ID, uint32(h.Status), h.Seq)
	}
	// A submit_sm whose body is cut short.
	c.write(t, []byte{0, 0, 0, 20, 0, 0, 0, 4, 0, 0, 0, 0, 0, 0, 0, 8, 'a', 'b', 'c', 'd'})
	if h := c.read(t); h.Status == 0 || h.Seq != 8 {
		t.Fatalf("truncated submit_sm: %s 0x%x seq %d", h.ID, uint32(h.Status), h.Seq)
	}
	// A submit_sm with a UDH that says more than there is.
	sm := pdu.NewSubmitSM(nil)
	sm.Fields().Set(pdufield.SourceAddr, "254700000001")
	sm.Fields().Set(pdufield.DestinationAddr, shortcode)
	sm.Fields().Set(pdufield.ESMClass, 0x40)
	sm.Fields().Set(pdufield.ShortMessage, []byte{0x09, 0x00, 0x03, 1, 2, 1})
	c.send(t, sm, 9)
	if h := c.read(t); h.ID != pdu.SubmitSMRespID || h.Status != 0x45 {
		t.Fatalf("bad UDH: %s 0x%x", h.ID, uint32(h.Status))
	}
	// A command_length of 1 MiB: framing is lost, the connection is closed.
	c.write(t, []byte{0, 0x10, 0, 0, 0, 0, 0, 4, 0, 0, 0, 0, 0, 0, 0, 10})
	for {
		h := c.read(t)
		if h.ID == 0 {
			break // closed
		}
		if h.ID != pdu.GenericNACKID {
			t.Fatalf("after an oversized PDU: %s", h.ID)
		}
	}
	// The aggregator's own session never noticed.
	if _, err := agg.submit("254700000001", shortcode, "BAL"); err != nil {
		t.Fatal(err)
	}
	if m := sink.take(t); m.Link != "server:agg-y" {
		t.Fatalf("MO %+v", m)
	}
}
