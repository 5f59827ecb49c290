package smpp

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fiorix/go-smpp/smpp/pdu"
	"github.com/fiorix/go-smpp/smpp/pdu/pdufield"
	"github.com/fiorix/go-smpp/smpp/pdu/pdutlv"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
	"golang.org/x/time/rate"

	"github.com/payswitch/payswitch/internal/mask"
)

// Link states reported by State.
const (
	StateBound   = "bound"
	StateBinding = "binding"
	StateDown    = "down"
	StateClosed  = "closed"
)

// Bind modes of LinkConfig.Bind.
const (
	BindTransceiver = "transceiver"          // one session carries MT and MO
	BindTxRx        = "transmitter+receiver" // two sessions: MT out on one, MO in on the other
)

// Defaults applied by NewLink to zero LinkConfig fields, and fixed timings.
const (
	DefaultWindow      = 10
	DefaultEnquireLink = 30 * time.Second
	DefaultRespTimeout = 10 * time.Second

	handlerTimeout = 30 * time.Second // an MO handler slower than this answers a temporary error
	closeGrace     = 5 * time.Second  // how long Close waits for MO handlers in flight
	minBackoff     = time.Second
	maxBackoff     = time.Minute

	// lateWindow is how long after its response timeout a submit_sm_resp is still
	// taken (see MT.Late); the Sender waits as long before it sends such a message again.
	lateWindow = 20 * time.Second
	// throttlePause is the first pause after the SMSC answers ESME_RTHROTTLED or
	// ESME_RMSGQFUL; it doubles while the SMSC keeps refusing, up to maxThrottlePause.
	throttlePause    = 500 * time.Millisecond
	maxThrottlePause = 8 * time.Second
	// throttleRetries is how often one part is sent again after a throttling answer
	// before Submit gives the refusal to its caller.
	throttleRetries = 4
)

// TLV tags of the SMPP 3.4 optional parameters this package reads or writes.
const (
	tagReceiptedMessageID = pdutlv.TagReceiptedMessageID // 0x001E
	tagMessageState       = pdutlv.Tag(0x0427)
	tagMessagePayload     = pdutlv.TagMessagePayload // 0x0424
	tagSarMsgRefNum       = pdutlv.TagSarMsgRefNum
	tagSarTotalSegments   = pdutlv.TagSarTotalSegments
	tagSarSegmentSeqnum   = pdutlv.TagSarSegmentSeqnum
	tagUssdServiceOp      = pdutlv.TagUssdServiceOp // 0x0501
	tagItsSessionInfo     = pdutlv.TagItsSessionInfo
	tagUserMessageRef     = pdutlv.TagUserMessageReference // 0x0204
)

// USSD service operations (ussd_service_op, SMPP 3.4 section 5.3.2.44).
const (
	USSDPSSDIndication uint8 = 0  // MO: the user dialled a service code
	USSDPSSRIndication uint8 = 1  // MO: process unstructured SS request
	USSDUSSRRequest    uint8 = 2  // MT: show a screen and wait for input (continue)
	USSDUSSNRequest    uint8 = 3  // MT: show a notification
	USSDPSSDResponse   uint8 = 16 // MT: answer to a PSSD
	USSDPSSRResponse   uint8 = 17 // MT: final answer to a PSSR (end)
	USSDUSSRConfirm    uint8 = 18 // MO: the user's input to a USSR (continue)
	USSDUSSNConfirm    uint8 = 19 // MO: the user saw a USSN
)

// USSDInfo is the USSD context of a message that travels over SMPP.
type USSDInfo struct {
	ServiceOp   uint8
	SessionInfo []byte // its_session_info, echoed back unchanged when present
}

// MO is a complete mobile-originated message.
type MO struct {
	Link, From, To, Text string
	Received             time.Time
	USSD                 *USSDInfo // non-nil when deliver_sm carried ussd_service_op
}

// Receipt is a delivery receipt for a message this link submitted.
type Receipt struct {
	Link, MessageID string
	Status          string // DELIVRD, UNDELIV, REJECTD, EXPIRED, DELETED, ACCEPTD, ENROUTE, UNKNOWN
	Err             string // the receipt's err: field, as sent
}

// MT is one mobile-terminated message for Target.Submit.
type MT struct {
	To, From, Text string
	Receipt        bool      // ask for a delivery receipt on every part
	USSD           *USSDInfo // non-nil: one unsplit USSD message carrying ussd_service_op
	// Ref, when not zero, goes out as user_message_reference on every part. The Sender
	// derives it from the outbox ID, so every attempt at one message carries the same
	// value: an SMSC or an auditor can tell a resubmission after a lost response from a
	// new message, which SMPP 3.4 itself cannot.
	Ref uint16
	// Late, when set, is called on its own goroutine with the message ids of every part
	// when Submit failed with ErrTimeout on the last part and that part's submit_sm_resp
	// then arrives OK within the late window (20 s): the message was accepted after all.
	Late func(messageIDs []string)
}

