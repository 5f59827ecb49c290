// Package smscsim is a demo SMSC: an SMPP server on loopback that plays the
// carrier network for payswitch. Simulated phones send mobile-originated
// messages (SendMO, or POST /mo on the phone API) that the bound ESME
// receives as deliver_sm; every submit_sm from the ESME is a mobile-terminated
// message to a phone, reassembled when concatenated, kept in a history,
// streamed to subscribers (Subscribe, GET /mt) and, when asked, followed by a
// delivery receipt. A USSD MT is also the phone's USSD screen (USSDScreen, GET
// /ussd); one that waits for an answer, whether it answers the phone's dial
// (DialUSSD) or the network pushed it, is answered with AnswerUSSD (POST /ussd).
//
// It backs `payswitch serve` when no carrier is configured, and the tests of
// every package that needs real SMPP. Fault injection (DropConnections,
// SetThrottle, SetRefuseBinds, SetUnreachable, SetAway) lets those tests play
// a misbehaving network; Kept and Unacknowledged tell them when the sim has
// nothing left to do. Everything is in memory.
package smscsim

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/payswitch/payswitch/smpp"
	"github.com/payswitch/payswitch/smpp/server"
	"github.com/rs/zerolog"

	"github.com/payswitch/payswitch/internal/mask"
)

// Sentinel errors of the simulator (and ErrNoUSSDScreen, ErrBadDial in ussd.go).
var (
	// ErrClosed is returned by SendMO and the USSD methods after Close.
	ErrClosed = errors.New("smscsim: closed")
	// ErrQueueFull is returned by SendMO and the USSD methods when Config.QueueSize
	// deliveries already wait for an ESME.
	ErrQueueFull = errors.New("smscsim: delivery queue full")
	// ErrBadMessage is returned for an MO without a sender, a recipient or
	// text.
	ErrBadMessage = errors.New("smscsim: message needs from, to and text")
	// ErrNotLoopback is returned by Start for a listen address that is not on
	// loopback: the sim shows every MT, codes included, to whoever reaches it.
	ErrNotLoopback = errors.New("smscsim: not a loopback address")
)

// Defaults for Config's zero values.
const (
	DefaultReceiptDelay = 200 * time.Millisecond
	DefaultRetryDelay   = 500 * time.Millisecond
	DefaultQueueSize    = 10000
	DefaultHistorySize  = 10000
	// ReassemblyTimeout is how long parts of a concatenated MT wait for the
	// rest before they are dropped.
	ReassemblyTimeout = 5 * time.Minute
	// subscriberBuffer is how far a subscriber may fall behind before it
	// misses MTs.
	subscriberBuffer = 256
)

// Config configures a Sim. Zero values mean the documented defaults.
type Config struct {
	// Listen is the SMPP address, e.g. "127.0.0.1:2775"; "" means
	// "127.0.0.1:0", any free loopback port (see Sim.Addr). It must be on
	// loopback (a loopback IP or localhost), as must PhoneAPI.
	Listen string
	// Accounts maps system_id to password: only those may bind. nil accepts
	// any system_id (for tests); an empty map accepts none. A bind with an
	// empty password is always refused.
	Accounts map[string]string
	// PhoneAPI is the HTTP listen address of the phone API used by
	// tools/phone; "" turns it off.
	PhoneAPI string
	Log      zerolog.Logger
	// ReceiptDelay is how long after a submit_sm its delivery receipt is
	// sent. Default 200ms.
	ReceiptDelay time.Duration
	// RetryDelay is the pause before a deliver_sm refused with a temporary
	// error (or unanswered) is sent again. Default 500ms.
	RetryDelay time.Duration
	// Window is how many deliveries (MO, receipts) may wait for their
	// deliver_sm_resp at once. 1 (the default) delivers strictly in order; a
	// real SMSC keeps a window of several, and an ESME that acknowledges only
	// after a durable commit needs one to batch its commits.
	Window int
	// QueueSize bounds the deliveries (MO and receipts) waiting for an ESME.
	// Default 10000.
	QueueSize int
	// HistorySize bounds the MTs kept for MTs and GET /mt/history; the oldest
	// go first. Default 10000.
	HistorySize int
	// RespTimeout is how long a deliver_sm waits for its response. Default
	// 10s (server.DefaultRespTimeout).
	RespTimeout time.Duration
	// Unreachable lists phones that start unreachable (see SetUnreachable).
	Unreachable []string
}

