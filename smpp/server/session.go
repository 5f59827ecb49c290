package server

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"runtime/debug"
	"sync"
	"time"

	"github.com/fiorix/go-smpp/smpp/pdu"
	"github.com/fiorix/go-smpp/smpp/pdu/pdufield"
	"github.com/rs/zerolog"
)

// Session is one TCP connection to the server, from accept to close. It is
// usable by the application once bound (Handler.Bound).
type Session struct {
	srv    *Server
	conn   net.Conn
	remote string
	log    zerolog.Logger // with the remote address; immutable

	ctx    context.Context // ends when the session does
	cancel context.CancelFunc

	wmu sync.Mutex // serializes writes: one PDU at a time on the wire

	mu       sync.Mutex // guards the fields below
	bound    bool
	systemID string
	bindType string
	boundAt  time.Time                // when the bind was accepted, for the log line of its end
	lastSeq  uint32                   // last sequence number given to Send
	pending  map[uint32]chan pdu.Body // Send's waiters by sequence number

	inflight sync.WaitGroup // HandlePDU goroutines
	slots    chan struct{}  // bounds inflight to MaxInFlight
}

func newSession(srv *Server, c net.Conn) *Session {
	ctx, cancel := context.WithCancel(context.Background())
	remote := c.RemoteAddr().String()
	return &Session{
		srv:     srv,
		conn:    c,
		remote:  remote,
		log:     srv.Log.With().Str("remote", remote).Logger(),
		ctx:     ctx,
		cancel:  cancel,
		pending: make(map[uint32]chan pdu.Body),
		slots:   make(chan struct{}, srv.maxInFlight()),
	}
}

// SystemID is the system_id the peer bound with ("" before bind).
func (s *Session) SystemID() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.systemID
}

// BindType is "transceiver", "transmitter" or "receiver" ("" before bind).
func (s *Session) BindType() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.bindType
}

// RemoteAddr is the peer's address.
func (s *Session) RemoteAddr() string { return s.remote }

// CanReceive reports whether the session may be sent deliver_sm: it is bound
// as a receiver or a transceiver.
func (s *Session) CanReceive() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.bound && (s.bindType == BindReceiver || s.bindType == BindTransceiver)
}

// Done is closed when the session has ended.
func (s *Session) Done() <-chan struct{} { return s.ctx.Done() }

func (s *Session) isBound() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.bound
}

// Send sends the request p (deliver_sm, enquire_link, unbind...) to the
// peer and waits for the response with the same sequence number, which it
// assigns to p. It returns the response; when the peer answered with a
// non-zero command_status it also returns that status as a pdu.Status error
// (use errors.As). It fails with ErrNotBound, ErrCannotReceive,
// ErrSessionClosed, ErrRespTimeout or ctx's error.
func (s *Session) Send(ctx context.Context, p pdu.Body) (pdu.Body, error) {
	s.mu.Lock()
	switch {
	case s.ctx.Err() != nil:
		s.mu.Unlock()
		return nil, ErrSessionClosed
	case !s.bound:
		s.mu.Unlock()
		return nil, ErrNotBound
	case p.Header().ID == pdu.DeliverSMID && s.bindType == BindTransmitter:
		s.mu.Unlock()
		return nil, ErrCannotReceive
	}
	seq := s.nextSeqLocked()
	ch := make(chan pdu.Body, 1)
	s.pending[seq] = ch
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.pending, seq)
		s.mu.Unlock()
	}()

	p.Header().Seq = seq
	if err := s.write(p); err != nil {
		return nil, err
	}
	timer := time.NewTimer(s.srv.respTimeout())
	defer timer.Stop()
	select {
	case resp := <-ch:
		if st := resp.Header().Status; st != 0 {
			return resp, st
		}
		return resp, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-s.ctx.Done():
		return nil, ErrSessionClosed
	case <-timer.C:
		return nil, fmt.Errorf("%w: %s seq %d", ErrRespTimeout, p.Header().ID, seq)
	}
}

// nextSeqLocked returns the next sequence number, in 1..0x7FFFFFFF as SMPP
// requires, skipping any still awaiting a response. s.mu must be held.
func (s *Session) nextSeqLocked() uint32 {
	for {
		s.lastSeq++
		if s.lastSeq > 0x7FFFFFFF {
			s.lastSeq = 1
		}
		if _, busy := s.pending[s.lastSeq]; !busy {
			return s.lastSeq
		}
	}
}

// Unbind sends unbind and waits for unbind_resp (or ctx, or RespTimeout);
// the connection is closed in any case.
func (s *Session) Unbind(ctx context.Context) error {
	_, err := s.Send(ctx, pdu.NewUnbind())
	s.Close()
	return err
}

// Close ends the session abruptly by closing its connection; Unbound follows
// once its handlers have returned.
func (s *Session) Close() error {
	err := s.conn.Close()
	if errors.Is(err, net.ErrClosed) {
		return nil
	}
	return err
}

