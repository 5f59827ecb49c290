package smpp

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/fiorix/go-smpp/smpp/pdu"
	"github.com/fiorix/go-smpp/smpp/pdu/pdufield"
	"github.com/fiorix/go-smpp/smpp/pdu/pdutlv"
	"github.com/rs/zerolog"
)

// testSMSC is a minimal SMSC for the link tests, on go-smpp's pdu package over real TCP.
// It authenticates binds, records submit_sm and answers them, answers enquire_link and
// unbind, and delivers deliver_sm to a bound receiver, returning the ESME's status.
type testSMSC struct {
	t  testing.TB
	ln net.Listener

	mu           sync.Mutex // guards the fields below
	password     string
	binds        []bindAttempt
	unbinds      int
	submits      []submitted
	conns        map[*smscConn]struct{}
	mute         bool               // answer nothing, like a hung SMSC
	ignored      int                // PDUs left unanswered while mute
	submitStatus func(n int) uint32 // status for the n-th submit_sm (from 0); nil: OK
	hold         chan struct{}      // while non-nil, submit_sm responses wait for it to close
	outstanding  int                // submit_sm received and not answered
	maxOut       int                // the most outstanding at once
	onSubmit     func(c *smscConn, seq uint32)
	changed      chan struct{} // closed and replaced on every event
	nextID       int
}

type bindAttempt struct {
	id pdu.ID
	ok bool
}

type submitted struct {
	src, dst                       string
	dataCoding, esmClass, register uint8
	sm                             []byte
	tlvs                           map[pdutlv.Tag][]byte
}

type smscConn struct {
	srv *testSMSC
	c   net.Conn
	wmu sync.Mutex

	mu      sync.Mutex // guards bound, pending, seq
	bound   pdu.ID
	pending map[uint32]chan uint32
	seq     uint32
}

func newTestSMSC(t testing.TB, password string) *testSMSC {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &testSMSC{t: t, ln: ln, password: password, conns: map[*smscConn]struct{}{}, changed: make(chan struct{})}
	go s.accept()
	t.Cleanup(func() {
		ln.Close()
		s.dropAll()
	})
	return s
}

func (s *testSMSC) addr() string { return s.ln.Addr().String() }

// event wakes whoever waits for a change; s.mu must be held.
func (s *testSMSC) eventLocked() {
	close(s.changed)
	s.changed = make(chan struct{})
}

// waitFor waits until cond (called with s.mu held) is true.
func (s *testSMSC) waitFor(what string, cond func() bool) {
	s.t.Helper()
	deadline := time.NewTimer(10 * time.Second)
	defer deadline.Stop()
	for {
		s.mu.Lock()
		ok, ch := cond(), s.changed
		s.mu.Unlock()
		if ok {
			return
		}
		select {
		case <-ch:
		case <-deadline.C:
			s.t.Fatalf("test SMSC: gave up waiting for %s", what)
		}
	}
}

func (s *testSMSC) accept() {
	for {
		c, err := s.ln.Accept()
		if err != nil {
			return
		}
		sc := &smscConn{srv: s, c: c, pending: map[uint32]chan uint32{}}
		s.mu.Lock()
		s.conns[sc] = struct{}{}
		s.eventLocked()
		s.mu.Unlock()
		go sc.serve()
	}
}

// dropAll closes every connection, as a crashing SMSC would.
func (s *testSMSC) dropAll() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for c := range s.conns {
		c.c.Close()
	}
}

func (s *testSMSC) setMute(m bool) {
	s.mu.Lock()
	s.mute = m
	s.mu.Unlock()
}

func (s *testSMSC) submitted() []submitted {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]submitted(nil), s.submits...)
}

func (c *smscConn) write(p pdu.Body) error {
	var b bytes.Buffer
	if err := p.SerializeTo(&b); err != nil {
		return err
	}
	c.wmu.Lock()
	defer c.wmu.Unlock()
	_, err := c.c.Write(b.Bytes())
	return err
}