// MT is a mobile-terminated message as the phone sees it: all parts of a
// concatenated message joined.
type MT struct {
	ID       string    `json:"id"`  // message_id returned for the first part
	IDs      []string  `json:"ids"` // message_id of every part, in order of arrival
	From     string    `json:"from"`
	To       string    `json:"to"`
	Text     string    `json:"text"`
	Parts    int       `json:"parts"`
	Time     time.Time `json:"time"`      // when the last part arrived
	SystemID string    `json:"system_id"` // the ESME that submitted it
	// Status is DELIVRD, or UNDELIV when the phone is unreachable
	// (SetUnreachable); a phone only shows DELIVRD messages. An MT to a phone
	// that is away (SetAway) is published, DELIVRD, once the phone is back.
	Status string `json:"status"`
	// USSD holds the hex of the ussd_service_op and its_session_info TLVs
	// under those names, when the submit_sm carried them.
	USSD map[string]string `json:"ussd,omitempty"`
	// UserRef is the user_message_reference TLV of the (first) submit_sm, 0 when
	// absent. An ESME that keeps it across resubmissions makes a duplicate that a lost
	// submit_sm_resp caused recognisable: same ESME, recipient and UserRef.
	UserRef int `json:"user_ref,omitempty"`
}

// Sim is a running simulator. Its methods are safe for concurrent use.
type Sim struct {
	cfg    Config
	log    zerolog.Logger
	srv    *server.Server
	smppLn net.Listener
	http   *http.Server
	httpLn net.Listener
	reasm  *smpp.Reassembler
	idBase string // random per start, so message ids never repeat across runs

	ctx    context.Context // ends at Close
	cancel context.CancelFunc
	wg     sync.WaitGroup // serve loops and the delivery worker

	// PDUs counted for Counts: deliver_sm acknowledged by an ESME, submit_sm accepted.
	delivered, submitted atomic.Uint64

	timesMu sync.Mutex                // guards times
	times   map[string]*DeliveryTimes // by delivery kind; see DeliveryTimes

	mu          sync.Mutex // guards the fields below
	closed      bool
	nextID      uint64
	nextRef     uint8
	sessions    []*server.Session // bound sessions that can receive, in bind order
	rr          int               // round-robin position in sessions
	queue       []*delivery
	wake        chan struct{}            // closed and replaced when queue or sessions change
	parts       map[partKey]*partialMT   // concatenated MTs being reassembled
	subs        map[*subscriber]struct{} // MT subscribers
	history     []MT
	throttle    int
	slow        int           // submit_sm left to answer late
	slowBy      time.Duration // how late
	refuseBinds bool
	unreachable map[string]bool
	away        map[string]*awayPhone  // phones out of coverage, with what waits for them
	scheduled   int                    // receipts waiting for their ReceiptDelay, not queued yet
	screens     map[string]*USSDScreen // the USSD screen each phone shows (ussd.go)
	nextSession uint8                  // the session number of the last dial (DialUSSD)
}

// awayPhone is what the SMSC keeps for a phone out of coverage (SetAway) until it
// comes back.
type awayPhone struct {
	mts      []MT          // complete MTs, in the order their last part arrived
	receipts []owedReceipt // final receipts owed for the parts kept, in order of submission
}

// owedReceipt is a DELIVRD receipt the SMSC sends once the part it reports on
// reaches the phone.
type owedReceipt struct {
	id, from, to, systemID string
	submitted              time.Time
}

type subscriber struct {
	msisdn string // "" for every MT
	ch     chan MT
}

