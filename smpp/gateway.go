package smpp

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fiorix/go-smpp/smpp/pdu"
	"github.com/fiorix/go-smpp/smpp/pdu/pdufield"
	"github.com/payswitch/payswitch/smpp/server"
	"github.com/payswitch/payswitch/store"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/payswitch/payswitch/internal/logthrottle"
	"github.com/payswitch/payswitch/internal/mask"
)

// Gateway defaults for zero GatewayConfig fields.
const (
	DefaultMaxBinds = 4
	DefaultPinTTL   = 30 * 24 * time.Hour
	DefaultPinGrace = time.Minute

	// GatewayTargetPrefix starts the name of a Gateway account as a route target, as
	// MO.Link and as the link the outbox records: "server:aggregator-x".
	GatewayTargetPrefix = "server:"

	statusSubmitFail uint32 = 0x45 // ESME_RSUBMITFAIL: the text cannot be read
)

// GatewaySchema holds which Gateway account each MSISDN last wrote through, so that the
// switch's answers (ordinary outbox SMS: the engine knows no channel) go back the same
// way, after a restart too (updated_at is Unix microseconds), and the delivery receipts
// owed to the accounts (gateway_receipt.go). Pass it to store.Open or store.OpenPostgres
// (several nodes on one PostgreSQL database: gateway_postgres.go).
var GatewaySchema = store.Schema{Component: "smpp_server", Postgres: gatewayPostgresMigrations, Migrations: []string{`
CREATE TABLE smpp_server_pins (
	msisdn     TEXT PRIMARY KEY,
	system_id  TEXT NOT NULL,
	updated_at INTEGER NOT NULL
) STRICT, WITHOUT ROWID;
`, receiptMigration}}

// GatewayAccount is an ESME allowed to bind to the Gateway. An account with an empty
// password is disabled: its binds are refused as if it did not exist.
type GatewayAccount struct {
	SystemID, Password string
	MaxBinds           int // simultaneous binds; 0: GatewayConfig.MaxBinds
	// Prefixes are the MSISDN prefixes of the numbers the account may send from; a
	// submit_sm from any other source_addr is refused with ESME_RINVSRCADR. None: the
	// account may send from no number at all.
	Prefixes []string
}

// GatewayConfig configures the Gateway.
type GatewayConfig struct {
	Listen    string // host:port
	Shortcode string // the destination of every submit_sm, but see USSDServiceCode
	// USSDServiceCode (e.g. "*384#"), when set, is also accepted as the destination of a
	// submit_sm that carries ussd_service_op: USSD relayed by an aggregator.
	USSDServiceCode string
	Accounts        []GatewayAccount
	MaxBinds        int // default per account; 0: DefaultMaxBinds
	// Window is how many deliver_sm may await a response per account; 0: DefaultWindow.
	Window int
	// EnquireLink is how often each bound session is probed (0: DefaultEnquireLink);
	// RespTimeout how long a deliver_sm waits for its response (0: DefaultRespTimeout).
	EnquireLink, RespTimeout time.Duration
	// PinTTL is how long an MSISDN stays pinned to the account it last wrote through;
	// after it, its MT follow the prefix routes again. 0: DefaultPinTTL.
	PinTTL time.Duration
	// PinGrace is how long after its creation an answer to a pinned MSISDN waits for the
	// account to have a session that can take it, before the Sender sends it by the
	// carrier route instead. 0: DefaultPinGrace.
	PinGrace time.Duration
}

