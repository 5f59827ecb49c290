package server

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	smppcli "github.com/fiorix/go-smpp/smpp"
	"github.com/fiorix/go-smpp/smpp/pdu"
	"github.com/fiorix/go-smpp/smpp/pdu/pdufield"
	"github.com/fiorix/go-smpp/smpp/pdu/pdutext"
	"github.com/fiorix/go-smpp/smpp/pdu/pdutlv"
)

// waitLimit only guards against a hung test; no assertion depends on it.
const waitLimit = 10 * time.Second

// fakeHandler is a Handler built from function fields; nil fields have
// sensible defaults (one account esme/secret, submit_sm answered "id-1").
type fakeHandler struct {
	authenticate func(systemID, password, bindType, remote string) uint32
	bound        func(*Session)
	unbound      func(*Session)
	handle       func(context.Context, *Session, pdu.Body) pdu.Body
}

var _ Handler = (*fakeHandler)(nil)

func (f *fakeHandler) Authenticate(systemID, password, bindType, remote string) uint32 {
	if f.authenticate != nil {
		return f.authenticate(systemID, password, bindType, remote)
	}
	switch {
	case systemID != "esme":
		return StatusInvSysID
	case password != "secret":
		return StatusInvPaswd
	}
	return StatusOK
}

func (f *fakeHandler) Bound(s *Session) {
	if f.bound != nil {
		f.bound(s)
	}
}

func (f *fakeHandler) Unbound(s *Session) {
	if f.unbound != nil {
		f.unbound(s)
	}
}

func (f *fakeHandler) HandlePDU(ctx context.Context, s *Session, p pdu.Body) pdu.Body {
	if f.handle != nil {
		return f.handle(ctx, s, p)
	}
	if p.Header().ID == pdu.SubmitSMID {
		r := pdu.NewSubmitSMResp()
		r.Fields().Set(pdufield.MessageID, "id-1")
		return r
	}
	return nil
}

// mustServe starts srv on a loopback port and closes it when the test ends.
func mustServe(t testing.TB, srv *Server) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(l) }()
	t.Cleanup(func() {
		srv.Close()
		if err := <-served; !errors.Is(err, ErrServerClosed) {
			t.Errorf("Serve returned %v, want ErrServerClosed", err)
		}
	})
	return l.Addr().String()
}

// rawConn is a hand-driven SMPP peer for the cases go-smpp's client cannot
// produce (requests before bind, garbage, unanswered probes).
type rawConn struct {
	t testing.TB
	c net.Conn
	r *bufio.Reader
}

func dialRaw(t testing.TB, addr string) *rawConn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(waitLimit))
	return &rawConn{t: t, c: c, r: bufio.NewReader(c)}
}

func (rc *rawConn) send(p pdu.Body, seq uint32) {
	rc.t.Helper()
	p.Header().Seq = seq
	var b bytes.Buffer
	if err := p.SerializeTo(&b); err != nil {
		rc.t.Fatal(err)
	}
	rc.sendBytes(b.Bytes())
}

func (rc *rawConn) sendBytes(b []byte) {
	rc.t.Helper()
	if _, err := rc.c.Write(b); err != nil {
		rc.t.Fatal(err)
	}
}

func (rc *rawConn) read() pdu.Body {
	rc.t.Helper()
	_, buf, err := readFrame(rc.r, DefaultMaxPDUSize)
	if err != nil {
		rc.t.Fatalf("read: %v", err)
	}
	p, err := decodeFrame(buf)
	if err != nil {
		rc.t.Fatalf("decode: %v", err)
	}
	return p
}

// expect reads one PDU and checks its command_id, status and sequence.
func (rc *rawConn) expect(id pdu.ID, status uint32, seq uint32) pdu.Body {
	rc.t.Helper()
	p := rc.read()
	h := p.Header()
	if h.ID != id || uint32(h.Status) != status || h.Seq != seq {
		rc.t.Fatalf("got %s status %#x seq %d, want %s status %#x seq %d", h.ID, uint32(h.Status), h.Seq, id, status, seq)
	}
	return p
}