// Start listens on cfg.Listen (and cfg.PhoneAPI when set) and returns once
// both listeners are ready.
func Start(cfg Config) (*Sim, error) {
	if cfg.Listen == "" {
		cfg.Listen = "127.0.0.1:0"
	}
	if cfg.ReceiptDelay <= 0 {
		cfg.ReceiptDelay = DefaultReceiptDelay
	}
	if cfg.RetryDelay <= 0 {
		cfg.RetryDelay = DefaultRetryDelay
	}
	if cfg.Window <= 0 {
		cfg.Window = 1
	}
	if cfg.QueueSize <= 0 {
		cfg.QueueSize = DefaultQueueSize
	}
	if cfg.HistorySize <= 0 {
		cfg.HistorySize = DefaultHistorySize
	}
	var rnd [4]byte
	if _, err := rand.Read(rnd[:]); err != nil {
		return nil, fmt.Errorf("smscsim: random id base: %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Sim{
		cfg:         cfg,
		log:         cfg.Log.With().Str("component", "smscsim").Logger(),
		reasm:       smpp.NewReassembler(ReassemblyTimeout),
		idBase:      hex.EncodeToString(rnd[:]),
		ctx:         ctx,
		cancel:      cancel,
		wake:        make(chan struct{}),
		parts:       make(map[partKey]*partialMT),
		subs:        make(map[*subscriber]struct{}),
		unreachable: make(map[string]bool),
		away:        make(map[string]*awayPhone),
		screens:     make(map[string]*USSDScreen),
	}
	for _, n := range cfg.Unreachable {
		s.unreachable[n] = true
	}
	s.srv = &server.Server{
		Handler:     (*handler)(s),
		Log:         s.log,
		SystemID:    "smscsim",
		RespTimeout: cfg.RespTimeout,
	}
	ln, err := listenLoopback(cfg.Listen)
	if err != nil {
		cancel()
		return nil, fmt.Errorf("smscsim: listen smpp %s: %w", cfg.Listen, err)
	}
	s.smppLn = ln
	if cfg.PhoneAPI != "" {
		hl, err := listenLoopback(cfg.PhoneAPI)
		if err != nil {
			ln.Close()
			cancel()
			return nil, fmt.Errorf("smscsim: listen phone api %s: %w", cfg.PhoneAPI, err)
		}
		s.httpLn = hl
		s.http = &http.Server{
			Handler:           s.phoneAPI(),
			ReadHeaderTimeout: 10 * time.Second,
			BaseContext:       func(net.Listener) context.Context { return ctx },
		}
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			if err := s.http.Serve(hl); err != nil && !errors.Is(err, http.ErrServerClosed) {
				s.log.Error().Err(err).Msg("smscsim: phone api stopped")
			}
		}()
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		if err := s.srv.Serve(ln); err != nil && !errors.Is(err, server.ErrServerClosed) {
			s.log.Error().Err(err).Msg("smscsim: smpp server stopped")
		}
	}()
	for range s.cfg.Window {
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			s.deliverLoop()
		}()
	}
	s.log.Info().Str("smpp", s.Addr()).Str("phone_api", s.PhoneAddr()).Msg("smscsim: demo SMSC listening")
	return s, nil
}

// listenLoopback listens on addr, which must name a loopback IP or localhost; what
// localhost resolved to is checked too.
func listenLoopback(addr string) (net.Listener, error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, err
	}
	if !LoopbackHost(host) {
		return nil, fmt.Errorf("%w: use 127.0.0.1, [::1] or localhost", ErrNotLoopback)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	if ta, ok := ln.Addr().(*net.TCPAddr); !ok || !ta.IP.IsLoopback() {
		ln.Close()
		return nil, fmt.Errorf("%w: %s listens on %s", ErrNotLoopback, host, ln.Addr())
	}
	return ln, nil
}

// LoopbackHost reports whether host (of a host:port) is a loopback IP or "localhost".
// An empty host means every interface, which is not loopback.
func LoopbackHost(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// Addr is the SMPP address actually listened on.
func (s *Sim) Addr() string { return s.smppLn.Addr().String() }

// Counts returns how many deliver_sm PDUs (MOs and delivery receipts, each part of a
// long MO counted) ESMEs have acknowledged, and how many submit_sm PDUs the simulator has
// accepted, since Start: the request PDUs a load put through the SMPP stack.
func (s *Sim) Counts() (delivered, submitted uint64) {
	return s.delivered.Load(), s.submitted.Load()
}

// PhoneAddr is the phone API address actually listened on, or "" when off.
func (s *Sim) PhoneAddr() string {
	if s.httpLn == nil {
		return ""
	}
	return s.httpLn.Addr().String()
}

// Close unbinds every ESME, stops the phone API and the delivery worker, and
// ends every subscription. Queued deliveries are dropped.
func (s *Sim) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	s.mu.Unlock()

	s.cancel()
	err := s.srv.Close()
	if s.http != nil {
		if herr := s.http.Close(); herr != nil && err == nil {
			err = herr
		}
	}
	s.wg.Wait()
	s.mu.Lock()
	for sub := range s.subs {
		delete(s.subs, sub)
		close(sub.ch)
	}
	s.mu.Unlock()
	return err
}

// Subscribe returns a channel of every MT to msisdn ("" for every MT) from
// now on, and a function that ends the subscription and closes the channel.
// The channel is buffered; a subscriber that falls far behind misses MTs.
// Close also closes it.
func (s *Sim) Subscribe(msisdn string) (<-chan MT, func()) {
	sub := &subscriber{msisdn: msisdn, ch: make(chan MT, subscriberBuffer)}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		close(sub.ch)
		return sub.ch, func() {}
	}
	s.subs[sub] = struct{}{}
	s.mu.Unlock()
	return sub.ch, func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		if _, ok := s.subs[sub]; ok {
			delete(s.subs, sub)
			close(sub.ch)
		}
	}
}

// MTs returns the MTs kept in history for msisdn ("" for all), oldest first.
func (s *Sim) MTs(msisdn string) []MT {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := []MT{}
	for _, m := range s.history {
		if msisdn == "" || m.To == msisdn {
			out = append(out, m)
		}
	}
	return out
}

