package smpp

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fiorix/go-smpp/smpp/pdu"
	"github.com/fiorix/go-smpp/smpp/pdu/pdufield"
)

// Command statuses this package sends or reacts to (SMPP 3.4 section 5.1.3).
const (
	StatusOK           uint32 = 0x00
	StatusInvMsgLen    uint32 = 0x01 // ESME_RINVMSGLEN
	StatusInvCmdID     uint32 = 0x03 // ESME_RINVCMDID
	StatusSysErr       uint32 = 0x08 // ESME_RSYSERR
	StatusInvDstAdr    uint32 = 0x0B // ESME_RINVDSTADR
	StatusInvPaswd     uint32 = 0x0E // ESME_RINVPASWD
	StatusMsgQFul      uint32 = 0x14 // ESME_RMSGQFUL
	StatusThrottled    uint32 = 0x58 // ESME_RTHROTTLED
	StatusRxTempAppn   uint32 = 0x64 // ESME_RX_T_APPN: temporary, the SMSC redelivers
	StatusRxPermAppn   uint32 = 0x65 // ESME_RX_P_APPN: permanent, the SMSC gives up
	respBit            pdu.ID = 0x80000000
	maxFrame                  = 64 << 10 // a larger command_length is a broken peer
	interfaceVersion34        = 0x34
)

// session is one bound SMPP connection to an SMSC. It is built directly on go-smpp's pdu
// package: responses are matched to requests by sequence number AND command id, deliver_sm
// is handed to onDeliver without blocking the reader, and deliver_sm_resp is written only
// when the link says so (see Link).
type session struct {
	bind        string // "transceiver", "transmitter" or "receiver"
	conn        net.Conn
	br          *bufio.Reader
	respTimeout time.Duration
	onDeliver   func(s *session, p pdu.Body, esmClass uint8)

	wmu sync.Mutex // guards bw and writes to conn
	bw  *bufio.Writer
	// writers counts the writes waiting for wmu or holding it: the last of a burst
	// flushes for all of them, one system call instead of one per PDU.
	writers atomic.Int32

	seq atomic.Uint32

	mu      sync.Mutex // guards pending and err
	pending map[uint32]*call
	err     error // why the session ended; set once

	done chan struct{} // closed when the session is over
}

// call is a request waiting for its response.
type call struct {
	id pdu.ID
	ch chan pdu.Body // buffered 1
	// late takes a response that arrives after the requester stopped waiting; set under
	// session.mu, nil while the requester waits.
	late func(pdu.Body)
}

// dialSession connects to addr and binds as kind ("transceiver", "transmitter" or
// "receiver"). The returned session reads and keeps itself alive with enquire_link
// every enquireLink until it ends.
func dialSession(ctx context.Context, cfg LinkConfig, kind string, onDeliver func(*session, pdu.Body, uint8)) (*session, error) {
	d := net.Dialer{Timeout: cfg.RespTimeout}
	conn, err := d.DialContext(ctx, "tcp", cfg.Address)
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", cfg.Address, err)
	}
	s := &session{
		bind:        kind,
		conn:        conn,
		br:          bufio.NewReader(conn),
		bw:          bufio.NewWriter(conn),
		respTimeout: cfg.RespTimeout,
		onDeliver:   onDeliver,
		pending:     make(map[uint32]*call),
		done:        make(chan struct{}),
	}
	// Close cancels a bind that the SMSC is slow to answer.
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	err = s.bindAs(ctx, kind, cfg)
	if !stop() {
		err = errors.Join(ctx.Err(), err)
	}
	if err != nil {
		conn.Close()
		return nil, err
	}
	go s.readLoop()
	go s.keepAlive(cfg.EnquireLink)
	return s, nil
}