// LinkConfig configures one ESME link to an SMSC.
type LinkConfig struct {
	Name, Address, SystemID, Password, SystemType string
	Bind                                          string   // "transceiver" (default) or "transmitter+receiver"
	Prefixes                                      []string // MSISDN prefixes this link serves; empty: any
	TPS                                           int      // submit_sm per second at most; 0: unlimited
	Window                                        int      // submit_sm awaiting a response at most; 0: DefaultWindow
	EnquireLink, RespTimeout                      time.Duration
	// Failover names another link that takes this link's MT while this one is not
	// bound; "" for none. The Sender follows it one hop.
	Failover string
}

// LinkStats is a snapshot of one route target (a link, or an account of the Gateway)
// for /healthz.
type LinkStats struct {
	Name     string `json:"name"`
	State    string `json:"state"`
	Sessions int    `json:"sessions"`  // bound SMPP sessions
	InFlight int    `json:"in_flight"` // requests awaiting their response now
	Window   int    `json:"window"`    // the most that may await a response
	// Submitted counts parts the peer accepted (submit_sm, or deliver_sm for a Gateway
	// account), Failed the Submit calls that failed, Throttled the throttling answers
	// and Received the deliver_sm (or, for a Gateway account, submit_sm) received.
	Submitted uint64 `json:"submitted"`
	Failed    uint64 `json:"failed"`
	Throttled uint64 `json:"throttled"`
	Received  uint64 `json:"received"`
}

// Handler receives what a link's SMSC delivers. An error answers the SMSC with a
// temporary error (ESME_RX_T_APPN) so that it delivers again later; nil acknowledges.
// Both are called concurrently and must persist what they accept before returning.
type Handler interface {
	HandleMO(ctx context.Context, m MO) error
	HandleReceipt(ctx context.Context, r Receipt) error
}

// HandlerFuncs adapts two functions to Handler; a nil function accepts and drops.
type HandlerFuncs struct {
	MO      func(ctx context.Context, m MO) error
	Receipt func(ctx context.Context, r Receipt) error
}

// HandleMO calls h.MO.
func (h HandlerFuncs) HandleMO(ctx context.Context, m MO) error {
	if h.MO == nil {
		return nil
	}
	return h.MO(ctx, m)
}

// HandleReceipt calls h.Receipt.
func (h HandlerFuncs) HandleReceipt(ctx context.Context, r Receipt) error {
	if h.Receipt == nil {
		return nil
	}
	return h.Receipt(ctx, r)
}

// StatusError is an SMSC's refusal of a command.
type StatusError struct {
	Command string // e.g. "submit_sm", "bind_transceiver"
	Status  uint32
}

func (e *StatusError) Error() string {
	return fmt.Sprintf("smpp: %s refused with 0x%08x (%s)", e.Command, e.Status, pdu.Status(e.Status).Error())
}

// IsTemporary reports whether a Submit error may succeed later: throttling (0x58),
// message queue full (0x14), system error (0x08), temporary application error (0x64),
// timeouts, lost connections and a link that is not bound. Other refusals by the SMSC,
// such as an invalid destination (0x0B), a bad address, bad meta and no route are
// permanent.
func IsTemporary(err error) bool {
	if err == nil {
		return false
	}
	var se *StatusError
	if errors.As(err, &se) {
		switch se.Status {
		case StatusThrottled, StatusMsgQFul, StatusSysErr, StatusRxTempAppn:
			return true
		}
		return false
	}
	return !errors.Is(err, ErrBadAddress) && !errors.Is(err, ErrBadMeta) && !errors.Is(err, ErrNoRoute)
}

// Link is one ESME binding to a carrier SMSC: it keeps itself bound (rebinding with
// exponential backoff and jitter), submits MT messages under a TPS limit and a window
// of outstanding requests, and hands MO messages and delivery receipts to its Handler.
//
// Persist before you acknowledge: deliver_sm_resp is written only after the Handler has
// returned, with ESME_RX_T_APPN when it failed so that the SMSC redelivers. go-smpp's own
// client types cannot do this: its Transceiver calls the handler and then always answers
// OK (a failure cannot ask for redelivery), runs the handler on its only reader so that
// submit_sm_resp and enquire_link wait behind the database, and matches responses by
// sequence number alone, so a deliver_sm whose sequence number equals that of an
// outstanding submit_sm is taken for its response, never reaches the handler, and is still
// acknowledged: a lost MO. Its Receiver acknowledges before calling the handler, and with
// SkipAutoRespondIDs it gives the handler no way to answer at all. So the session
// (session.go) is written here on go-smpp's pdu package.
//
// Parts of a concatenated MO are acknowledged as they arrive and kept in memory until the
// last one; the last is acknowledged only after the Handler accepted the whole text. A
// crash in between loses the earlier parts, which the SMSC will not send again: the user
// has to send the message again. A failed Handler keeps the parts, so a redelivered last
// part completes the message. A part beyond the Reassembler's caps is refused (linkRefusal).
type Link struct {
	cfg     LinkConfig
	h       Handler
	log     zerolog.Logger
	quiet   *logThrottle // handler failures that repeat with every redelivery
	metrics *linkMetrics // nil without a registry
	limiter *rate.Limiter
	window  chan struct{} // one token per outstanding submit_sm
	moSlots chan struct{} // one token per deliver_sm being handled
	reasm   *Reassembler

	minBackoff, maxBackoff time.Duration // tests shorten them
	lateWindow             time.Duration // tests shorten it
	throttlePause          time.Duration // tests shorten it

	submitted, failed, throttled, received atomic.Uint64 // for Stats

	pmu        sync.Mutex    // guards the throttling pause
	pauseUntil time.Time     // no submit_sm before this
	pauseStep  time.Duration // the last pause; 0 after a submit_sm went through

	mu       sync.Mutex // guards the fields below
	state    string
	changed  chan struct{} // closed and replaced on every state change
	tx       *session      // where submit_sm goes; nil unless bound
	sessions []*session    // all bound sessions
	closing  bool          // Close was called: refuse new deliver_sm
	cancel   context.CancelFunc
	runDone  chan struct{}

	handlers sync.WaitGroup // MO and receipt handlers in flight; Add under mu when !closing
}