// Gateway is the switch's own SMPP server, for carriers and aggregators that bind to us
// as ESMEs (contract section 9). Each account binds with its system_id and password (a
// wrong password gets ESME_RINVPASWD, an unknown system_id ESME_RINVSYSID, a bind
// beyond the account's max_binds ESME_RALYBND; smpp/server refuses everything before a
// bind with ESME_RINVBNDSTS and answers enquire_link and unbind).
//
// A submit_sm to the shortcode is an MO from its source_addr, which must start with one
// of the account's prefixes (ESME_RINVSRCADR otherwise: an account chooses what it
// writes there). It goes to the same Handler.HandleMO as the links' MO, with MO.Link
// "server:<system_id>", and is answered only once the handler has persisted it
// (ESME_RX_T_APPN when it failed, so that the ESME sends it again). Before that, the
// MSISDN is pinned to the account (GatewaySchema). Any other destination gets
// ESME_RINVDSTADR, except the USSD service code for a submit_sm carrying
// ussd_service_op; a ussd_service_op the menus do not take gets ESME_RINVOPTPARAMVAL.
// Nothing is answered ESME_ROK without effect, and every refusal is logged at info
// with the account (see refusal). Parts of a concatenated MO are acknowledged as they arrive and kept
// in memory until the last, as on a Link, within the Reassembler's caps
// (gatewayRefusal beyond them).
//
// The switch's answers leave through the outbox like every SMS. The Gateway is an
// Affinity for the Sender: an MSISDN pinned to an account gets its MT as deliver_sm on
// a bound receiver or transceiver session of that account, within the rules of
// Sender.route (never a code, at most PinGrace while no session can take it).
// Delivery receipts do not exist for deliver_sm; the outbox records a generated message
// id per part. A submit_sm with registered_delivery gets its receipt as an SMSC would
// send it (gateway_receipt.go).
type Gateway struct {
	cfg      GatewayConfig
	db       *store.DB
	h        Handler
	log      zerolog.Logger
	srv      *server.Server
	accounts map[string]*account // enabled accounts by system_id; fixed after NewGateway
	order    []*account          // in configuration order
	reasm    *Reassembler
	idBase   string // random per start: generated message ids never repeat across runs
	nextID   atomic.Uint64
	now      func() time.Time      // the clock of pins and bind throttling; tests move it
	quiet    *logthrottle.Throttle // refusals an ESME can repeat at will
	guard    *bindThrottle         // failed binds by remote address
	decoy    [32]byte              // compared with the password of a bind to an unknown account
	pg       bool                  // on PostgreSQL, shared with other nodes (gateway_postgres.go)
	// receiptPoll is how often each account's receipt sender looks for receipts due
	// without being woken: receiptRetry on SQLite, receiptPollPostgres on PostgreSQL
	// (other nodes record receipts too).
	receiptPoll time.Duration

	mu     sync.Mutex // guards ln, stop and served
	ln     net.Listener
	stop   context.CancelFunc
	served chan struct{} // closed when Serve and the sweeper have returned
}

// NewGateway returns a Gateway that is not listening until Start. db must have been
// opened with GatewaySchema; reg may be nil.
func NewGateway(cfg GatewayConfig, db *store.DB, h Handler, log zerolog.Logger, reg prometheus.Registerer) (*Gateway, error) {
	cfg.Shortcode = normalizeAddr(cfg.Shortcode)
	if cfg.Shortcode == "" {
		return nil, errors.New("smpp: gateway: no shortcode")
	}
	if cfg.MaxBinds <= 0 {
		cfg.MaxBinds = DefaultMaxBinds
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
	if cfg.PinTTL <= 0 {
		cfg.PinTTL = DefaultPinTTL
	}
	if cfg.PinGrace <= 0 {
		cfg.PinGrace = DefaultPinGrace
	}
	var rnd [4]byte
	if _, err := rand.Read(rnd[:]); err != nil {
		return nil, fmt.Errorf("smpp: gateway: random id base: %w", err)
	}
	log = log.With().Str("component", "smpp_server").Logger()
	g := &Gateway{
		cfg:      cfg,
		db:       db,
		h:        h,
		log:      log,
		accounts: make(map[string]*account),
		reasm:    NewReassembler(reassemblyTimeout),
		idBase:   hex.EncodeToString(rnd[:]),
		now:      time.Now,
		quiet:    logthrottle.New(logthrottle.Interval, nil),
		guard:    newBindThrottle(),
		pg:       db.Dialect() == store.Postgres,
	}
	g.receiptPoll = receiptRetry
	if g.pg {
		g.receiptPoll = receiptPollPostgres
	}
	if _, err := rand.Read(g.decoy[:]); err != nil {
		return nil, fmt.Errorf("smpp: gateway: random decoy: %w", err)
	}
	for _, ac := range cfg.Accounts {
		if _, dup := g.accounts[ac.SystemID]; dup {
			return nil, fmt.Errorf("smpp: gateway: account %q twice", ac.SystemID)
		}
		if ac.Password == "" {
			log.Warn().Str("system_id", ac.SystemID).Msg("smpp server account without password is disabled")
			continue
		}
		maxBinds := ac.MaxBinds
		if maxBinds <= 0 {
			maxBinds = cfg.MaxBinds
		}
		if len(ac.Prefixes) == 0 {
			log.Warn().Str("system_id", ac.SystemID).Msg("smpp server account without prefixes: every submit_sm it sends is refused")
		}
		name := GatewayTargetPrefix + ac.SystemID
		a := &account{
			g:           g,
			systemID:    ac.SystemID,
			name:        name,
			password:    sha256.Sum256([]byte(ac.Password)),
			maxBinds:    maxBinds,
			prefixes:    normalizePrefixes(ac.Prefixes),
			window:      make(chan struct{}, cfg.Window),
			receiptsDue: make(chan struct{}, 1),
			delivered:   make(map[string]struct{}),
			metrics:     newLinkMetrics(reg, name, log),
		}
		g.accounts[ac.SystemID] = a
		g.order = append(g.order, a)
	}
	g.srv = &server.Server{
		Handler:     (*gatewayHandler)(g),
		Log:         log,
		SystemID:    "payswitch",
		EnquireLink: cfg.EnquireLink,
		RespTimeout: cfg.RespTimeout,
	}
	return g, nil
}

// Start listens on the configured address and serves in the background until Close.
func (g *Gateway) Start() error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.ln != nil {
		return errors.New("smpp: gateway: started twice")
	}
	ln, err := net.Listen("tcp", g.cfg.Listen)
	if err != nil {
		return fmt.Errorf("smpp: gateway: listen %s: %w", g.cfg.Listen, err)
	}
	g.ln = ln
	ctx, stop := context.WithCancel(context.Background())
	g.stop = stop
	g.served = make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		if err := g.srv.Serve(ln); err != nil && !errors.Is(err, server.ErrServerClosed) {
			g.log.Error().Err(err).Msg("smpp server stopped")
		}
	})
	wg.Go(func() { g.sweep(ctx) })
	for _, a := range g.order {
		wg.Go(func() { a.sendReceipts(ctx) })
		a.wakeReceipts() // those owed before a restart
	}
	go func() { wg.Wait(); close(g.served) }()
	g.log.Info().Str("listen", ln.Addr().String()).Int("accounts", len(g.order)).Msg("smpp server listening")
	return nil
}