// expectClosed reads until the server hangs up.
func (rc *rawConn) expectClosed() {
	rc.t.Helper()
	if _, err := io.Copy(io.Discard, rc.r); err != nil {
		rc.t.Fatalf("want EOF, got %v", err)
	}
}

func (rc *rawConn) bind(systemID, password string) {
	rc.t.Helper()
	b := pdu.NewBindTransceiver()
	b.Fields().Set(pdufield.SystemID, systemID)
	b.Fields().Set(pdufield.Password, password)
	rc.send(b, 1)
	rc.expect(pdu.BindTransceiverRespID, 0, 1)
}

func newSubmit(src, dst, text string) pdu.Body {
	p := pdu.NewSubmitSM(nil)
	f := p.Fields()
	f.Set(pdufield.SourceAddr, src)
	f.Set(pdufield.DestinationAddr, dst)
	f.Set(pdufield.ShortMessage, text)
	return p
}

// bindClient binds a go-smpp client and returns the first status it reports.
func bindClient(t *testing.T, c smppcli.ClientConn) smppcli.ConnStatus {
	t.Helper()
	t.Cleanup(func() { c.Close() })
	select {
	case st := <-c.Bind():
		return st
	case <-time.After(waitLimit):
		t.Fatal("go-smpp client never reported a bind status")
		return nil
	}
}

func TestBindWithGoSMPPClient(t *testing.T) {
	tests := []struct {
		name       string
		client     func(addr string) smppcli.ClientConn
		wantStatus smppcli.ConnStatusID
		wantErr    pdu.Status
		wantType   string
	}{
		{"transceiver", func(a string) smppcli.ClientConn {
			return &smppcli.Transceiver{Addr: a, User: "esme", Passwd: "secret"}
		}, smppcli.Connected, 0, BindTransceiver},
		{"transmitter", func(a string) smppcli.ClientConn {
			return &smppcli.Transmitter{Addr: a, User: "esme", Passwd: "secret"}
		}, smppcli.Connected, 0, BindTransmitter},
		{"receiver", func(a string) smppcli.ClientConn {
			return &smppcli.Receiver{Addr: a, User: "esme", Passwd: "secret", Handler: func(pdu.Body) {}}
		}, smppcli.Connected, 0, BindReceiver},
		{"wrong password", func(a string) smppcli.ClientConn {
			return &smppcli.Transceiver{Addr: a, User: "esme", Passwd: "guess"}
		}, smppcli.BindFailed, pdu.Status(StatusInvPaswd), ""},
		{"unknown system_id", func(a string) smppcli.ClientConn {
			return &smppcli.Transceiver{Addr: a, User: "nobody", Passwd: "secret"}
		}, smppcli.BindFailed, pdu.Status(StatusInvSysID), ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			bound := make(chan *Session, 1)
			srv := &Server{Handler: &fakeHandler{bound: func(s *Session) { bound <- s }}}
			addr := mustServe(t, srv)
			st := bindClient(t, tt.client(addr))
			if st.Status() != tt.wantStatus {
				t.Fatalf("status %v (%v), want %v", st.Status(), st.Error(), tt.wantStatus)
			}
			if tt.wantErr != 0 {
				var got pdu.Status
				if !errors.As(st.Error(), &got) || got != tt.wantErr {
					t.Fatalf("bind error %v, want %v", st.Error(), tt.wantErr)
				}
				return
			}
			s := <-bound
			if s.SystemID() != "esme" || s.BindType() != tt.wantType {
				t.Fatalf("session %q %q, want esme %q", s.SystemID(), s.BindType(), tt.wantType)
			}
			if want := tt.wantType != BindTransmitter; s.CanReceive() != want {
				t.Fatalf("CanReceive %v, want %v", s.CanReceive(), want)
			}
			if len(srv.Sessions()) != 1 {
				t.Fatalf("Sessions() = %d, want 1", len(srv.Sessions()))
			}
		})
	}
}