// NewLink returns a link that is down until Start. reg may be nil.
func NewLink(cfg LinkConfig, h Handler, log zerolog.Logger, reg prometheus.Registerer) *Link {
	if cfg.Bind == "" {
		cfg.Bind = BindTransceiver
	}
	if cfg.Window <= 0 {
		cfg.Window = DefaultWindow
	}
	if cfg.EnquireLink <= 0 {
		cfg.EnquireLink = DefaultEnquireLink
	}
	if cfg.RespTimeout <= 0 {
		cfg.RespTimeout = DefaultRespTimeout
	}
	limit := rate.Inf
	if cfg.TPS > 0 {
		limit = rate.Limit(cfg.TPS)
	}
	cfg.Prefixes = append([]string(nil), cfg.Prefixes...)
	return &Link{
		cfg:   cfg,
		h:     h,
		log:   log.With().Str("link", cfg.Name).Logger(),
		quiet: newLogThrottle(logThrottleInterval),
		// A burst of one keeps every one-second window at or below TPS (plus one).
		limiter:       rate.NewLimiter(limit, 1),
		metrics:       newLinkMetrics(reg, cfg.Name, log),
		window:        make(chan struct{}, cfg.Window),
		moSlots:       make(chan struct{}, max(2*cfg.Window, 16)),
		reasm:         NewReassembler(reassemblyTimeout),
		minBackoff:    minBackoff,
		maxBackoff:    maxBackoff,
		lateWindow:    lateWindow,
		throttlePause: throttlePause,
		state:         StateDown,
		changed:       make(chan struct{}),
	}
}

// Name returns the link's configured name.
func (l *Link) Name() string { return l.cfg.Name }

// Prefixes returns the MSISDN prefixes the link serves; empty means any.
func (l *Link) Prefixes() []string { return append([]string(nil), l.cfg.Prefixes...) }

// Window returns how many submit_sm may await a response at once.
func (l *Link) Window() int { return l.cfg.Window }

// Failover returns the name of the link that takes this one's MT while it is down, or "".
func (l *Link) Failover() string { return l.cfg.Failover }

// Stats returns the link's state and counters since NewLink.
func (l *Link) Stats() LinkStats {
	l.mu.Lock()
	st, sessions := l.state, len(l.sessions)
	l.mu.Unlock()
	return LinkStats{
		Name: l.cfg.Name, State: st, Sessions: sessions,
		InFlight: len(l.window), Window: cap(l.window),
		Submitted: l.submitted.Load(), Failed: l.failed.Load(),
		Throttled: l.throttled.Load(), Received: l.received.Load(),
	}
}

// State returns "bound", "binding", "down" or "closed".
func (l *Link) State() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.state
}

// stateChange returns the state and a channel closed at the next change.
func (l *Link) stateChange() (string, <-chan struct{}) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.state, l.changed
}

// setStateLocked changes the state; l.mu must be held.
func (l *Link) setStateLocked(st string) {
	if l.state == st {
		return
	}
	l.state = st
	close(l.changed)
	l.changed = make(chan struct{})
	l.metrics.setUp(st == StateBound)
}

// Start binds in the background and keeps rebinding until Close or until ctx ends.
// Calling it twice, or after Close, does nothing.
func (l *Link) Start(ctx context.Context) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.runDone != nil || l.closing {
		return
	}
	ctx, l.cancel = context.WithCancel(ctx)
	l.runDone = make(chan struct{})
	go l.run(ctx)
}

// Close stops taking MO (new deliver_sm get a temporary error), waits a little for the
// handlers in flight, unbinds gracefully and stops rebinding. Submits in flight fail with
// a temporary error. Close is idempotent.
func (l *Link) Close() error {
	l.mu.Lock()
	if l.closing {
		l.mu.Unlock()
		<-l.doneChan()
		return nil
	}
	l.closing = true
	cancel, done := l.cancel, l.runDone
	if done == nil {
		l.setStateLocked(StateClosed)
	}
	l.mu.Unlock()
	if done == nil {
		return nil
	}
	cancel()
	<-done
	return nil
}