// sweep drops incomplete concatenated MO and settles their receipts now and then.
func (g *Gateway) sweep(ctx context.Context) {
	t := time.NewTicker(time.Minute)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			if n := g.reasm.Sweep(now); n > 0 {
				g.log.Warn().Int("sets", n).Msg("smpp server dropped incomplete concatenated MO")
			}
			g.sweepReceipts(ctx, g.now())
		}
	}
}

// Addr is the address listened on, or "" before Start.
func (g *Gateway) Addr() string {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.ln == nil {
		return ""
	}
	return g.ln.Addr().String()
}

// Close stops accepting binds, unbinds every session, waits for the MO being handled
// and marks every account closed. It is idempotent.
func (g *Gateway) Close() error {
	err := g.srv.Close()
	g.mu.Lock()
	stop, served := g.stop, g.served
	g.mu.Unlock()
	if stop != nil {
		stop()
		<-served
	}
	// The server is closed: no answer is written any more, and those written last have
	// their receipts made due here (on PostgreSQL; nothing is waiting on SQLite).
	ctx, cancel := context.WithTimeout(context.Background(), handlerTimeout)
	defer cancel()
	for _, a := range g.order {
		a.publishReleased(ctx)
	}
	for _, a := range g.order {
		a.mu.Lock()
		a.closed = true
		a.mu.Unlock()
		a.metrics.setUp(false)
	}
	return err
}

// Targets returns one route target per enabled account, named "server:<system_id>".
func (g *Gateway) Targets() []Target {
	ts := make([]Target, 0, len(g.order))
	for _, a := range g.order {
		ts = append(ts, a)
	}
	return ts
}

// TargetFor returns the pin of msisdn: the account it last wrote through within the
// pin TTL, provided that account is still configured and still declares a prefix of
// msisdn (a pin written before a prefix was removed is not followed). A zero Pin for
// none.
func (g *Gateway) TargetFor(ctx context.Context, msisdn string) (Pin, error) {
	if len(g.order) == 0 {
		return Pin{}, nil
	}
	msisdn = normalizeAddr(msisdn)
	var sid string
	err := g.db.Reader().QueryRowContext(ctx, `SELECT system_id FROM smpp_server_pins
		WHERE msisdn = ? AND updated_at >= ?`,
		msisdn, g.now().Add(-g.cfg.PinTTL).UnixMicro()).Scan(&sid)
	if errors.Is(err, sql.ErrNoRows) {
		return Pin{}, nil
	}
	if err != nil {
		return Pin{}, fmt.Errorf("smpp: gateway: pin of %s: %w", mask.MSISDN(msisdn), err)
	}
	a := g.accounts[sid]
	if a == nil {
		return Pin{}, nil
	}
	n := a.within(msisdn)
	if n < 0 {
		return Pin{}, nil
	}
	return Pin{Target: a.name, Prefix: n, Grace: g.cfg.PinGrace}, nil
}