func TestSubmitWithGoSMPPClient(t *testing.T) {
	got := make(chan pdu.Body, 1)
	srv := &Server{Handler: &fakeHandler{handle: func(_ context.Context, s *Session, p pdu.Body) pdu.Body {
		got <- p
		r := pdu.NewSubmitSMResp()
		r.Fields().Set(pdufield.MessageID, "msg-42")
		return r
	}}}
	addr := mustServe(t, srv)
	tx := &smppcli.Transmitter{Addr: addr, User: "esme", Passwd: "secret"}
	if st := bindClient(t, tx); st.Status() != smppcli.Connected {
		t.Fatalf("bind: %v %v", st.Status(), st.Error())
	}
	sm, err := tx.Submit(&smppcli.ShortMessage{Src: "22333", Dst: "254700000001", Text: pdutext.Raw("hello")})
	if err != nil {
		t.Fatal(err)
	}
	if sm.RespID() != "msg-42" {
		t.Fatalf("message_id %q, want msg-42", sm.RespID())
	}
	p := <-got
	if p.Header().ID != pdu.SubmitSMID || fieldString(p, pdufield.DestinationAddr) != "254700000001" ||
		string(p.Fields()[pdufield.ShortMessage].Bytes()) != "hello" {
		t.Fatalf("handler got %s %v", p.Header().ID, p.Fields())
	}
}

func TestDeliverToGoSMPPClient(t *testing.T) {
	tests := []struct {
		name    string
		esm     uint8
		payload []byte // short_message as sent, UDH included
		wantSM  []byte // what go-smpp's decoder leaves in short_message
		wantUDH []byte
	}{
		{"plain", 0, []byte("hello phone"), []byte("hello phone"), nil},
		{"concatenated part", 0x40, append([]byte{5, 0, 3, 7, 2, 1}, "part one"...), []byte("part one"), []byte{0, 3, 7, 2, 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			bound := make(chan *Session, 1)
			srv := &Server{Handler: &fakeHandler{bound: func(s *Session) { bound <- s }}}
			addr := mustServe(t, srv)
			got := make(chan pdu.Body, 1)
			trx := &smppcli.Transceiver{Addr: addr, User: "esme", Passwd: "secret", Handler: func(p pdu.Body) { got <- p }}
			if st := bindClient(t, trx); st.Status() != smppcli.Connected {
				t.Fatalf("bind: %v %v", st.Status(), st.Error())
			}
			s := <-bound
			d := pdu.NewDeliverSM()
			f := d.Fields()
			f.Set(pdufield.SourceAddr, "254700000001")
			f.Set(pdufield.DestinationAddr, "22333")
			f.Set(pdufield.ESMClass, tt.esm)
			f.Set(pdufield.ShortMessage, tt.payload)
			resp, err := s.Send(context.Background(), d)
			if err != nil {
				t.Fatal(err)
			}
			if resp.Header().ID != pdu.DeliverSMRespID || resp.Header().Seq != d.Header().Seq {
				t.Fatalf("response %s seq %d, want deliver_sm_resp seq %d", resp.Header().ID, resp.Header().Seq, d.Header().Seq)
			}
			p := <-got
			if sm := p.Fields()[pdufield.ShortMessage].Bytes(); !bytes.Equal(sm, tt.wantSM) {
				t.Fatalf("client short_message %q, want %q", sm, tt.wantSM)
			}
			if tt.wantUDH != nil {
				if udh := udhBytes(p.Fields()[pdufield.GSMUserData]); !bytes.Equal(udh, tt.wantUDH) {
					t.Fatalf("client UDH % x, want % x", udh, tt.wantUDH)
				}
			}
		})
	}
}