func (l *Link) doneChan() <-chan struct{} {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.runDone == nil {
		c := make(chan struct{})
		close(c)
		return c
	}
	return l.runDone
}

// run is the bind loop.
func (l *Link) run(ctx context.Context) {
	defer close(l.runDone)
	// Handlers outlive a cancelled ctx so that an MO being persisted at shutdown is
	// finished and acknowledged rather than redelivered.
	hctx := context.WithoutCancel(ctx)
	sweep := time.NewTicker(time.Minute)
	defer sweep.Stop()
	attempt := 0
	for {
		l.mu.Lock()
		l.setStateLocked(StateBinding)
		l.mu.Unlock()
		sessions, err := l.bindAll(ctx, hctx)
		if err != nil {
			if ctx.Err() != nil {
				break
			}
			attempt++
			l.log.Warn().Err(err).Int("attempt", attempt).Msg("smpp bind failed")
			l.mu.Lock()
			l.setStateLocked(StateDown)
			l.mu.Unlock()
			if !l.sleep(ctx, l.backoff(attempt)) {
				break
			}
			continue
		}
		attempt = 0
		l.mu.Lock()
		l.sessions = sessions
		l.tx = sessions[0]
		l.setStateLocked(StateBound)
		l.mu.Unlock()
		l.log.Info().Str("bind", l.cfg.Bind).Msg("smpp link bound")

		ended := make(chan error, len(sessions))
		for _, s := range sessions {
			go func() { <-s.done; ended <- s.reason() }()
		}
	bound:
		for {
			select {
			case err := <-ended:
				l.log.Warn().Err(err).Msg("smpp link down")
				break bound
			case now := <-sweep.C:
				if n := l.reasm.Sweep(now); n > 0 {
					l.log.Warn().Int("sets", n).Msg("smpp dropped incomplete concatenated MO")
				}
			case <-ctx.Done():
				break bound
			}
		}
		l.mu.Lock()
		l.tx, l.sessions = nil, nil
		if ctx.Err() == nil {
			l.setStateLocked(StateDown)
		}
		l.mu.Unlock()
		if ctx.Err() != nil {
			l.shutdown(sessions)
			break
		}
		for _, s := range sessions {
			s.fail(ErrConnLost)
		}
		if !l.sleep(ctx, l.backoff(1)) {
			break
		}
	}
	l.mu.Lock()
	l.closing = true
	l.setStateLocked(StateClosed)
	l.mu.Unlock()
	l.log.Info().Msg("smpp link closed")
}

// shutdown waits a little for the MO handlers in flight, so that their answers still
// reach the SMSC, then unbinds every session.
func (l *Link) shutdown(sessions []*session) {
	l.mu.Lock()
	l.closing = true
	l.mu.Unlock()
	idle := make(chan struct{})
	go func() { l.handlers.Wait(); close(idle) }()
	select {
	case <-idle:
	case <-time.After(closeGrace):
		l.log.Warn().Msg("smpp closing with MO handlers still running; the SMSC will redeliver")
	}
	var wg sync.WaitGroup
	for _, s := range sessions {
		wg.Go(s.unbind)
	}
	wg.Wait()
}

// bindAll opens the sessions of the bind mode; the first one carries submit_sm.
func (l *Link) bindAll(ctx, hctx context.Context) ([]*session, error) {
	onDeliver := func(s *session, p pdu.Body, esm uint8) { l.onDeliver(hctx, s, p, esm) }
	kinds := []string{"transceiver"}
	if l.cfg.Bind == BindTxRx {
		kinds = []string{"transmitter", "receiver"}
	}
	var sessions []*session
	for _, k := range kinds {
		s, err := dialSession(ctx, l.cfg, k, onDeliver)
		if err != nil {
			for _, s := range sessions {
				s.unbind()
			}
			return nil, err
		}
		sessions = append(sessions, s)
	}
	return sessions, nil
}

// backoff returns the wait before bind attempt n+1: exponential from minBackoff up to
// maxBackoff, with jitter over its upper half so that many links do not rebind in step.
func (l *Link) backoff(attempt int) time.Duration {
	d := l.minBackoff
	for i := 1; i < attempt && d < l.maxBackoff; i++ {
		d *= 2
	}
	d = min(d, l.maxBackoff)
	half := d / 2
	return half + rand.N(half+1)
}