// bindAs sends the bind and reads its response before the read loop starts: nothing but
// the bind response may arrive before it.
func (s *session) bindAs(ctx context.Context, kind string, cfg LinkConfig) error {
	var p pdu.Body
	switch kind {
	case "transceiver":
		p = pdu.NewBindTransceiver()
	case "transmitter":
		p = pdu.NewBindTransmitter()
	default:
		p = pdu.NewBindReceiver()
	}
	f := p.Fields()
	f.Set(pdufield.SystemID, cfg.SystemID)
	f.Set(pdufield.Password, cfg.Password)
	f.Set(pdufield.SystemType, cfg.SystemType)
	f.Set(pdufield.InterfaceVersion, uint8(interfaceVersion34))
	p.Header().Seq = s.nextSeq()
	deadline := time.Now().Add(cfg.RespTimeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	s.conn.SetDeadline(deadline)
	defer s.conn.SetDeadline(time.Time{})
	if err := s.write(p); err != nil {
		return fmt.Errorf("send bind_%s: %w", kind, err)
	}
	frame, err := readFrame(s.br)
	if err != nil {
		return fmt.Errorf("read bind_%s_resp: %w", kind, err)
	}
	hdr, _ := pdu.DecodeHeader(bytes.NewReader(frame))
	if hdr.ID != p.Header().ID|respBit && hdr.ID != pdu.GenericNACKID {
		return fmt.Errorf("bind_%s answered with %s (0x%08x)", kind, hdr.ID, uint32(hdr.ID))
	}
	if hdr.Status != 0 {
		return &StatusError{Command: "bind_" + kind, Status: uint32(hdr.Status)}
	}
	return nil
}

// readFrame reads one whole PDU (header included) off r.
func readFrame(r io.Reader) ([]byte, error) {
	var lenBuf [4]byte
	if _, err := io.ReadFull(r, lenBuf[:]); err != nil {
		return nil, err
	}
	n := binary.BigEndian.Uint32(lenBuf[:])
	if n < pdu.HeaderLen || n > maxFrame {
		return nil, fmt.Errorf("smpp: command_length %d out of range", n)
	}
	frame := make([]byte, n)
	copy(frame, lenBuf[:])
	if _, err := io.ReadFull(r, frame[4:]); err != nil {
		return nil, err
	}
	return frame, nil
}

// nextSeq returns the next sequence number, 1 to 0x7FFFFFFF.
func (s *session) nextSeq() uint32 {
	for {
		n := s.seq.Add(1) & 0x7FFFFFFF
		if n != 0 {
			return n
		}
	}
}

// write serialises p onto the connection; a peer that does not read within the response
// timeout fails the write.
func (s *session) write(p pdu.Body) error {
	var b bytes.Buffer
	if err := p.SerializeTo(&b); err != nil {
		return err
	}
	s.writers.Add(1)
	s.wmu.Lock()
	defer s.wmu.Unlock()
	last := s.writers.Add(-1) == 0
	s.conn.SetWriteDeadline(time.Now().Add(s.respTimeout))
	if _, err := s.bw.Write(b.Bytes()); err != nil {
		return err
	}
	if !last {
		return nil // a write waiting for wmu flushes this PDU with its own
	}
	return s.bw.Flush()
}

// respond answers the request seq of type id with status.
func (s *session) respond(id pdu.ID, seq, status uint32) {
	var p pdu.Body
	switch id {
	case pdu.DeliverSMID:
		p = pdu.NewDeliverSMRespSeq(seq)
	case pdu.EnquireLinkID:
		p = pdu.NewEnquireLinkRespSeq(seq)
	case pdu.UnbindID:
		p = pdu.NewUnbindResp()
	default:
		p = pdu.NewGenericNACK()
	}
	p.Header().Seq = seq
	p.Header().Status = pdu.Status(status)
	if err := s.write(p); err != nil {
		s.fail(fmt.Errorf("write %s: %w", p.Header().ID, err))
	}
}

// request sends p and waits for its response.
func (s *session) request(ctx context.Context, p pdu.Body) (pdu.Body, error) {
	return s.requestLate(ctx, p, nil, 0)
}

// requestLate is request that, when late is not nil and the response timeout passes,
// keeps the request registered for window more and hands a response arriving in that
// time to late (on its own goroutine). SMPP has no way to ask whether a request whose
// answer was lost took effect; a late answer is the only news there can be.
func (s *session) requestLate(ctx context.Context, p pdu.Body, late func(pdu.Body), window time.Duration) (pdu.Body, error) {
	seq := s.nextSeq()
	p.Header().Seq = seq
	c := &call{id: p.Header().ID, ch: make(chan pdu.Body, 1)}
	s.mu.Lock()
	if s.err != nil {
		s.mu.Unlock()
		return nil, fmt.Errorf("%w: %v", ErrNotBound, s.err)
	}
	s.pending[seq] = c
	s.mu.Unlock()
	keep := false
	defer func() {
		if !keep {
			s.forget(seq, c)
		}
	}()
	if err := s.write(p); err != nil {
		s.fail(fmt.Errorf("write %s: %w", c.id, err))
		return nil, fmt.Errorf("%w: %v", ErrConnLost, err)
	}
	timer := time.NewTimer(s.respTimeout)
	defer timer.Stop()
	select {
	case resp := <-c.ch:
		return resp, nil
	case <-s.done:
		return nil, ErrConnLost
	case <-timer.C:
		if late == nil {
			return nil, ErrTimeout
		}
		s.mu.Lock()
		select {
		case resp := <-c.ch: // it came just now
			s.mu.Unlock()
			return resp, nil
		default:
		}
		c.late = late
		s.mu.Unlock()
		keep = true
		time.AfterFunc(window, func() { s.forget(seq, c) })
		return nil, ErrTimeout
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// forget removes call c of sequence number seq, unless the number went to another call.
func (s *session) forget(seq uint32, c *call) {
	s.mu.Lock()
	if s.pending[seq] == c {
		delete(s.pending, seq)
	}
	s.mu.Unlock()
}

// readLoop reads PDUs until the connection ends. It never blocks on a handler:
// deliver_sm goes to onDeliver, which answers later.
func (s *session) readLoop() {
	for {
		frame, err := readFrame(s.br)
		if err != nil {
			s.fail(fmt.Errorf("read: %w", err))
			return
		}
		hdr, _ := pdu.DecodeHeader(bytes.NewReader(frame))
		if hdr.ID&respBit != 0 {
			s.resolve(hdr, frame)
			continue
		}
		switch hdr.ID {
		case pdu.EnquireLinkID:
			s.respond(hdr.ID, hdr.Seq, StatusOK)
		case pdu.UnbindID:
			s.respond(hdr.ID, hdr.Seq, StatusOK)
			s.fail(ErrUnbound)
			return
		case pdu.DeliverSMID:
			p, esm, err := decodeDeliverSM(frame)
			if err != nil {
				// The SMSC would redeliver a temporary error forever; this one can
				// never be read, so refuse it for good.
				s.respond(hdr.ID, hdr.Seq, StatusRxPermAppn)
				continue
			}
			s.onDeliver(s, p, esm)
		case pdu.AlertNotificationID:
			// No response exists for alert_notification; we have nothing to retry.
		default:
			s.respond(pdu.GenericNACKID, hdr.Seq, StatusInvCmdID)
		}
	}
}

// decodeDeliverSM decodes a deliver_sm frame with go-smpp's pdu package and returns its
// original esm_class. The UDHI bit is cleared before decoding because go-smpp splits the
// user data header off itself and gets it wrong: it reads a header out of the TLVs when
// short_message is empty (UDH in message_payload) and silently truncates on a malformed
// header. Decode in codec.go parses the header with bounds checks instead.
func decodeDeliverSM(frame []byte) (pdu.Body, uint8, error) {
	off, ok := esmClassOffset(frame[pdu.HeaderLen:])
	if !ok {
		return nil, 0, errors.New("smpp: deliver_sm too short")
	}
	off += pdu.HeaderLen
	esm := frame[off]
	frame[off] = esm &^ ESMClassUDHI
	p, err := pdu.Decode(bytes.NewReader(frame))
	if err != nil {
		return nil, 0, err
	}
	if _, ok := p.Fields()[pdufield.ShortMessage]; !ok {
		return nil, 0, errors.New("smpp: deliver_sm without short_message")
	}
	return p, esm, nil
}

// esmClassOffset finds esm_class in a deliver_sm or submit_sm body: after service_type,
// source ton/npi/addr and destination ton/npi/addr.
func esmClassOffset(body []byte) (int, bool) {
	i := 0
	skipCString := func() bool {
		n := bytes.IndexByte(body[i:], 0)
		if n < 0 {
			return false
		}
		i += n + 1
		return true
	}
	if !skipCString() {
		return 0, false
	}
	i += 2
	if i > len(body) || !skipCString() {
		return 0, false
	}
	i += 2
	if i > len(body) || !skipCString() {
		return 0, false
	}
	if i >= len(body) {
		return 0, false
	}
	return i, true
}

// resolve hands a response to the request waiting for it, or to its late hook. A
// response whose command id does not answer the request's is dropped: the request then
// times out.
func (s *session) resolve(hdr *pdu.Header, frame []byte) {
	s.mu.Lock()
	c := s.pending[hdr.Seq]
	s.mu.Unlock()
	if c == nil || (hdr.ID != c.id|respBit && hdr.ID != pdu.GenericNACKID) {
		return
	}
	p, err := pdu.Decode(bytes.NewReader(frame))
	if err != nil {
		// Keep the status even when the body cannot be decoded (some SMSCs send
		// no message_id on an error response).
		p = pdu.NewGenericNACK()
		*p.Header() = *hdr
	}
	// The requester may give up at any moment: decide under the lock whether it still
	// waits or its late hook takes the response.
	s.mu.Lock()
	if s.pending[hdr.Seq] != c {
		s.mu.Unlock()
		return
	}
	late := c.late
	if late != nil {
		delete(s.pending, hdr.Seq)
	} else {
		select {
		case c.ch <- p:
		default:
		}
	}
	s.mu.Unlock()
	if late != nil {
		go late(p)
	}
}

// keepAlive sends enquire_link every interval; a peer that does not answer within the
// response timeout ends the session, and the link rebinds.
func (s *session) keepAlive(interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-s.done:
			return
		case <-t.C:
			_, err := s.request(context.Background(), pdu.NewEnquireLink())
			if err != nil {
				s.fail(fmt.Errorf("enquire_link: %w", err))
				return
			}
		}
	}
}

// unbind ends the session politely: unbind, wait for unbind_resp, close.
func (s *session) unbind() {
	ctx, cancel := context.WithTimeout(context.Background(), s.respTimeout)
	defer cancel()
	s.request(ctx, pdu.NewUnbind())
	s.fail(ErrClosed)
}

// fail ends the session with err (the first reason wins) and closes the connection.
func (s *session) fail(err error) {
	s.mu.Lock()
	if s.err != nil {
		s.mu.Unlock()
		return
	}
	s.err = err
	close(s.done)
	s.mu.Unlock()
	s.conn.Close()
}

// reason returns why the session ended, or nil while it runs.
func (s *session) reason() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}