// Stats returns each enabled account's state and counters, in configuration order.
func (g *Gateway) Stats() []LinkStats {
	out := make([]LinkStats, 0, len(g.order))
	for _, a := range g.order {
		out = append(out, a.stats())
	}
	return out
}

// pin records that msisdn wrote through account sid. An unchanged pin is written again
// only when a tenth of its TTL has passed, so most MO cost one read.
func (g *Gateway) pin(ctx context.Context, msisdn, sid string) error {
	now := g.now()
	var cur string
	var at int64
	err := g.db.Reader().QueryRowContext(ctx, `SELECT system_id, updated_at FROM smpp_server_pins WHERE msisdn = ?`,
		msisdn).Scan(&cur, &at)
	if err == nil && cur == sid && now.Sub(time.UnixMicro(at)) < g.cfg.PinTTL/10 {
		return nil
	}
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("smpp: gateway: read pin: %w", err)
	}
	err = g.db.Write(ctx, func(tx store.Tx) error {
		_, err := tx.ExecContext(ctx, g.pinSQL(), msisdn, sid, now.UnixMicro())
		return err
	})
	if err != nil {
		return fmt.Errorf("smpp: gateway: pin %s: %w", mask.MSISDN(msisdn), err)
	}
	return nil
}

// newID returns a message id for a submit_sm_resp or a sent deliver_sm: unique across
// restarts (random base) and at most 65 characters as SMPP 3.4 allows.
func (g *Gateway) newID() string {
	return fmt.Sprintf("%s%012x", g.idBase, g.nextID.Add(1))
}

// gatewayHandler is the Gateway seen as a server.Handler; a separate type keeps those
// methods out of Gateway's API.
type gatewayHandler Gateway

var _ server.Handler = (*gatewayHandler)(nil)

var _ Affinity = (*Gateway)(nil)

// HandlePDU takes submit_sm; every other request is answered ESME_RINVCMDID.
func (h *gatewayHandler) HandlePDU(ctx context.Context, s *server.Session, p pdu.Body) pdu.Body {
	g := (*Gateway)(h)
	a := g.accounts[s.SystemID()]
	if a == nil { // cannot happen: only accounts bind
		return nil
	}
	if p.Header().ID != pdu.SubmitSMID {
		g.refusal(a, "cmd", g.log).Str("system_id", a.systemID).Str("remote", s.RemoteAddr()).
			Stringer("command_id", p.Header().ID).Msg("smpp server request other than submit_sm refused")
		return nil
	}
	resp := pdu.NewSubmitSMResp()
	if s.BindType() == server.BindReceiver {
		g.refusal(a, "bind", g.log).Str("system_id", a.systemID).Str("remote", s.RemoteAddr()).
			Msg("smpp server submit_sm on a receiver bind refused")
		resp.Header().Status = pdu.Status(server.StatusInvBndSts)
		return resp
	}
	// The MO is finished and answered even when the session ends meanwhile, as on a
	// Link: an MO persisted and then refused would come again as a duplicate.
	hctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), handlerTimeout)
	defer cancel()
	// The id is chosen first: a receipt owed for the submit_sm is recorded under it
	// before the response gives it to the ESME.
	id := g.newID()
	status := g.submit(hctx, a, p, id)
	if status != StatusOK {
		resp.Header().Status = pdu.Status(status)
		return resp
	}
	resp.Fields().Set(pdufield.MessageID, id)
	return resp
}