// WaitBound returns once at least one ESME that can receive (receiver or
// transceiver) is bound, or ctx ends.
func (s *Sim) WaitBound(ctx context.Context) error {
	for {
		s.mu.Lock()
		n, wake := len(s.sessions), s.wake
		s.mu.Unlock()
		if n > 0 {
			return nil
		}
		select {
		case <-wake:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// DropConnections closes every ESME connection abruptly, without unbind,
// as a network failure would.
func (s *Sim) DropConnections() {
	for _, sess := range s.srv.Sessions() {
		sess.Close()
	}
}

// SetThrottle answers the next n submit_sm with ESME_RTHROTTLED (0x58).
func (s *Sim) SetThrottle(n int) {
	s.mu.Lock()
	s.throttle = max(n, 0)
	s.mu.Unlock()
}

// SetResponseDelay answers the next n submit_sm d late: each is taken at once (its MT
// reaches the phone) but its submit_sm_resp waits d, or is never sent when the session
// or the sim ends first. It plays an SMSC whose answers come after the ESME's response
// timeout, or are lost.
func (s *Sim) SetResponseDelay(n int, d time.Duration) {
	s.mu.Lock()
	s.slow, s.slowBy = max(n, 0), d
	s.mu.Unlock()
}

// SetRefuseBinds makes every bind fail with ESME_RBINDFAIL while b is true.
func (s *Sim) SetRefuseBinds(b bool) {
	s.mu.Lock()
	s.refuseBinds = b
	s.mu.Unlock()
}

// SetUnreachable marks msisdn as unreachable (b true) or reachable again:
// MTs to it are accepted but get an UNDELIV receipt, and Status UNDELIV.
func (s *Sim) SetUnreachable(msisdn string, b bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if b {
		s.unreachable[msisdn] = true
	} else {
		delete(s.unreachable, msisdn)
	}
}

// SetAway takes msisdn out of coverage (away true) or brings it back, as a phone
// that is switched off or out of range and later found again. While it is away,
// the SMSC accepts MTs to it (submit_sm_resp OK with a message id) and keeps them.
// A submit_sm that asked for a final receipt gets, ReceiptDelay later as a
// delivered one gets its receipt, an intermediate notification: a deliver_sm with
// esm_class 0x20, stat:ENROUTE, receipted_message_id and message_state ENROUTE (1).
// (SMPP 3.4 5.2.17 has a registered_delivery bit of its own for intermediate
// notifications, 0x10, which also gets one; SMSCs commonly send ENROUTE to any ESME
// that asked for a final receipt, and the sim plays that.) Each part of a
// concatenated MT gets its own. The MT's Time stays when its last part reached the
// SMSC.
//
// When the phone comes back, every MT kept for it reaches it (history and
// subscribers, in order) and the DELIVRD receipts owed for its parts follow after
// ReceiptDelay. Parts of a concatenated MT still incomplete are delivered to the
// phone too (their receipts are sent); the MT is published when its last part
// arrives. An unreachable phone (SetUnreachable) gets UNDELIV whether or not it is
// away. Setting a phone away twice, or back when it is not away, changes nothing.
func (s *Sim) SetAway(msisdn string, away bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ap := s.away[msisdn]
	if away {
		if ap == nil {
			s.away[msisdn] = &awayPhone{}
		}
		return
	}
	if ap == nil {
		return
	}
	delete(s.away, msisdn)
	for _, mt := range ap.mts {
		s.publishLocked(mt)
	}
	for _, r := range ap.receipts {
		s.receiptLaterLocked(receipt(r.id, r.from, r.to, "DELIVRD", r.submitted), r.id, r.systemID)
	}
	if len(ap.mts) > 0 || len(ap.receipts) > 0 {
		s.log.Info().Str("to", mask.MSISDN(msisdn)).Int("mts", len(ap.mts)).Int("receipts", len(ap.receipts)).
			Msg("smscsim: phone back in coverage; kept MTs delivered")
	}
}

// Kept returns how many MTs the SMSC keeps for msisdn ("" for every phone) while it
// is away (SetAway): complete messages, not the parts of one still incomplete.
func (s *Sim) Kept(msisdn string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for to, ap := range s.away {
		if msisdn == "" || to == msisdn {
			n += len(ap.mts)
		}
	}
	return n
}

// Unacknowledged returns how many deliveries (MOs, USSD messages, receipts) no ESME
// has acknowledged yet, receipts still waiting for their ReceiptDelay included. One
// refused for good no longer counts. With Kept, it tells a test that the sim has
// nothing left to deliver: poll both down to 0.
func (s *Sim) Unacknowledged() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.queue) + s.scheduled
}

// notifyLocked wakes everyone waiting for a change of queue or sessions.
// s.mu must be held.
func (s *Sim) notifyLocked() {
	close(s.wake)
	s.wake = make(chan struct{})
}