// sleep waits d or until ctx ends; it reports whether to go on.
func (l *Link) sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// onDeliver runs on the session's reader: it must not block. The handler runs in its
// own goroutine, bounded by moSlots; when all are busy the SMSC is told to retry.
func (l *Link) onDeliver(hctx context.Context, s *session, p pdu.Body, esm uint8) {
	seq := p.Header().Seq
	l.mu.Lock()
	if l.closing {
		l.mu.Unlock()
		s.respond(pdu.DeliverSMID, seq, StatusRxTempAppn)
		return
	}
	select {
	case l.moSlots <- struct{}{}:
	default:
		l.mu.Unlock()
		s.respond(pdu.DeliverSMID, seq, StatusRxTempAppn)
		return
	}
	l.handlers.Add(1)
	l.mu.Unlock()
	go func() {
		defer l.handlers.Done()
		defer func() { <-l.moSlots }()
		ctx, cancel := context.WithTimeout(hctx, handlerTimeout)
		defer cancel()
		status := StatusRxTempAppn
		defer func() {
			// One bad message must not take the switch down; the SMSC tries again.
			if r := recover(); r != nil {
				l.log.Error().Interface("panic", r).Bytes("stack", debug.Stack()).Msg("smpp deliver_sm handling panicked")
			}
			s.respond(pdu.DeliverSMID, seq, status)
		}()
		status = l.deliver(ctx, p, esm)
	}()
}

// deliver turns a deliver_sm into an MO or a Receipt for the handler and returns the
// command status to answer.
func (l *Link) deliver(ctx context.Context, p pdu.Body, esm uint8) uint32 {
	f, tlv := p.Fields(), p.TLVFields()
	from := normalizeAddr(fieldString(f, pdufield.SourceAddr))
	to := normalizeAddr(fieldString(f, pdufield.DestinationAddr))
	coding := fieldByte(f, pdufield.DataCoding)
	sm := fieldBytes(f, pdufield.ShortMessage)
	if len(sm) == 0 {
		if pl, ok := tlv[tagMessagePayload]; ok {
			sm = pl.Bytes()
		}
	}
	l.metrics.message("in")
	l.received.Add(1)
	seq := p.Header().Seq
	// Only failures are logged, so the fields are added to the event then, not to a
	// child logger built for every deliver_sm.
	about := func(e *zerolog.Event) *zerolog.Event { return e.Str("from", mask.MSISDN(from)).Uint32("seq", seq) }

	msgType := esm & 0x3C
	_, hasReceiptID := tlv[tagReceiptedMessageID]
	if msgType == 0x04 || msgType == 0x20 || hasReceiptID {
		r := parseReceipt(coding, sm, tlv)
		r.Link = l.cfg.Name
		if err := l.h.HandleReceipt(ctx, r); err != nil {
			about(l.quiet.event("receipt", l.log.Error())).Err(err).Str("message_id", r.MessageID).
				Msg("smpp receipt handler failed; SMSC will redeliver")
			return StatusRxTempAppn
		}
		return StatusOK
	}
	if msgType != 0 { // SME delivery or manual/user acknowledgement: nothing to do
		return StatusOK
	}

	var ussd *USSDInfo
	if op, ok := tlv[tagUssdServiceOp]; ok && len(op.Bytes()) == 1 {
		ussd = &USSDInfo{ServiceOp: op.Bytes()[0]}
		if si, ok := tlv[tagItsSessionInfo]; ok {
			ussd.SessionInfo = append([]byte(nil), si.Bytes()...)
		}
	}
	part, err := Decode(coding, esm, sm, sarOf(tlv))
	if err != nil {
		about(l.log.Warn()).Err(err).Uint8("data_coding", coding).Msg("smpp undecodable MO refused")
		return StatusRxPermAppn
	}
	now := time.Now()
	text := part.Text
	if ussd == nil {
		var complete bool
		if text, complete, err = l.reasm.take(from, part, now); err != nil {
			about(l.quiet.event("reassembly", l.log.Warn())).Err(err).Msg("smpp concatenated MO part refused")
			return linkRefusal(err)
		}
		if !complete {
			return StatusOK // kept in memory; see the Link comment
		}
	}
	m := MO{Link: l.cfg.Name, From: from, To: to, Text: text, Received: now, USSD: ussd}
	if err := l.h.HandleMO(ctx, m); err != nil {
		about(l.quiet.event("mo", l.log.Error())).Err(err).Msg("smpp MO handler failed; SMSC will redeliver")
		return StatusRxTempAppn
	}
	if ussd == nil {
		l.reasm.finish(from, part)
	}
	return StatusOK
}

// messageStates names the message_state TLV values as receipts spell them.
var messageStates = map[byte]string{
	1: "ENROUTE", 2: "DELIVRD", 3: "EXPIRED", 4: "DELETED",
	5: "UNDELIV", 6: "ACCEPTD", 7: "UNKNOWN", 8: "REJECTD",
}

