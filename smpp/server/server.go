// Package server is a small SMPP 3.4 server: it accepts ESME connections,
// authenticates their binds, answers enquire_link and unbind itself, and hands
// every other request to a Handler. It also lets the application send its own
// requests (deliver_sm) to a bound session and wait for the matching response.
//
// It is used by the demo SMSC (tools/smscsim) and by the switch's SMPP server
// for carriers and aggregators. PDU bodies are go-smpp's (package pdu), so
// handlers read fields with pdufield and pdutlv names.
package server

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/fiorix/go-smpp/smpp/pdu"
	"github.com/rs/zerolog"
)

// Sentinel errors of the server package.
var (
	// ErrServerClosed is returned by Serve and ListenAndServe after Close.
	ErrServerClosed = errors.New("server: closed")
	// ErrSessionClosed is returned by Send when the session ends before the
	// response arrives, or is already over.
	ErrSessionClosed = errors.New("server: session closed")
	// ErrNotBound is returned by Send on a session that has not bound.
	ErrNotBound = errors.New("server: session not bound")
	// ErrCannotReceive is returned by Send for a deliver_sm to a session bound
	// as a transmitter.
	ErrCannotReceive = errors.New("server: session bound as transmitter cannot receive")
	// ErrRespTimeout is returned by Send when no response arrives within
	// Server.RespTimeout.
	ErrRespTimeout = errors.New("server: response timeout")
)

// SMPP 3.4 command_status values that servers and handlers commonly need.
const (
	StatusOK        uint32 = 0x00 // ESME_ROK
	StatusInvMsgLen uint32 = 0x01 // ESME_RINVMSGLEN
	StatusInvCmdLen uint32 = 0x02 // ESME_RINVCMDLEN
	StatusInvCmdID  uint32 = 0x03 // ESME_RINVCMDID
	StatusInvBndSts uint32 = 0x04 // ESME_RINVBNDSTS: not allowed in this bind state
	StatusAlyBnd    uint32 = 0x05 // ESME_RALYBND: already bound (or too many binds)
	StatusSysErr    uint32 = 0x08 // ESME_RSYSERR
	StatusInvSrcAdr uint32 = 0x0A // ESME_RINVSRCADR
	StatusInvDstAdr uint32 = 0x0B // ESME_RINVDSTADR
	StatusBindFail  uint32 = 0x0D // ESME_RBINDFAIL
	StatusInvPaswd  uint32 = 0x0E // ESME_RINVPASWD
	StatusInvSysID  uint32 = 0x0F // ESME_RINVSYSID
	StatusMsgQFul   uint32 = 0x14 // ESME_RMSGQFUL
	StatusThrottled uint32 = 0x58 // ESME_RTHROTTLED
	StatusXTAppn    uint32 = 0x64 // ESME_RX_T_APPN: temporary application error, retry later
	StatusXPAppn    uint32 = 0x65 // ESME_RX_P_APPN: permanent application error
	StatusXRAppn    uint32 = 0x66 // ESME_RX_R_APPN: message rejected

	StatusInvParLen      uint32 = 0xC2 // ESME_RINVPARLEN: an optional parameter of the wrong length
	StatusInvOptParamVal uint32 = 0xC4 // ESME_RINVOPTPARAMVAL: an optional parameter's value is invalid
)

// Bind types as reported by Session.BindType and passed to Authenticate.
const (
	BindTransceiver = "transceiver"
	BindTransmitter = "transmitter"
	BindReceiver    = "receiver"
)

// Defaults for the zero values of Server's settings.
const (
	DefaultMaxPDUSize  = 64 << 10
	DefaultRespTimeout = 10 * time.Second
	DefaultBindTimeout = 30 * time.Second
	DefaultMaxInFlight = 64
	DefaultSystemID    = "payswitch"
)

// Handler is the application behind a Server.
//
// Bound, Unbound and Authenticate run on the session's reader goroutine:
// they must not block for long, and must not wait for Session.Send (whose
// response that goroutine would read); start a goroutine for that.
// HandlePDU runs on its own goroutine, up to Server.MaxInFlight at once per
// session, so responses may go out in a different order than requests came;
// it may call Send.
type Handler interface {
	// Authenticate checks a bind and returns its command_status: StatusOK,
	// StatusInvPaswd, StatusInvSysID, StatusAlyBnd (too many binds)...
	// remote is the peer's address. A refused bind closes the connection.
	Authenticate(systemID, password, bindType, remote string) uint32
	// Bound is called once a bind succeeded and its response was written.
	Bound(s *Session)
	// Unbound is called once for every session that Bound was called for,
	// when it ends for any reason, after its last HandlePDU has returned.
	Unbound(s *Session)
	// HandlePDU answers a request of a bound session other than bind,
	// enquire_link and unbind (submit_sm, query_sm...). It returns the
	// response body; the server sets its sequence number. A nil response is
	// answered with ESME_RINVCMDID. ctx ends when the session does.
	HandlePDU(ctx context.Context, s *Session, p pdu.Body) (resp pdu.Body)
}

// Replier is a Handler that wants to know when the response HandlePDU returned has been
// written to the peer (or failed to be): an SMSC must not send a delivery receipt
// before the submit_sm_resp that gives the peer its message id, or the peer cannot
// match the two. Replied runs on HandlePDU's goroutine, before Unbound.
type Replier interface {
	Replied(s *Session, resp pdu.Body)
}