func TestSendRefusals(t *testing.T) {
	bound := make(chan *Session, 1)
	srv := &Server{Handler: &fakeHandler{bound: func(s *Session) { bound <- s }}}
	addr := mustServe(t, srv)
	tx := &smppcli.Transmitter{Addr: addr, User: "esme", Passwd: "secret"}
	if st := bindClient(t, tx); st.Status() != smppcli.Connected {
		t.Fatalf("bind: %v %v", st.Status(), st.Error())
	}
	s := <-bound
	if _, err := s.Send(context.Background(), pdu.NewDeliverSM()); !errors.Is(err, ErrCannotReceive) {
		t.Fatalf("deliver_sm to transmitter: %v, want ErrCannotReceive", err)
	}
	s.Close()
	<-s.Done()
	if _, err := s.Send(context.Background(), pdu.NewEnquireLink()); !errors.Is(err, ErrSessionClosed) {
		t.Fatalf("send on closed session: %v, want ErrSessionClosed", err)
	}
}

func TestProtocolRules(t *testing.T) {
	unknown := make([]byte, 16)
	binary.BigEndian.PutUint32(unknown[0:4], 16)
	binary.BigEndian.PutUint32(unknown[4:8], 0x00000077)
	binary.BigEndian.PutUint32(unknown[12:16], 9)

	cancelSM := make([]byte, 16) // a real command go-smpp cannot decode
	binary.BigEndian.PutUint32(cancelSM[0:4], 16)
	binary.BigEndian.PutUint32(cancelSM[4:8], uint32(pdu.CancelSMID))
	binary.BigEndian.PutUint32(cancelSM[12:16], 10)

	// A submit_sm whose sm_length promises more than the PDU holds.
	var truncated bytes.Buffer
	newSubmit("a", "b", "hello").SerializeTo(&truncated)
	tb := truncated.Bytes()
	tb[len(tb)-6] = 200 // sm_length
	binary.BigEndian.PutUint32(tb[12:16], 11)

	tests := []struct {
		name string
		bind bool
		run  func(rc *rawConn)
	}{
		{"submit_sm before bind", false, func(rc *rawConn) {
			rc.send(newSubmit("a", "b", "x"), 3)
			rc.expect(pdu.SubmitSMRespID, StatusInvBndSts, 3)
		}},
		{"enquire_link before bind", false, func(rc *rawConn) {
			rc.send(pdu.NewEnquireLink(), 4)
			rc.expect(pdu.EnquireLinkRespID, StatusInvBndSts, 4)
		}},
		{"unknown command before bind", false, func(rc *rawConn) {
			rc.sendBytes(unknown)
			rc.expect(pdu.GenericNACKID, StatusInvCmdID, 9)
		}},
		{"wrong password then hang-up", false, func(rc *rawConn) {
			b := pdu.NewBindTransmitter()
			b.Fields().Set(pdufield.SystemID, "esme")
			b.Fields().Set(pdufield.Password, "nope")
			rc.send(b, 5)
			rc.expect(pdu.BindTransmitterRespID, StatusInvPaswd, 5)
			rc.expectClosed()
		}},
		{"second bind", true, func(rc *rawConn) {
			b := pdu.NewBindReceiver()
			b.Fields().Set(pdufield.SystemID, "esme")
			b.Fields().Set(pdufield.Password, "secret")
			rc.send(b, 6)
			rc.expect(pdu.BindReceiverRespID, StatusAlyBnd, 6)
		}},
		{"enquire_link", true, func(rc *rawConn) {
			rc.send(pdu.NewEnquireLink(), 7)
			rc.expect(pdu.EnquireLinkRespID, 0, 7)
		}},
		{"submit_sm", true, func(rc *rawConn) {
			rc.send(newSubmit("a", "b", "x"), 8)
			r := rc.expect(pdu.SubmitSMRespID, 0, 8)
			if id := fieldString(r, pdufield.MessageID); id != "id-1" {
				t.Errorf("message_id %q", id)
			}
		}},
		{"unknown command keeps session", true, func(rc *rawConn) {
			rc.sendBytes(unknown)
			rc.expect(pdu.GenericNACKID, StatusInvCmdID, 9)
			rc.sendBytes(cancelSM)
			rc.expect(pdu.GenericNACKID, StatusInvCmdID, 10)
			rc.send(pdu.NewEnquireLink(), 12)
			rc.expect(pdu.EnquireLinkRespID, 0, 12)
		}},
		{"undecodable body keeps session", true, func(rc *rawConn) {
			rc.sendBytes(tb)
			rc.expect(pdu.GenericNACKID, StatusInvCmdID, 11)
			rc.send(pdu.NewEnquireLink(), 12)
			rc.expect(pdu.EnquireLinkRespID, 0, 12)
		}},
		{"unsupported request answered", true, func(rc *rawConn) {
			rc.send(pdu.NewQuerySM(), 13) // fakeHandler returns nil
			rc.expect(pdu.QuerySMRespID, StatusInvCmdID, 13)
		}},
		{"unbind", true, func(rc *rawConn) {
			rc.send(pdu.NewUnbind(), 14)
			rc.expect(pdu.UnbindRespID, 0, 14)
			rc.expectClosed()
		}},
		{"command_length below header", true, func(rc *rawConn) {
			rc.sendBytes([]byte{0, 0, 0, 8, 0, 0, 0, 0x15, 0, 0, 0, 0, 0, 0, 0, 15})
			rc.expect(pdu.GenericNACKID, StatusInvCmdLen, 15)
			rc.expectClosed()
		}},
		{"command_length above max", true, func(rc *rawConn) {
			rc.sendBytes([]byte{0x7f, 0, 0, 0, 0, 0, 0, 4, 0, 0, 0, 0, 0, 0, 0, 16})
			rc.expect(pdu.GenericNACKID, StatusInvCmdLen, 16)
			rc.expectClosed()
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := &Server{Handler: &fakeHandler{}, MaxPDUSize: 8 << 10}
			addr := mustServe(t, srv)
			rc := dialRaw(t, addr)
			if tt.bind {
				rc.bind("esme", "secret")
			}
			tt.run(rc)
			// Whatever this connection did, the server still serves others.
			other := dialRaw(t, addr)
			other.bind("esme", "secret")
			other.send(pdu.NewEnquireLink(), 99)
			other.expect(pdu.EnquireLinkRespID, 0, 99)
		})
	}
}

