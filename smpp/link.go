package smpp

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fiorix/go-smpp/smpp/pdu"
	"github.com/fiorix/go-smpp/smpp/pdu/pdutlv"
	"github.com/payswitch/payswitch/internal/logthrottle"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
	"golang.org/x/time/rate"
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
	// USSDPush says the SMSC takes network-initiated USSD on this link: a merchant's
	// request to pay (outbox.PurposeRequestPush) to a number this link serves is
	// pushed to the phone as a USSD screen. Without it such a message is finished
	// unsent.
	USSDPush bool
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
// such as an invalid destination (0x0B), a bad address, bad meta, no route and a
// request push that is too old or that the menus refused are permanent.
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
	return !errors.Is(err, ErrBadAddress) && !errors.Is(err, ErrBadMeta) && !errors.Is(err, ErrNoRoute) &&
		!errors.Is(err, ErrPushExpired) && !errors.Is(err, ErrPushRefused)
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
	quiet   *logthrottle.Throttle // handler failures that repeat with every redelivery
	metrics *linkMetrics          // nil without a registry
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
		quiet: logthrottle.New(logthrottle.Interval, nil),
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

// USSDPush reports whether requests to pay are pushed as USSD screens over this link.
func (l *Link) USSDPush() bool { return l.cfg.USSDPush }

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