// Server is an SMPP server. Set its fields before Serve; the zero value of
// each setting means its default.
type Server struct {
	Handler Handler
	Log     zerolog.Logger
	// SystemID is sent in bind responses. Default DefaultSystemID.
	SystemID string
	// MaxPDUSize is the largest command_length accepted or sent. A peer that
	// sends a larger or a shorter-than-header one is disconnected, because
	// framing is lost. Default 64 KiB.
	MaxPDUSize uint32
	// EnquireLink is how often the server probes each bound session; a probe
	// left unanswered for RespTimeout closes the session. 0 means never.
	EnquireLink time.Duration
	// IdleTimeout closes a bound session when nothing arrives for this long.
	// 0 means never.
	IdleTimeout time.Duration
	// BindTimeout closes a connection that has not bound within this long.
	// Default 30s.
	BindTimeout time.Duration
	// RespTimeout bounds how long Send waits for a response, and each write.
	// Default 10s.
	RespTimeout time.Duration
	// MaxInFlight is how many requests of one session are handled at once;
	// beyond it requests are refused with ESME_RTHROTTLED. Default 64.
	MaxInFlight int

	mu       sync.Mutex            // guards the fields below
	ln       net.Listener          // set by Serve
	sessions map[*Session]struct{} // every open connection, bound or not
	closed   bool

	conns sync.WaitGroup // one per connection goroutine
}

// ListenAndServe listens on the TCP address addr and serves it until Close.
func (s *Server) ListenAndServe(addr string) error {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("server: listen %s: %w", addr, err)
	}
	return s.Serve(l)
}

// Serve accepts connections on l until Close, and always returns a non-nil
// error: ErrServerClosed after Close. It takes ownership of l.
func (s *Server) Serve(l net.Listener) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		l.Close()
		return ErrServerClosed
	}
	if s.ln != nil {
		s.mu.Unlock()
		return errors.New("server: Serve called twice")
	}
	s.ln = l
	s.mu.Unlock()

	var backoff time.Duration
	for {
		c, err := l.Accept()
		if err != nil {
			if s.isClosed() {
				return ErrServerClosed
			}
			if errors.Is(err, net.ErrClosed) {
				return fmt.Errorf("server: accept: %w", err)
			}
			// Out of file descriptors and the like: wait and retry rather
			// than spin or give up on every other carrier.
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			s.Log.Warn().Err(err).Dur("retry_in", backoff).Msg("smpp server: accept failed")
			time.Sleep(backoff)
			continue
		}
		backoff = 0
		sess := newSession(s, c)
		if !s.track(sess) {
			c.Close()
			return ErrServerClosed
		}
		go sess.serve()
	}
}

// Addr is the address Serve listens on, or nil before Serve.
func (s *Server) Addr() net.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ln == nil {
		return nil
	}
	return s.ln.Addr()
}

// Sessions returns the sessions bound at this moment.
func (s *Server) Sessions() []*Session {
	s.mu.Lock()
	all := make([]*Session, 0, len(s.sessions))
	for sess := range s.sessions {
		all = append(all, sess)
	}
	s.mu.Unlock()
	bound := all[:0]
	for _, sess := range all {
		if sess.isBound() {
			bound = append(bound, sess)
		}
	}
	return bound
}

// Close stops accepting connections, sends unbind to every bound session and
// waits up to RespTimeout for each unbind_resp (in parallel), then closes
// every connection and waits for their handlers to return.
func (s *Server) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	var err error
	if s.ln != nil {
		err = s.ln.Close()
	}
	all := make([]*Session, 0, len(s.sessions))
	for sess := range s.sessions {
		all = append(all, sess)
	}
	s.mu.Unlock()

	var wg sync.WaitGroup
	for _, sess := range all {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if sess.isBound() {
				ctx, cancel := context.WithTimeout(context.Background(), s.respTimeout())
				sess.Unbind(ctx)
				cancel()
			}
			sess.Close()
		}()
	}
	wg.Wait()
	s.conns.Wait()
	if errors.Is(err, net.ErrClosed) {
		err = nil
	}
	return err
}

func (s *Server) isClosed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closed
}

// track registers a new connection; it refuses once the server is closed.
func (s *Server) track(sess *Session) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	if s.sessions == nil {
		s.sessions = make(map[*Session]struct{})
	}
	s.sessions[sess] = struct{}{}
	s.conns.Add(1)
	return true
}

func (s *Server) untrack(sess *Session) {
	s.mu.Lock()
	delete(s.sessions, sess)
	s.mu.Unlock()
	s.conns.Done()
}

func (s *Server) maxPDUSize() uint32 {
	if s.MaxPDUSize == 0 {
		return DefaultMaxPDUSize
	}
	return max(s.MaxPDUSize, headerLen)
}

func (s *Server) respTimeout() time.Duration {
	if s.RespTimeout <= 0 {
		return DefaultRespTimeout
	}
	return s.RespTimeout
}

func (s *Server) bindTimeout() time.Duration {
	if s.BindTimeout <= 0 {
		return DefaultBindTimeout
	}
	return s.BindTimeout
}

func (s *Server) maxInFlight() int {
	if s.MaxInFlight <= 0 {
		return DefaultMaxInFlight
	}
	return s.MaxInFlight
}

func (s *Server) systemID() string {
	if s.SystemID == "" {
		return DefaultSystemID
	}
	return s.SystemID
}