// parseReceipt reads a delivery receipt: the receipted_message_id and message_state TLVs
// when present, otherwise the de-facto standard text of SMPP 3.4 Appendix B,
// "id:IIII sub:SSS dlvrd:DDD submit date:YYMMDDhhmm done date:YYMMDDhhmm stat:DDDDDDD err:E text:...".
func parseReceipt(coding uint8, sm []byte, tlv pdutlv.Map) Receipt {
	text := string(sm)
	if p, err := Decode(coding, 0, sm, nil); err == nil {
		text = p.Text
	}
	var r Receipt
	r.MessageID = receiptField(text, "id")
	r.Status = strings.ToUpper(receiptField(text, "stat"))
	r.Err = receiptField(text, "err")
	if t, ok := tlv[tagReceiptedMessageID]; ok {
		if id := strings.TrimRight(string(t.Bytes()), "\x00"); id != "" {
			r.MessageID = id
		}
	}
	if t, ok := tlv[tagMessageState]; ok && len(t.Bytes()) == 1 {
		if st, ok := messageStates[t.Bytes()[0]]; ok {
			r.Status = st
		}
	}
	if r.Status == "" {
		r.Status = "UNKNOWN"
	}
	return r
}

// receiptField returns the value of "key:" in a receipt text: the first occurrence at
// the start or after a space, up to the next space. Keys are matched without case.
func receiptField(text, key string) string {
	lower := asciiLower(text)
	key += ":"
	for i := 0; ; {
		j := strings.Index(lower[i:], key)
		if j < 0 {
			return ""
		}
		j += i
		if j == 0 || lower[j-1] == ' ' {
			v := text[j+len(key):]
			if k := strings.IndexByte(v, ' '); k >= 0 {
				v = v[:k]
			}
			return v
		}
		i = j + 1
	}
}

// asciiLower lowers A-Z only, so that every byte keeps its offset: strings.ToLower
// turns invalid UTF-8 into U+FFFD, three bytes, and the offsets found in its result
// would no longer index text (a receipt from a broken SMSC then panicked).
func asciiLower(s string) string {
	b := []byte(s)
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}

// Submit sends m to its recipient as one or more submit_sm (split by Encode), waiting
// for the TPS limiter and a window slot for each, and returns the SMSC's message ids of
// all parts. With m.USSD set the text goes as one submit_sm carrying ussd_service_op
// (and its_session_info when given), never split. It fails with ErrNotBound while the
// link is down and with a *StatusError when the SMSC refuses; see IsTemporary.
//
// A throttling answer (ESME_RTHROTTLED, ESME_RMSGQFUL) pauses every submit_sm of the
// link, 0.5 s at first and doubling while the SMSC keeps refusing, and the part is sent
// again, up to four times, before Submit returns the refusal. The SMSC did not take a
// refused part, so sending it again duplicates nothing.
//
// After a part fails the earlier parts are already sent: a retry sends them again with
// the same concatenation reference, which phones ignore as duplicates. A response
// timeout (ErrTimeout) or a lost connection (ErrConnLost) leaves the SMSC's decision
// unknown; see MT.Late and Sender.
func (l *Link) Submit(ctx context.Context, m MT) ([]string, error) {
	to, from := normalizeAddr(m.To), normalizeAddr(m.From)
	if to == "" || len(to) > 20 {
		l.failed.Add(1)
		return nil, fmt.Errorf("smpp: %s: %w %q", l.cfg.Name, ErrBadAddress, mask.MSISDN(to))
	}
	if l.txSession() == nil {
		l.metrics.submitError("not_bound")
		l.failed.Add(1)
		return nil, fmt.Errorf("smpp: %s: %w", l.cfg.Name, ErrNotBound)
	}
	segs := segmentsOf(to, m)
	ids := make([]string, 0, len(segs))
	for i, seg := range segs {
		var late func(pdu.Body)
		if i == len(segs)-1 && m.Late != nil {
			late = l.lateHook(append([]string(nil), ids...), m.Late)
		}
		id, err := l.submitSegment(ctx, to, from, seg, m, late)
		if err != nil {
			l.metrics.submitError(errorLabel(err))
			l.failed.Add(1)
			return ids, fmt.Errorf("smpp: %s: part %d/%d to %s: %w", l.cfg.Name, i+1, len(segs), mask.MSISDN(to), err)
		}
		l.metrics.message("out")
		l.submitted.Add(1)
		ids = append(ids, id)
	}
	return ids, nil
}

// segmentsOf encodes m's text: one unsplit segment for USSD, otherwise concatenated
// parts whose reference is derived from the recipient and the text.
func segmentsOf(to string, m MT) []Segment {
	if m.USSD != nil {
		return []Segment{encodeWhole(m.Text)}
	}
	return Encode(m.Text, concatRef(to, m.Text))
}

// lateHook returns the function that takes a submit_sm_resp arriving after its
// timeout: an OK answer completes the message with the earlier parts' ids.
func (l *Link) lateHook(earlier []string, done func([]string)) func(pdu.Body) {
	return func(resp pdu.Body) {
		if st := uint32(resp.Header().Status); st != 0 || resp.Header().ID == pdu.GenericNACKID {
			l.log.Info().Uint32("status", st).Msg("smpp late submit_sm_resp refused the message; its retry stands")
			return
		}
		l.metrics.message("out")
		l.submitted.Add(1)
		l.log.Info().Msg("smpp late submit_sm_resp accepted the message")
		done(append(earlier, fieldString(resp.Fields(), pdufield.MessageID)))
	}
}