func TestGarbageThenOthersServed(t *testing.T) {
	srv := &Server{Handler: &fakeHandler{}}
	addr := mustServe(t, srv)
	good := dialRaw(t, addr)
	good.bind("esme", "secret")
	bad := dialRaw(t, addr)
	bad.sendBytes(bytes.Repeat([]byte{0xff}, 64))
	bad.expect(pdu.GenericNACKID, StatusInvCmdLen, 0xffffffff)
	bad.expectClosed()
	good.send(newSubmit("a", "b", "still here"), 2)
	good.expect(pdu.SubmitSMRespID, 0, 2)
}

func TestLargePDUBeyondGoSMPPCap(t *testing.T) {
	got := make(chan []byte, 1)
	srv := &Server{Handler: &fakeHandler{handle: func(_ context.Context, _ *Session, p pdu.Body) pdu.Body {
		if f := p.TLVFields()[pdutlv.TagMessagePayload]; f != nil {
			got <- f.Bytes()
		}
		return pdu.NewSubmitSMResp()
	}}}
	addr := mustServe(t, srv)
	rc := dialRaw(t, addr)
	rc.bind("esme", "secret")
	payload := bytes.Repeat([]byte("x"), 6000)
	p := pdu.NewSubmitSM(pdutlv.Fields{pdutlv.TagMessagePayload: payload})
	p.Fields().Set(pdufield.DestinationAddr, "22333")
	rc.send(p, 2)
	rc.expect(pdu.SubmitSMRespID, 0, 2)
	if b := <-got; !bytes.Equal(b, payload) {
		t.Fatalf("message_payload of %d octets, want %d", len(b), len(payload))
	}
}