// write serializes p and writes it whole, one PDU at a time.
func (s *Session) write(p pdu.Body) error {
	b, err := encodeFrame(p, s.srv.maxPDUSize())
	if err != nil {
		return err
	}
	s.wmu.Lock()
	defer s.wmu.Unlock()
	s.conn.SetWriteDeadline(time.Now().Add(s.srv.respTimeout()))
	if _, err := s.conn.Write(b); err != nil {
		// A half-written PDU breaks framing for the peer: end the session.
		s.conn.Close()
		return fmt.Errorf("server: write %s: %w", p.Header().ID, err)
	}
	return nil
}

// reply writes resp as the answer to the request header req.
func (s *Session) reply(req frameHeader, resp pdu.Body) {
	resp.Header().Seq = req.Seq
	if err := s.write(resp); err != nil {
		s.log.Debug().Err(err).Msg("smpp server: reply not written")
	}
}

// serve runs the session from accept to close.
func (s *Session) serve() {
	defer s.srv.untrack(s)
	defer s.end()
	defer func() {
		if r := recover(); r != nil {
			s.log.Error().Interface("panic", r).Bytes("stack", debug.Stack()).Msg("smpp server: session panic")
		}
	}()
	s.log.Debug().Msg("smpp server: connection accepted")
	s.logEnd(s.readLoop())
}

// logEnd logs how the session ended, before Unbound runs. The end of a bound session is
// logged at info like its bind, with how long it lasted: an operator looking for an
// aggregator's missing traffic finds when and how its connection went away. err is
// readLoop's.
func (s *Session) logEnd(err error) {
	s.mu.Lock()
	bound, systemID, bindType, boundAt := s.bound, s.systemID, s.bindType, s.boundAt
	s.mu.Unlock()
	if !bound {
		switch {
		case err == nil, errors.Is(err, io.EOF), errors.Is(err, net.ErrClosed):
			s.log.Debug().Msg("smpp server: connection closed")
		default:
			s.log.Info().Err(err).Msg("smpp server: connection ended before a bind")
		}
		return
	}
	e := s.log.Info().Str("system_id", systemID).Str("bind", bindType).
		Dur("bound_for", time.Since(boundAt).Round(time.Millisecond))
	switch {
	case err == nil:
		e.Msg("smpp server: unbound")
	case errors.Is(err, net.ErrClosed): // closed on this side: Close, a failed probe or write
		e.Msg("smpp server: session closed")
	case errors.Is(err, io.EOF):
		e.Msg("smpp server: connection dropped by the peer without unbind")
	default:
		e.Err(err).Msg("smpp server: connection dropped")
	}
}

// end tears the session down: wakes Send's waiters, closes the connection,
// waits for in-flight handlers and tells the handler.
func (s *Session) end() {
	s.cancel()
	s.conn.Close()
	s.inflight.Wait()
	s.mu.Lock()
	wasBound := s.bound
	s.bound = false
	s.mu.Unlock()
	if wasBound {
		s.callHandler("Unbound", func() { s.srv.Handler.Unbound(s) })
	}
}

// callHandler runs fn, turning a panic into a log line so that one bad
// handler call cannot take the process down.
func (s *Session) callHandler(name string, fn func()) (ok bool) {
	defer func() {
		if r := recover(); r != nil {
			s.log.Error().Interface("panic", r).Str("handler", name).Bytes("stack", debug.Stack()).Msg("smpp server: handler panic")
			ok = false
		}
	}()
	fn()
	return true
}

// readLoop reads and dispatches PDUs until the connection fails, the peer
// unbinds, or framing is lost. A nil error means a clean unbind.
func (s *Session) readLoop() error {
	r := bufio.NewReader(s.conn)
	max := s.srv.maxPDUSize()
	// The bind deadline counts from accept: requests refused before bind
	// do not extend it.
	bindBy := time.Now().Add(s.srv.bindTimeout())
	for {
		if s.isBound() {
			var dl time.Time
			if d := s.srv.IdleTimeout; d > 0 {
				dl = time.Now().Add(d)
			}
			s.conn.SetReadDeadline(dl)
		} else {
			s.conn.SetReadDeadline(bindBy)
		}
		h, buf, err := readFrame(r, max)
		if err != nil {
			var lenErr *errFrameLength
			if errors.As(err, &lenErr) {
				// Framing is lost: say why, then hang up.
				s.reply(h, genericNack(h.Seq, StatusInvCmdLen))
			}
			return err
		}
		p, err := decodeFrame(buf)
		if err != nil {
			s.log.Debug().Err(err).Uint32("command_id", uint32(h.ID)).Msg("smpp server: undecodable PDU")
			if uint32(h.ID)&respBit == 0 {
				s.reply(h, genericNack(h.Seq, StatusInvCmdID))
			}
			continue
		}
		if done := s.dispatch(h, p); done {
			return nil
		}
	}
}