func (c *smscConn) serve() {
	s := c.srv
	defer func() {
		c.c.Close()
		s.mu.Lock()
		delete(s.conns, c)
		s.eventLocked()
		s.mu.Unlock()
		c.mu.Lock()
		for _, ch := range c.pending {
			close(ch)
		}
		c.pending = map[uint32]chan uint32{}
		c.mu.Unlock()
	}()
	br := bufio.NewReader(c.c)
	for {
		p, err := pdu.Decode(br)
		if err != nil {
			return
		}
		h := p.Header()
		s.mu.Lock()
		mute := s.mute
		if mute {
			s.ignored++
			s.eventLocked()
		}
		s.mu.Unlock()
		if mute {
			continue
		}
		switch h.ID {
		case pdu.BindTransceiverID, pdu.BindTransmitterID, pdu.BindReceiverID:
			var resp pdu.Body
			switch h.ID {
			case pdu.BindTransceiverID:
				resp = pdu.NewBindTransceiverResp()
			case pdu.BindTransmitterID:
				resp = pdu.NewBindTransmitterResp()
			default:
				resp = pdu.NewBindReceiverResp()
			}
			resp.Header().Seq = h.Seq
			s.mu.Lock()
			ok := p.Fields()[pdufield.Password].String() == s.password
			s.binds = append(s.binds, bindAttempt{id: h.ID, ok: ok})
			s.mu.Unlock()
			if ok {
				resp.Fields().Set(pdufield.SystemID, "testsmsc")
				c.mu.Lock()
				c.bound = h.ID
				c.mu.Unlock()
			} else {
				resp.Header().Status = pdu.Status(StatusInvPaswd)
			}
			c.write(resp)
			s.mu.Lock()
			s.eventLocked()
			s.mu.Unlock()
		case pdu.SubmitSMID:
			c.submit(p)
		case pdu.EnquireLinkID:
			resp := pdu.NewEnquireLinkRespSeq(h.Seq)
			c.write(resp)
		case pdu.UnbindID:
			resp := pdu.NewUnbindResp()
			resp.Header().Seq = h.Seq
			c.write(resp)
			s.mu.Lock()
			s.unbinds++
			s.eventLocked()
			s.mu.Unlock()
			return
		case pdu.DeliverSMRespID, pdu.GenericNACKID:
			c.mu.Lock()
			ch := c.pending[h.Seq]
			delete(c.pending, h.Seq)
			c.mu.Unlock()
			if ch != nil {
				ch <- uint32(h.Status)
			}
		}
	}
}

func (c *smscConn) submit(p pdu.Body) {
	s := c.srv
	f := p.Fields()
	sub := submitted{
		src:        f[pdufield.SourceAddr].String(),
		dst:        f[pdufield.DestinationAddr].String(),
		dataCoding: f[pdufield.DataCoding].Bytes()[0],
		esmClass:   f[pdufield.ESMClass].Bytes()[0],
		register:   f[pdufield.RegisteredDelivery].Bytes()[0],
		sm:         append([]byte(nil), f[pdufield.ShortMessage].Bytes()...),
		tlvs:       map[pdutlv.Tag][]byte{},
	}
	for tag, v := range p.TLVFields() {
		sub.tlvs[tag] = v.Bytes()
	}
	seq := p.Header().Seq
	s.mu.Lock()
	n := len(s.submits)
	s.submits = append(s.submits, sub)
	status := uint32(0)
	if s.submitStatus != nil {
		status = s.submitStatus(n)
	}
	s.nextID++
	id := fmt.Sprintf("msg-%d", s.nextID)
	hold, hook := s.hold, s.onSubmit
	s.outstanding++
	s.maxOut = max(s.maxOut, s.outstanding)
	s.eventLocked()
	s.mu.Unlock()
	go func() {
		if hook != nil {
			hook(c, seq)
		}
		if hold != nil {
			<-hold
		}
		resp := pdu.NewSubmitSMResp()
		resp.Header().Seq = seq
		resp.Header().Status = pdu.Status(status)
		if status == 0 {
			resp.Fields().Set(pdufield.MessageID, id)
		}
		s.mu.Lock()
		s.outstanding--
		s.mu.Unlock()
		c.write(resp)
	}()
}

// deliver sends p to the ESME on a session bound to receive and returns the command
// status of its deliver_sm_resp. seq 0 picks a fresh sequence number.
func (s *testSMSC) deliver(p pdu.Body, seq uint32) (uint32, error) {
	s.mu.Lock()
	var c *smscConn
	for sc := range s.conns {
		sc.mu.Lock()
		b := sc.bound
		sc.mu.Unlock()
		if b == pdu.BindTransceiverID || b == pdu.BindReceiverID {
			c = sc
		}
	}
	s.mu.Unlock()
	if c == nil {
		return 0, errors.New("test SMSC: no receiver bound")
	}
	return c.deliver(p, seq)
}