func TestHandlerPanicAnsweredWithSysErr(t *testing.T) {
	srv := &Server{Handler: &fakeHandler{handle: func(_ context.Context, _ *Session, p pdu.Body) pdu.Body {
		if fieldString(p, pdufield.DestinationAddr) == "boom" {
			panic("handler bug")
		}
		return pdu.NewSubmitSMResp()
	}}}
	addr := mustServe(t, srv)
	rc := dialRaw(t, addr)
	rc.bind("esme", "secret")
	rc.send(newSubmit("a", "boom", "x"), 2)
	rc.expect(pdu.SubmitSMRespID, StatusSysErr, 2)
	rc.send(newSubmit("a", "fine", "x"), 3)
	rc.expect(pdu.SubmitSMRespID, 0, 3)
}

func TestSendMatchesResponsesBySequence(t *testing.T) {
	bound := make(chan *Session, 1)
	srv := &Server{Handler: &fakeHandler{bound: func(s *Session) { bound <- s }}}
	addr := mustServe(t, srv)
	rc := dialRaw(t, addr)
	rc.bind("esme", "secret")
	s := <-bound

	type result struct {
		text string
		resp pdu.Body
		err  error
	}
	results := make(chan result, 2)
	for _, text := range []string{"one", "two"} {
		go func() {
			d := pdu.NewDeliverSM()
			d.Fields().Set(pdufield.ShortMessage, text)
			resp, err := s.Send(context.Background(), d)
			results <- result{text, resp, err}
		}()
	}
	// Read both deliver_sm, then answer them in reverse order, the second
	// with a temporary error.
	first, second := rc.read(), rc.read()
	status := map[string]uint32{}
	status[string(second.Fields()[pdufield.ShortMessage].Bytes())] = StatusXTAppn
	for _, p := range []pdu.Body{second, first} {
		r := pdu.NewDeliverSMResp()
		r.Header().Status = pdu.Status(status[string(p.Fields()[pdufield.ShortMessage].Bytes())])
		rc.send(r, p.Header().Seq)
	}
	for range 2 {
		r := <-results
		var st pdu.Status
		switch want := status[r.text]; {
		case want == 0 && r.err != nil:
			t.Errorf("%s: %v", r.text, r.err)
		case want != 0 && (!errors.As(r.err, &st) || uint32(st) != want || r.resp == nil):
			t.Errorf("%s: err %v, want status %#x with the response", r.text, r.err, want)
		}
	}
}

func TestEnquireLinkProbeClosesDeadPeer(t *testing.T) {
	unbound := make(chan *Session, 1)
	srv := &Server{
		Handler:     &fakeHandler{unbound: func(s *Session) { unbound <- s }},
		EnquireLink: 20 * time.Millisecond,
		RespTimeout: 50 * time.Millisecond,
	}
	addr := mustServe(t, srv)
	rc := dialRaw(t, addr)
	rc.bind("esme", "secret")
	p := rc.read() // the probe; deliberately left unanswered
	if p.Header().ID != pdu.EnquireLinkID {
		t.Fatalf("got %s, want enquire_link", p.Header().ID)
	}
	rc.expectClosed()
	if s := <-unbound; s.SystemID() != "esme" {
		t.Fatalf("unbound %q", s.SystemID())
	}
}

func TestCloseUnbindsPolitely(t *testing.T) {
	var mu sync.Mutex
	var events []string
	note := func(e string) { mu.Lock(); events = append(events, e); mu.Unlock() }
	srv := &Server{Handler: &fakeHandler{
		bound:   func(s *Session) { note("bound " + s.SystemID()) },
		unbound: func(s *Session) { note("unbound " + s.SystemID()) },
	}}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(l) }()
	rc := dialRaw(t, l.Addr().String())
	rc.bind("esme", "secret")

	closed := make(chan error, 1)
	go func() { closed <- srv.Close() }()
	u := rc.read()
	if u.Header().ID != pdu.UnbindID {
		t.Fatalf("got %s, want unbind", u.Header().ID)
	}
	rc.send(pdu.NewUnbindResp(), u.Header().Seq)
	rc.expectClosed()
	if err := <-closed; err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := <-served; !errors.Is(err, ErrServerClosed) {
		t.Fatalf("Serve: %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(events) != 2 || events[0] != "bound esme" || events[1] != "unbound esme" {
		t.Fatalf("events %q", events)
	}
	if _, err := net.Dial("tcp", l.Addr().String()); err == nil {
		t.Fatal("listener still accepts after Close")
	}
}