// submit turns a submit_sm of account a into an MO and returns the status to answer.
// id is the message id the answer gives when it is ESME_ROK.
func (g *Gateway) submit(ctx context.Context, a *account, p pdu.Body, id string) uint32 {
	a.received.Add(1)
	a.metrics.message("in")
	f, tlv := p.Fields(), p.TLVFields()
	to := normalizeAddr(fieldString(f, pdufield.DestinationAddr))
	from := normalizeAddr(fieldString(f, pdufield.SourceAddr))
	log := g.log.With().Str("system_id", a.systemID).Str("from", mask.MSISDN(from)).Logger()
	var ussd *USSDInfo
	if op, ok := tlv[tagUssdServiceOp]; ok {
		// Refused rather than read as an SMS or passed to menus that drop it: either
		// way the ESME would be told ESME_ROK for a message that had no effect.
		if len(op.Bytes()) != 1 {
			g.refusal(a, "ussd-len", log).Int("length", len(op.Bytes())).
				Msg("smpp server submit_sm with a ussd_service_op that is not one octet refused")
			return server.StatusInvParLen
		}
		if !ussdFromPhone(op.Bytes()[0]) {
			g.refusal(a, "ussd-op", log).Uint8("ussd_service_op", op.Bytes()[0]).
				Msg("smpp server submit_sm with a ussd_service_op the menus do not take refused")
			return server.StatusInvOptParamVal
		}
		ussd = &USSDInfo{ServiceOp: op.Bytes()[0]}
		if si, ok := tlv[tagItsSessionInfo]; ok {
			ussd.SessionInfo = append([]byte(nil), si.Bytes()...)
		}
	}
	if to != g.cfg.Shortcode && (ussd == nil || to == "" || to != normalizeAddr(g.cfg.USSDServiceCode)) {
		g.refusal(a, "dstadr", log).Str("to", mask.MSISDN(to)).Msg("smpp server submit_sm to another destination refused")
		return server.StatusInvDstAdr
	}
	if !isMSISDN(from) {
		g.refusal(a, "srcadr-nan", log).Msg("smpp server submit_sm from a source_addr that is not a number refused")
		return server.StatusInvSrcAdr
	}
	// The account chooses source_addr: unchecked, any account could write "from" any
	// number, and have that number's answers and codes sent to it.
	if a.within(from) < 0 {
		g.refusal(a, "srcadr", log).Msg("smpp server submit_sm from a source_addr outside the account's prefixes refused")
		return server.StatusInvSrcAdr
	}
	sm := fieldBytes(f, pdufield.ShortMessage)
	if len(sm) == 0 {
		if pl, ok := tlv[tagMessagePayload]; ok {
			sm = pl.Bytes()
		}
	}
	coding := fieldByte(f, pdufield.DataCoding)
	part, err := Decode(coding, fieldByte(f, pdufield.ESMClass), sm, sarOf(tlv))
	if err != nil {
		g.refusal(a, "decode", log).Err(err).Uint8("data_coding", coding).Msg("smpp server undecodable submit_sm refused")
		return statusSubmitFail
	}
	now := g.now()
	key := a.systemID + "\x00" + from
	text := part.Text
	want := receiptWanted(f)
	if ussd == nil {
		var complete bool
		if text, complete, err = g.reasm.take(key, part, now); err != nil {
			g.quiet.Event("reassembly", log.Warn()).Err(err).Msg("smpp server concatenated MO part refused")
			return gatewayRefusal(err)
		}
		if !complete {
			// Kept in memory, as on a Link; its receipt is owed whatever becomes of it.
			if want != 0 {
				if err := g.owePart(ctx, a, id, from, to, part, want, now); err != nil {
					log.Error().Err(err).Msg("smpp server receipt of a part not recorded; the ESME will send it again")
					return server.StatusXTAppn
				}
			}
			return StatusOK
		}
	}
	// Pin first: the handler's answer may be claimed by the Sender the moment it commits.
	if err := g.pin(ctx, from, a.systemID); err != nil {
		log.Error().Err(err).Msg("smpp server MO not pinned; the ESME will send it again")
		return server.StatusXTAppn
	}
	m := MO{Link: a.name, From: from, To: to, Text: text, Received: now, USSD: ussd}
	if status := g.handleMO(ctx, a, m, id, part, want, log); status != StatusOK {
		return status
	}
	if ussd == nil {
		g.reasm.finish(key, part)
	}
	return StatusOK
}

// refusal returns the info line for a refusal of kind to account a, or nil (zerolog's
// no-op) when the same kind of refusal of the same account was logged within
// logthrottle.Interval: an ESME can repeat a refusal as fast as it can send.
func (g *Gateway) refusal(a *account, kind string, log zerolog.Logger) *zerolog.Event {
	return g.quiet.Event("refused:"+kind+":"+a.systemID, log.Info())
}

// ussdFromPhone reports whether op is a ussd_service_op that the menus act on (see
// ussd.Menu.HandleSMPP): a dialled service code (PSSD or PSSR indication) or the
// user's answer to a screen (USSR confirm). The others are the network's, or confirm
// a notification the switch never sends.
func ussdFromPhone(op uint8) bool {
	return op == USSDPSSDIndication || op == USSDPSSRIndication || op == USSDUSSRConfirm
}

// isMSISDN reports whether a is a phone number: 3 to 20 digits.
func isMSISDN(a string) bool {
	if len(a) < 3 || len(a) > 20 {
		return false
	}
	for _, c := range a {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}