func (c *smscConn) deliver(p pdu.Body, seq uint32) (uint32, error) {
	ch := make(chan uint32, 1)
	c.mu.Lock()
	if seq == 0 {
		c.seq++
		seq = 0x40000000 + c.seq
	}
	c.pending[seq] = ch
	c.mu.Unlock()
	p.Header().Seq = seq
	if err := c.write(p); err != nil {
		return 0, err
	}
	select {
	case st, ok := <-ch:
		if !ok {
			return 0, io.EOF
		}
		return st, nil
	case <-time.After(10 * time.Second):
		return 0, errors.New("test SMSC: no deliver_sm_resp")
	}
}

// mustDeliver delivers and returns the status, failing the test on a transport error.
func (s *testSMSC) mustDeliver(t *testing.T, p pdu.Body) uint32 {
	t.Helper()
	st, err := s.deliver(p, 0)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// deliverSM builds a deliver_sm. It is made as a submit_sm with the deliver_sm command
// id (the mandatory fields are the same) because go-smpp's NewDeliverSM serialises a stray
// UDH length octet before short_message.
func deliverSM(from, to string, coding, esm uint8, sm []byte, tlvs pdutlv.Fields) pdu.Body {
	p := pdu.NewSubmitSM(tlvs)
	p.Header().ID = pdu.DeliverSMID
	f := p.Fields()
	f.Set(pdufield.SourceAddrTON, uint8(1))
	f.Set(pdufield.SourceAddrNPI, uint8(1))
	f.Set(pdufield.SourceAddr, from)
	f.Set(pdufield.DestinationAddr, to)
	f.Set(pdufield.ESMClass, esm)
	f.Set(pdufield.DataCoding, coding)
	f.Set(pdufield.ShortMessage, sm)
	return p
}

// recorder is a Handler that records what it gets and fails on demand.
type recorder struct {
	mos      chan MO
	receipts chan Receipt

	mu    sync.Mutex // guards fails
	fails int        // how many next calls fail
}

var _ Handler = (*recorder)(nil)

func newRecorder() *recorder {
	return &recorder{mos: make(chan MO, 100), receipts: make(chan Receipt, 100)}
}

func (r *recorder) failNext(n int) {
	r.mu.Lock()
	r.fails = n
	r.mu.Unlock()
}

func (r *recorder) shouldFail() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.fails > 0 {
		r.fails--
		return true
	}
	return false
}

func (r *recorder) HandleMO(ctx context.Context, m MO) error {
	if r.shouldFail() {
		return errors.New("database unavailable")
	}
	r.mos <- m
	return nil
}

func (r *recorder) HandleReceipt(ctx context.Context, rc Receipt) error {
	if r.shouldFail() {
		return errors.New("database unavailable")
	}
	r.receipts <- rc
	return nil
}

// takeMO returns the one MO recorded and fails if there is not exactly one.
func (r *recorder) takeMO(t *testing.T) MO {
	t.Helper()
	if n := len(r.mos); n != 1 {
		t.Fatalf("handler got %d MO, want 1", n)
	}
	return <-r.mos
}

// startLink starts a link to srv with short timings and registers its Close.
func startLink(t *testing.T, srv *testSMSC, cfg LinkConfig, h Handler) *Link {
	t.Helper()
	if cfg.Name == "" {
		cfg.Name = "test"
	}
	cfg.Address = srv.addr()
	if cfg.SystemID == "" {
		cfg.SystemID = "payswitch"
	}
	if cfg.EnquireLink == 0 {
		cfg.EnquireLink = time.Minute
	}
	if cfg.RespTimeout == 0 {
		cfg.RespTimeout = 5 * time.Second
	}
	l := NewLink(cfg, h, zerolog.Nop(), nil)
	l.minBackoff, l.maxBackoff = 5*time.Millisecond, 40*time.Millisecond
	l.throttlePause = 5 * time.Millisecond
	l.Start(context.Background())
	t.Cleanup(func() { l.Close() })
	return l
}

// waitState waits until the link reports want.
func waitState(t *testing.T, l *Link, want string) {
	t.Helper()
	deadline := time.NewTimer(10 * time.Second)
	defer deadline.Stop()
	for {
		st, ch := l.stateChange()
		if st == want {
			return
		}
		select {
		case <-ch:
		case <-deadline.C:
			t.Fatalf("link state %q, gave up waiting for %q", st, want)
		}
	}
}