// dispatch handles one decoded PDU; it reports whether the session is over.
func (s *Session) dispatch(h frameHeader, p pdu.Body) (done bool) {
	id := h.ID
	switch {
	case uint32(id)&respBit != 0:
		s.route(h, p)
		return false
	case id == pdu.BindTransceiverID || id == pdu.BindTransmitterID || id == pdu.BindReceiverID:
		if s.isBound() {
			s.reply(h, newResp(h, StatusAlyBnd))
			return false
		}
		return !s.bind(h, p)
	case !s.isBound():
		s.reply(h, newResp(h, StatusInvBndSts))
		return false
	case id == pdu.EnquireLinkID:
		s.reply(h, newResp(h, StatusOK))
		return false
	case id == pdu.UnbindID:
		// Let in-flight requests answer first, then confirm and hang up.
		s.inflight.Wait()
		s.reply(h, newResp(h, StatusOK))
		return true
	}
	select {
	case s.slots <- struct{}{}:
	default:
		// Window full. Refuse rather than stop reading: the responses that
		// busy handlers may be waiting for (via Send) arrive on this reader.
		s.reply(h, newResp(h, StatusThrottled))
		return false
	}
	s.inflight.Add(1)
	go func() {
		defer s.inflight.Done()
		var resp pdu.Body
		if !s.callHandler("HandlePDU", func() { resp = s.srv.Handler.HandlePDU(s.ctx, s, p) }) {
			resp = newResp(h, StatusSysErr)
		}
		if resp == nil {
			resp = newResp(h, StatusInvCmdID)
		}
		// Free the slot before answering: a peer that waits for this answer may send
		// its next request the moment it reads it, and must not find the window full.
		<-s.slots
		s.reply(h, resp)
		if r, ok := s.srv.Handler.(Replier); ok {
			s.callHandler("Replied", func() { r.Replied(s, resp) })
		}
	}()
	return false
}

// route hands a response to the Send waiting for its sequence number.
func (s *Session) route(h frameHeader, p pdu.Body) {
	s.mu.Lock()
	ch, ok := s.pending[h.Seq]
	delete(s.pending, h.Seq)
	s.mu.Unlock()
	if !ok {
		s.log.Debug().Stringer("command_id", h.ID).Uint32("seq", h.Seq).Msg("smpp server: response nobody waits for")
		return
	}
	ch <- p // buffered, and removed from pending: never blocks
}

// bind authenticates a bind request; it reports whether the session is bound.
func (s *Session) bind(h frameHeader, p pdu.Body) bool {
	var bindType string
	switch h.ID {
	case pdu.BindTransceiverID:
		bindType = BindTransceiver
	case pdu.BindTransmitterID:
		bindType = BindTransmitter
	default:
		bindType = BindReceiver
	}
	systemID, password := fieldString(p, pdufield.SystemID), fieldString(p, pdufield.Password)
	status := StatusBindFail
	s.callHandler("Authenticate", func() {
		status = s.srv.Handler.Authenticate(systemID, password, bindType, s.remote)
	})
	log := s.log.With().Str("system_id", systemID).Str("bind", bindType).Logger()
	if status != StatusOK {
		// Hang up after a refusal: a password guesser gets one try per
		// connection.
		log.Info().Uint32("status", status).Msg("smpp server: bind refused")
		s.reply(h, newResp(h, status))
		return false
	}
	s.mu.Lock()
	s.bound, s.systemID, s.bindType, s.boundAt = true, systemID, bindType, time.Now()
	s.mu.Unlock()
	resp := newResp(h, StatusOK)
	resp.Fields().Set(pdufield.SystemID, s.srv.systemID())
	s.reply(h, resp)
	log.Info().Msg("smpp server: bound")
	s.callHandler("Bound", func() { s.srv.Handler.Bound(s) })
	if d := s.srv.EnquireLink; d > 0 {
		go s.probe(d)
	}
	return true
}

// probe sends enquire_link every d and closes the session when one goes
// unanswered.
func (s *Session) probe(d time.Duration) {
	t := time.NewTicker(d)
	defer t.Stop()
	for {
		select {
		case <-s.ctx.Done():
			return
		case <-t.C:
		}
		if _, err := s.Send(s.ctx, pdu.NewEnquireLink()); err != nil {
			if s.ctx.Err() == nil {
				s.log.Warn().Err(err).Str("system_id", s.SystemID()).Msg("smpp server: enquire_link failed, closing")
				s.Close()
			}
			return
		}
	}
}

func fieldString(p pdu.Body, name pdufield.Name) string {
	if f := p.Fields()[name]; f != nil {
		return f.String()
	}
	return ""
}