func TestWindowFullIsThrottledAndHandlersMaySend(t *testing.T) {
	release := make(chan struct{})
	srv := &Server{MaxInFlight: 1, Handler: &fakeHandler{handle: func(ctx context.Context, s *Session, p pdu.Body) pdu.Body {
		if fieldString(p, pdufield.DestinationAddr) == "wait" {
			<-release
		} else {
			// Answering needs a round trip to the peer first.
			d := pdu.NewDeliverSM()
			d.Fields().Set(pdufield.ShortMessage, "ping")
			if _, err := s.Send(ctx, d); err != nil {
				return nil
			}
		}
		return pdu.NewSubmitSMResp()
	}}}
	addr := mustServe(t, srv)
	rc := dialRaw(t, addr)
	rc.bind("esme", "secret")

	rc.send(newSubmit("a", "wait", "x"), 2)
	rc.send(newSubmit("a", "over", "x"), 3)
	rc.expect(pdu.SubmitSMRespID, StatusThrottled, 3)
	close(release)
	rc.expect(pdu.SubmitSMRespID, 0, 2)

	rc.send(newSubmit("a", "send", "x"), 4)
	d := rc.read()
	if d.Header().ID != pdu.DeliverSMID {
		t.Fatalf("got %s, want the handler's deliver_sm", d.Header().ID)
	}
	rc.send(pdu.NewDeliverSMResp(), d.Header().Seq)
	rc.expect(pdu.SubmitSMRespID, 0, 4)
}

func TestUnboundConnectionClosedAfterBindTimeout(t *testing.T) {
	srv := &Server{Handler: &fakeHandler{}, BindTimeout: 20 * time.Millisecond}
	addr := mustServe(t, srv)
	rc := dialRaw(t, addr)
	rc.send(pdu.NewEnquireLink(), 1) // refused requests do not extend the deadline
	rc.expect(pdu.EnquireLinkRespID, StatusInvBndSts, 1)
	rc.expectClosed()
}

// BenchmarkSubmitRoundTrip measures one submit_sm and its response over
// loopback TCP, one at a time, through framing, decoding and dispatch.
func BenchmarkSubmitRoundTrip(b *testing.B) {
	srv := &Server{Handler: &fakeHandler{}}
	addr := mustServe(b, srv)
	rc := dialRaw(b, addr)
	rc.c.SetDeadline(time.Time{})
	rc.bind("esme", "secret")
	var frame bytes.Buffer
	newSubmit("254700000001", "22333", "PAY 4411 150 inv-7").SerializeTo(&frame)
	raw := frame.Bytes()
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		binary.BigEndian.PutUint32(raw[12:16], uint32(i+2))
		rc.sendBytes(raw)
		if _, _, err := readFrame(rc.r, DefaultMaxPDUSize); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkSendDeliverSM measures Session.Send of a deliver_sm answered by a
// go-smpp transceiver over loopback TCP.
func BenchmarkSendDeliverSM(b *testing.B) {
	bound := make(chan *Session, 1)
	srv := &Server{Handler: &fakeHandler{bound: func(s *Session) { bound <- s }}}
	addr := mustServe(b, srv)
	trx := &smppcli.Transceiver{Addr: addr, User: "esme", Passwd: "secret", Handler: func(pdu.Body) {}}
	defer trx.Close()
	if st := <-trx.Bind(); st.Status() != smppcli.Connected {
		b.Fatal(st.Error())
	}
	s := <-bound
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		d := pdu.NewDeliverSM()
		d.Fields().Set(pdufield.SourceAddr, "254700000001")
		d.Fields().Set(pdufield.ShortMessage, "BAL")
		if _, err := s.Send(context.Background(), d); err != nil {
			b.Fatal(err)
		}
	}
}