// submitSegment sends one part, pausing and sending again while the SMSC throttles.
func (l *Link) submitSegment(ctx context.Context, to, from string, seg Segment, m MT, late func(pdu.Body)) (string, error) {
	for attempt := 0; ; attempt++ {
		if err := l.waitPause(ctx); err != nil {
			return "", err
		}
		id, err := l.submitOnce(ctx, to, from, seg, m, late)
		var se *StatusError
		if errors.As(err, &se) && (se.Status == StatusThrottled || se.Status == StatusMsgQFul) {
			l.throttled.Add(1)
			l.pause()
			if attempt < throttleRetries {
				l.metrics.submitError(errorLabel(err))
				continue
			}
			return "", err
		}
		if err == nil {
			l.pmu.Lock()
			l.pauseStep = 0
			l.pmu.Unlock()
		}
		return id, err
	}
}

// pause holds back every submit_sm of the link after a throttling answer. Answers to
// submit_sm sent before the pause began do not lengthen it: only a refusal after a
// pause has run out doubles the next one.
func (l *Link) pause() {
	l.pmu.Lock()
	defer l.pmu.Unlock()
	now := time.Now()
	if now.Before(l.pauseUntil) {
		return
	}
	l.pauseStep = min(max(2*l.pauseStep, l.throttlePause), max(maxThrottlePause, l.throttlePause))
	l.pauseUntil = now.Add(l.pauseStep)
	l.log.Warn().Dur("pause", l.pauseStep).Msg("smpp SMSC throttles; pausing submit_sm")
}

// waitPause returns once the link is not paused for throttling, or when ctx ends.
func (l *Link) waitPause(ctx context.Context) error {
	for {
		l.pmu.Lock()
		d := time.Until(l.pauseUntil)
		l.pmu.Unlock()
		if d <= 0 {
			return nil
		}
		t := time.NewTimer(d)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		}
	}
}

// submitOnce sends one submit_sm and waits for its response.
func (l *Link) submitOnce(ctx context.Context, to, from string, seg Segment, m MT, late func(pdu.Body)) (string, error) {
	if err := l.limiter.Wait(ctx); err != nil {
		return "", err
	}
	select {
	case l.window <- struct{}{}:
	case <-ctx.Done():
		return "", ctx.Err()
	}
	l.metrics.inFlight(1)
	defer func() { <-l.window; l.metrics.inFlight(-1) }()
	s := l.txSession()
	if s == nil {
		return "", ErrNotBound
	}
	tlvs := pdutlv.Fields{}
	if m.USSD != nil {
		tlvs[tagUssdServiceOp] = m.USSD.ServiceOp
		if len(m.USSD.SessionInfo) > 0 {
			tlvs[tagItsSessionInfo] = m.USSD.SessionInfo
		}
	}
	if m.Ref != 0 {
		tlvs[tagUserMessageRef] = []byte{byte(m.Ref >> 8), byte(m.Ref)}
	}
	sm := seg.ShortMessage
	if len(sm) > 254 { // longer than sm_length can say: message_payload carries it
		tlvs[tagMessagePayload] = sm
		sm = nil
	}
	p := pdu.NewSubmitSM(tlvs)
	f := p.Fields()
	setAddressing(f, from, to, seg)
	var reg uint8
	if m.Receipt {
		reg = 0x01 // SMSC delivery receipt on success or failure
	}
	f.Set(pdufield.RegisteredDelivery, reg)
	f.Set(pdufield.ShortMessage, sm)
	resp, err := s.requestLate(ctx, p, late, l.lateWindow)
	if err != nil {
		return "", err
	}
	if st := uint32(resp.Header().Status); st != 0 || resp.Header().ID == pdu.GenericNACKID {
		if st == 0 {
			st = StatusSysErr
		}
		return "", &StatusError{Command: "submit_sm", Status: st}
	}
	return fieldString(resp.Fields(), pdufield.MessageID), nil
}

// txSession returns the session submit_sm goes over, or nil when not bound.
func (l *Link) txSession() *session {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.tx
}

// encodeWhole encodes text as one unsplit segment (USSD): GSM 7-bit when it fits,
// otherwise UCS-2.
func encodeWhole(text string) Segment {
	if septets, ok := gsmSeptets(text); ok {
		return Segment{DataCoding: CodingGSM7, ShortMessage: septets}
	}
	return Segment{DataCoding: CodingUCS2, ShortMessage: ucs2Bytes(text)}
}

// concatRef derives the concatenation reference from the recipient and the text, so
// that a retried message carries the same reference and a phone that got some parts the
// first time ignores them as duplicates instead of showing a broken message.
func concatRef(to, text string) uint8 {
	h := fnv.New32a()
	h.Write([]byte(to))
	h.Write([]byte{0})
	h.Write([]byte(text))
	return uint8(h.Sum32())
}

// addrType chooses TON and NPI for an address: alphanumeric (5/0), international
// MSISDN (1/1), or a short code (0 unknown / 1 ISDN).
func addrType(addr string) (ton, npi uint8) {
	for _, c := range addr {
		if c < '0' || c > '9' {
			return 5, 0
		}
	}
	if len(addr) > 8 {
		return 1, 1
	}
	return 0, 1
}

// normalizeAddr strips spaces and a leading '+'.
func normalizeAddr(a string) string {
	return strings.TrimPrefix(strings.TrimSpace(a), "+")
}

// errorLabel names an error for the submit_errors metric.
func errorLabel(err error) string {
	var se *StatusError
	switch {
	case errors.As(err, &se):
		return fmt.Sprintf("0x%08x", se.Status)
	case errors.Is(err, ErrNotBound):
		return "not_bound"
	case errors.Is(err, ErrTimeout):
		return "timeout"
	case errors.Is(err, ErrConnLost):
		return "conn_lost"
	default:
		return "other"
	}
}

func fieldString(f pdufield.Map, k pdufield.Name) string {
	if v, ok := f[k]; ok && v != nil {
		return v.String()
	}
	return ""
}

func fieldByte(f pdufield.Map, k pdufield.Name) uint8 {
	if v, ok := f[k]; ok && v != nil {
		if b := v.Bytes(); len(b) > 0 {
			return b[0]
		}
	}
	return 0
}

func fieldBytes(f pdufield.Map, k pdufield.Name) []byte {
	if v, ok := f[k]; ok && v != nil {
		return v.Bytes()
	}
	return nil
}

// linkMetrics are one link's Prometheus series; a nil *linkMetrics records nothing.
type linkMetrics struct {
	in, out      prometheus.Counter
	up, inflight prometheus.Gauge
	submitErrors *prometheus.CounterVec
	link         string
}

// newLinkMetrics registers the package's collectors with reg (reusing them when another
// link registered them already) and returns this link's series.
func newLinkMetrics(reg prometheus.Registerer, link string, log zerolog.Logger) *linkMetrics {
	if reg == nil {
		return nil
	}
	messages := register(reg, log, prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "payswitch_smpp_messages_total",
		Help: "Short messages over SMPP links: in = deliver_sm received, out = submit_sm accepted.",
	}, []string{"link", "direction"}))
	up := register(reg, log, prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "payswitch_smpp_link_up",
		Help: "1 while the SMPP link is bound.",
	}, []string{"link"}))
	errs := register(reg, log, prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "payswitch_smpp_submit_errors_total",
		Help: "Failed submit_sm (deliver_sm for the SMPP server's accounts) by command status (hex) or cause.",
	}, []string{"link", "status"}))
	window := register(reg, log, prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "payswitch_smpp_window_in_flight",
		Help: "Requests awaiting their response on the SMPP link (its window in use).",
	}, []string{"link"}))
	m := &linkMetrics{
		in:           messages.WithLabelValues(link, "in"),
		out:          messages.WithLabelValues(link, "out"),
		up:           up.WithLabelValues(link),
		inflight:     window.WithLabelValues(link),
		submitErrors: errs,
		link:         link,
	}
	m.up.Set(0)
	m.inflight.Set(0)
	return m
}

// register registers c, or returns the equal collector registered before. Another
// conflict leaves c unregistered: the link works, its series are just not exported.
func register[C prometheus.Collector](reg prometheus.Registerer, log zerolog.Logger, c C) C {
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if existing, ok := are.ExistingCollector.(C); ok {
				return existing
			}
		}
		log.Error().Err(err).Msg("smpp metrics not registered")
	}
	return c
}

func (m *linkMetrics) message(direction string) {
	if m == nil {
		return
	}
	if direction == "in" {
		m.in.Inc()
	} else {
		m.out.Inc()
	}
}

func (m *linkMetrics) setUp(up bool) {
	if m == nil {
		return
	}
	if up {
		m.up.Set(1)
	} else {
		m.up.Set(0)
	}
}

func (m *linkMetrics) inFlight(delta float64) {
	if m == nil {
		return
	}
	m.inflight.Add(delta)
}

func (m *linkMetrics) submitError(status string) {
	if m == nil {
		return
	}
	m.submitErrors.WithLabelValues(m.link, status).Inc()
}

// setAddressing fills the fields that submit_sm and deliver_sm share: both addresses with
// their TON/NPI, and the segment's esm_class and data_coding.
func setAddressing(f pdufield.Map, from, to string, seg Segment) {
	srcTON, srcNPI := addrType(from)
	dstTON, dstNPI := addrType(to)
	f.Set(pdufield.SourceAddrTON, srcTON)
	f.Set(pdufield.SourceAddrNPI, srcNPI)
	f.Set(pdufield.SourceAddr, from)
	f.Set(pdufield.DestAddrTON, dstTON)
	f.Set(pdufield.DestAddrNPI, dstNPI)
	f.Set(pdufield.DestinationAddr, to)
	f.Set(pdufield.ESMClass, seg.ESMClass)
	f.Set(pdufield.DataCoding, seg.DataCoding)
}
