package ussd

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/payswitch/payswitch/store"
	payswitch "github.com/payswitch/payswitch/switch"
	"github.com/payswitch/payswitch/texts"
)

// ErrBadRequest is returned by Step for a request that is not a USSD step at all (no
// session ID, no valid phone number, an oversized text, a session that belongs to
// another phone). Nothing changes; the HTTP handler answers 400.
var ErrBadRequest = errors.New("ussd: bad request")

// Defaults for zero Config fields.
const (
	DefaultServiceCode    = "*384#"
	DefaultSessionTimeout = 180 * time.Second
)

// Limits on what a request may carry. A real session stays far below them.
const (
	maxSessionID = 128  // bytes of a session ID
	maxPhone     = 32   // bytes of a phone number as a transport spells it
	maxText      = 1024 // bytes of a gateway's text (every input of the session)
	maxInputs    = 64   // inputs in a gateway's text
	maxNewInputs = 8    // inputs acted on in one step (a dialled string or typed stars)
	maxInputLen  = 182  // bytes of one input: a USSD message cannot carry more
)

// Engine is what the menus need of the payment engine; *payswitch.Engine has it.
type Engine interface {
	Request(ctx context.Context, r payswitch.Request) (payswitch.Outcome, error)
	Confirm(ctx context.Context, ch payswitch.Channel, msisdn, paymentID, code string) (payswitch.Outcome, error)
	Cancel(ctx context.Context, ch payswitch.Channel, msisdn, paymentID string) (payswitch.Outcome, error)
	Resend(ctx context.Context, ch payswitch.Channel, msisdn, paymentID string) (payswitch.Outcome, error)
	BalanceText(ctx context.Context, msisdn string) (string, error)
	MiniText(ctx context.Context, msisdn string) (string, error)
	Payment(ctx context.Context, id string) (*payswitch.Payment, error)
	Quote(ctx context.Context, merchantCode, productCode string, quantity int64) (payswitch.Quote, error)
	Normalize(msisdn string) (string, error)
	HasAccount(ctx context.Context, msisdn string) (bool, error)
	CodeDigits() int
	Currency() string
}

// Config configures a Menu.
type Config struct {
	// ServiceCode is the code users dial, e.g. "*384#" (config ussd.service_code). Screens
	// name it, and over SMPP a dialled "*384*2*55501#" starts the session with inputs 2
	// and 55501.
	ServiceCode string
	// SessionTimeout is how long a session may sit idle before it is gone (config
	// ussd.session_timeout); default 180 s.
	SessionTimeout time.Duration
	// Texts overrides DefaultTexts by key (config ussd.messages). Unknown keys are an error.
	Texts    map[string]string
	Now      func() time.Time      // nil: time.Now
	Log      zerolog.Logger        // steps that fail are logged, numbers masked
	Registry prometheus.Registerer // nil: no metrics
	// DB, when it is on PostgreSQL, keeps the sessions in its tables (Schema) instead of
	// in memory, so that any node sharing the database continues any session (contract
	// section 13). On SQLite, or nil, sessions stay in memory: one process serves them.
	DB *store.DB
}

// Input is one request of a USSD dialogue, as a transport received it.
type Input struct {
	// SessionID identifies the dialogue. Transports keep theirs apart: the HTTP handler
	// uses "http:" and the gateway's sessionId, HandleSMPP "smpp:" and the number and
	// its_session_info's session number.
	SessionID string
	Phone     string // the caller's number
	// ServiceCode and Network are the gateway's serviceCode and networkCode; logged only.
	ServiceCode, Network string
	// Text is every input of the session so far joined by '*', as gateways send it (empty
	// when the user has just dialled). Step acts only on the inputs it has not seen, so a
	// repeated request changes nothing and answers the same screen.
	Text string
	// Incremental says the transport passes only the newest input, in NewInput (SMPP).
	// A '*' in it separates inputs, as in Text: a user may type "55501*150" at once.
	Incremental bool
	NewInput    string
	// Begin starts the dialogue afresh (SMPP's PSSR indication); with Incremental,
	// NewInput then holds the inputs dialled after the service code, if any.
	Begin bool
}

// Menu runs the USSD menus over the engine. It is safe for concurrent use; Run sweeps
// idle sessions away.
type Menu struct {
	engine      Engine
	texts       *texts.Set
	static      map[string]string // texts that need no payment, rendered once
	serviceBase string            // the service code without '*' and '#': "384"
	timeout     time.Duration
	now         func() time.Time
	log         zerolog.Logger
	sessions    *shards
	pushes      *shards                // sessions of pushed requests (push.go)
	pushSeq     atomic.Uint32          // where the search for a free push session number starts
	decline     Decliner               // nil: the engine cannot decline
	db          *dbTables              // set on PostgreSQL: sessions live there, not in sessions and pushes
	steps       *prometheus.CounterVec // steps by result
}

// New returns the menus for engine. Call Run to sweep idle sessions.
func New(engine Engine, cfg Config) (*Menu, error) {
	if engine == nil {
		return nil, errors.New("ussd: New needs an engine")
	}
	if cfg.ServiceCode == "" {
		cfg.ServiceCode = DefaultServiceCode
	}
	if cfg.SessionTimeout == 0 {
		cfg.SessionTimeout = DefaultSessionTimeout
	}
	if cfg.SessionTimeout < 0 {
		return nil, fmt.Errorf("ussd: session timeout %v: must be > 0", cfg.SessionTimeout)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	tx, err := newTexts(cfg.Texts)
	if err != nil {
		return nil, err
	}
	m := &Menu{
		engine: engine, texts: tx, timeout: cfg.SessionTimeout, now: cfg.Now, log: cfg.Log,
		serviceBase: strings.TrimSuffix(strings.TrimPrefix(cfg.ServiceCode, "*"), "#"),
		sessions:    newShards(maxSessions, maxPerNumber),
		pushes:      newShards(maxPushSessions, maxPushPerNumber),
		steps: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "payswitch_ussd_steps_total",
			Help: "USSD requests by result: continue, end, expired (unknown or idle session), bad_request, error.",
		}, []string{"result"}),
	}
	vars := map[string]string{
		"currency": engine.Currency(), "digits": strconv.Itoa(engine.CodeDigits()),
		"service_code": cfg.ServiceCode, "max_quantity": strconv.Itoa(payswitch.MaxQuantity),
	}
	m.static = make(map[string]string, len(DefaultTexts))
	for k := range DefaultTexts {
		m.static[k] = tx.Render(k, vars)
	}
	m.static["main"] = m.static["title"] + "\n" + m.static["menu"]
	m.decline, _ = engine.(Decliner)
	if cfg.DB != nil && cfg.DB.Dialect() == store.Postgres {
		if m.db, err = newDBTables(cfg.DB); err != nil {
			return nil, err
		}
	}
	if cfg.Registry != nil {
		gauge := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "payswitch_ussd_sessions",
			Help: "USSD sessions in memory, ended ones included until they time out.",
		}, func() float64 { return float64(m.Sessions()) })
		evicted := prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "payswitch_ussd_sessions_evicted_total",
			Help: "USSD sessions forgotten before their end to make room for new ones (per-number or global limit).",
		}, func() float64 { return float64(m.evicted(false)) })
		pushes := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "payswitch_ussd_push_sessions",
			Help: "USSD sessions of requests pushed to phones in memory, ended ones included until they are swept.",
		}, func() float64 { return float64(m.Pushes()) })
		pushesEvicted := prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "payswitch_ussd_push_sessions_evicted_total",
			Help: "USSD push sessions forgotten before their end to make room for new ones (per-number or global limit).",
		}, func() float64 { return float64(m.evicted(true)) })
		for _, c := range []prometheus.Collector{m.steps, gauge, evicted, pushes, pushesEvicted} {
			if err := cfg.Registry.Register(c); err != nil {
				return nil, fmt.Errorf("ussd: register metrics: %w", err)
			}
		}
	}
	return m, nil
}

// Sessions is how many sessions are kept (in memory, or in the database on PostgreSQL).
func (m *Menu) Sessions() int {
	if m.db != nil {
		return m.db.count(m.db.dialogues, m.log)
	}
	return m.sessions.len()
}

// Sweep removes the sessions idle longer than the timeout, and the push sessions idle
// twice as long (see push.go), and returns how many. A payment such a session started
// or was pushed for stays with the engine, which expires it with its code.
func (m *Menu) Sweep() int {
	now := m.now()
	if m.db != nil {
		return m.db.sweep(now, m.timeout, m.log)
	}
	return m.sessions.sweep(now.Add(-m.timeout).UnixNano()) + m.pushes.sweep(now.Add(-2*m.timeout).UnixNano())
}

// evicted is how many sessions (push sessions when push is set) were forgotten to make
// room, by this Menu.
func (m *Menu) evicted(push bool) int64 {
	switch {
	case m.db != nil && push:
		return m.db.pushes.Evicted()
	case m.db != nil:
		return m.db.dialogues.Evicted()
	case push:
		return m.pushes.roster.evicted.Load()
	}
	return m.sessions.roster.evicted.Load()
}

// Run sweeps idle sessions on one ticker until ctx ends. Steps also check idleness, so
// the sweep only frees memory and its period does not change what users see.
func (m *Menu) Run(ctx context.Context) error {
	t := time.NewTicker(min(max(m.timeout/4, time.Second), 30*time.Second))
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			m.Sweep()
		}
	}
}

// End forgets a session, as when the gateway reports that it has ended.
func (m *Menu) End(sessionID string) bool {
	if m.db != nil {
		return m.db.remove(m.db.dialogues, sessionID, m.log)
	}
	return m.sessions.remove(sessionID)
}

// Step answers one request of a dialogue. A request that is not a USSD step is
// ErrBadRequest and changes nothing. When the engine fails, Step returns an END screen
// that says so together with the error, so that the caller can both log and answer.
func (m *Menu) Step(ctx context.Context, in Input) (Screen, error) {
	scr, result, err := m.step(ctx, in)
	m.steps.WithLabelValues(result).Inc()
	return scr, err
}

func (m *Menu) step(ctx context.Context, in Input) (Screen, string, error) {
	if in.SessionID == "" || len(in.SessionID) > maxSessionID || !utf8.ValidString(in.SessionID) {
		return Screen{}, "bad_request", fmt.Errorf("%w: missing or malformed session ID", ErrBadRequest)
	}
	if in.Phone == "" || len(in.Phone) > maxPhone {
		return Screen{}, "bad_request", fmt.Errorf("%w: missing or malformed phone number", ErrBadRequest)
	}
	raw := in.Text
	if in.Incremental {
		raw = in.NewInput
	}
	if len(raw) > maxText {
		return Screen{}, "bad_request", fmt.Errorf("%w: text of %d bytes", ErrBadRequest, len(raw))
	}
	var inputs []string
	if raw != "" || in.Incremental && !in.Begin {
		inputs = strings.Split(raw, "*")
	}
	if len(inputs) > maxInputs || in.Incremental && len(inputs) > maxNewInputs {
		return Screen{}, "bad_request", fmt.Errorf("%w: %d inputs", ErrBadRequest, len(inputs))
	}

	now := m.now()
	cutoff := now.Add(-m.timeout).UnixNano()
	// Only a dial creates a session: an input for a session that is unknown or idle too
	// long (the switch restarted, the user went away) ends the dialogue and changes nothing.
	create := in.Begin || !in.Incremental && len(inputs) == 0
	var phone string // normalised; done once per session, not per step
	var err error
	if create {
		if phone, err = m.normalize(in.Phone); err != nil {
			return Screen{}, "bad_request", err
		}
		if scr, ok := m.unregistered(ctx, phone); ok {
			return scr, "end", nil // nothing to remember
		}
	}
	if m.db != nil {
		return m.stepDB(ctx, in, inputs, create, phone, now)
	}
	var s *session
	var fresh bool
	for {
		s, fresh = m.sessions.open(in.SessionID, phone, cutoff, create, in.Begin)
		if s == nil {
			if _, err := m.normalize(in.Phone); err != nil {
				return Screen{}, "bad_request", err
			}
			return Screen{Text: m.static["session_expired"], End: true}, "expired", nil
		}
		if fresh {
			s.raw = in.Phone
			if s.raw == s.phone {
				s.raw = s.phone // one string, not two
			}
			break
		}
		s.mu.Lock()
		if m.sessions.current(in.SessionID, s) {
			break
		}
		s.mu.Unlock() // swept or replaced while we waited: look again
	}
	defer s.mu.Unlock()
	return m.stepOn(ctx, s, in, inputs, fresh, now)
}

// stepOn answers in, a request with inputs, in s, which the caller holds (locked in
// memory, leased in the database); fresh says the request created s.
func (m *Menu) stepOn(ctx context.Context, s *session, in Input, inputs []string, fresh bool, now time.Time) (Screen, string, error) {
	if in.Phone != s.raw {
		// Another spelling of the same number is the same caller; another number is not.
		if p, err := m.normalize(in.Phone); err != nil || p != s.phone {
			return Screen{}, "bad_request", fmt.Errorf("%w: session of another phone", ErrBadRequest)
		}
	}
	s.seen = now.UnixNano()

	todo := inputs
	if !in.Incremental {
		if !fresh && len(inputs) <= int(s.consumed) {
			// The gateway asks again (a retry, or a request overtaken by a newer one).
			return Screen{Text: s.last, End: s.lastEnd}, result(s.lastEnd), nil
		}
		todo = inputs[s.consumed:]
	}
	if len(todo) > maxNewInputs {
		return Screen{}, "bad_request", fmt.Errorf("%w: %d new inputs at once", ErrBadRequest, len(todo))
	}
	if s.node == nodeDone {
		return Screen{Text: s.last, End: true}, "end", nil
	}
	if !in.Incremental {
		s.consumed = uint16(len(inputs))
	}

	var scr Screen
	if fresh {
		scr = m.show(s, "", m.static["main"], false, nodeMain)
	}
	scr, err := m.act(ctx, s, scr, todo, in.Network, in.ServiceCode)
	if err != nil {
		return scr, "error", err
	}
	return scr, result(scr.End), nil
}

// act advances s, which the caller holds locked, by each of inputs in turn, from the
// screen scr, until one ends the session, and records the screen it ends on. When the
// engine fails it ends the session with temporary_error and returns the error too.
func (m *Menu) act(ctx context.Context, s *session, scr Screen, inputs []string, network, serviceCode string) (Screen, error) {
	var err error
	for _, x := range inputs {
		scr, err = m.advance(ctx, s, x)
		if err != nil {
			m.log.Error().Err(err).Str("phone", payswitch.Mask(s.phone)).Str("network", network).
				Str("service_code", serviceCode).Msg("ussd step failed")
			scr = Screen{Text: m.static["temporary_error"], End: true}
			break
		}
		if scr.End {
			break
		}
	}
	s.shows(scr)
	return scr, err
}

// shows records scr as the screen s shows; s must be locked.
func (s *session) shows(scr Screen) {
	s.last, s.lastEnd = scr.Text, scr.End
	if scr.End {
		// Kept until it times out, to answer a repeat of this request the same way.
		s.node, s.payment, s.field, s.product, s.page = nodeDone, "", "", "", nil
	}
}

// unregistered answers the dial of a number with no account with an END that says so,
// rather than letting the user walk the menu first. A failed look-up lets the dialogue
// go on: the engine refuses a payment of such a number anyway.
func (m *Menu) unregistered(ctx context.Context, phone string) (Screen, bool) {
	has, err := m.engine.HasAccount(ctx, phone)
	if err != nil {
		m.log.Error().Err(err).Str("phone", payswitch.Mask(phone)).Msg("ussd account look-up failed")
		return Screen{}, false
	}
	if has {
		return Screen{}, false
	}
	return Screen{Text: m.static["no_account"], End: true}, true
}

// ownCode reports whether sc, a gateway's serviceCode, is the configured service code:
// "*384#", "384", or the dialled string with its extension, "*384*1#". An empty one is
// not checked: some gateways leave it out.
func (m *Menu) ownCode(sc string) bool {
	base := strings.TrimSuffix(strings.TrimPrefix(strings.TrimSpace(sc), "*"), "#")
	return base == m.serviceBase || strings.HasPrefix(base, m.serviceBase+"*")
}

func (m *Menu) normalize(phone string) (string, error) {
	n, err := m.engine.Normalize(phone)
	if err != nil {
		return "", fmt.Errorf("%w: phone number %q", ErrBadRequest, payswitch.Mask(phone))
	}
	return n, nil
}

func result(end bool) string {
	if end {
		return "end"
	}
	return "continue"
}

// show draws body followed by the option lines opts, paged when too long, and moves s to
// next once the last page is shown. An END screen that needs pages continues until its
// last page.
func (m *Menu) show(s *session, body, opts string, end bool, next node) Screen {
	page, rest, opts, done := cutPage(body, opts, m.static["more"], maxBody)
	if done {
		s.node, s.page = next, nil
		return Screen{Text: page, End: end}
	}
	s.node, s.page = nodePage, &paging{rest: rest, opts: opts, end: end, next: next, shown: page}
	return Screen{Text: page}
}

// ask draws a prompt after what was wrong, if anything.
func (m *Menu) ask(s *session, problem, key string, next node) Screen {
	return m.show(s, problem, m.static[key], false, next)
}

func (m *Menu) end(s *session, text string) Screen { return m.show(s, text, "", true, nodeDone) }

// advance acts on one input at the session's place in the menu.
func (m *Menu) advance(ctx context.Context, s *session, in string) (Screen, error) {
	in = strings.TrimSpace(in)
	if len(in) > maxInputLen || !utf8.ValidString(in) {
		in = "\x00" // answers no prompt; never shown
	}
	bad := m.static["bad_choice"]
	switch s.node {
	case nodeMain:
		switch in {
		case "1":
			return m.ask(s, "", "ask_number", nodeSendNumber), nil
		case "2":
			return m.ask(s, "", "ask_merchant", nodeMerchantCode), nil
		case "3":
			return m.ask(s, "", "airtime_menu", nodeAirtimeChoice), nil
		case "4":
			return m.ask(s, "", "account_menu", nodeAccount), nil
		case "5":
			return m.ask(s, "", "ask_agent", nodeWithdrawAgent), nil
		}
		return m.show(s, joinLines(bad, m.static["title"]), m.static["menu"], false, nodeMain), nil

	case nodeSendNumber, nodeAirtimeNumber, nodeWithdrawAgent:
		n, err := m.engine.Normalize(in)
		if err != nil {
			return m.ask(s, m.static["bad_number"], numberPrompt(s.node), s.node), nil
		}
		s.field = n
		next := nodeSendAmount
		switch s.node {
		case nodeAirtimeNumber:
			next = nodeAirtimeAmount
		case nodeWithdrawAgent:
			next = nodeWithdrawAmount
		}
		return m.ask(s, "", "ask_amount", next), nil

	case nodeMerchantCode:
		if !payswitch.ValidMerchantCode(in) {
			return m.ask(s, m.static["bad_merchant"], "ask_merchant", nodeMerchantCode), nil
		}
		s.field = in
		return m.ask(s, "", "ask_merchant_amount", nodeMerchantAmount), nil

	case nodeSendAmount, nodeMerchantAmount, nodeAirtimeAmount, nodeWithdrawAmount:
		if s.node == nodeMerchantAmount && in == BuyInput {
			return m.ask(s, "", "ask_product", nodeProductCode), nil
		}
		amount, err := payswitch.ParseAmount(in)
		if err != nil {
			return m.ask(s, m.static["bad_amount"], amountPrompt(s.node), s.node), nil
		}
		return m.request(ctx, s, amount)

	case nodeProductCode:
		return m.productCode(ctx, s, in)

	case nodeQuantity:
		return m.quantity(ctx, s, in)

	case nodeBuyConfirm:
		return m.buyChoice(ctx, s, in)

	case nodeAirtimeChoice:
		switch in {
		case "1":
			s.field = "" // the caller's own number
			return m.ask(s, "", "ask_amount", nodeAirtimeAmount), nil
		case "2":
			return m.ask(s, "", "ask_airtime_number", nodeAirtimeNumber), nil
		case "0":
			return m.show(s, "", m.static["main"], false, nodeMain), nil
		}
		return m.ask(s, bad, "airtime_menu", nodeAirtimeChoice), nil

	case nodeAccount:
		switch in {
		case "1":
			text, err := m.engine.BalanceText(ctx, s.phone)
			if err != nil {
				return Screen{}, fmt.Errorf("ussd: balance: %w", err)
			}
			return m.end(s, text), nil
		case "2":
			text, err := m.engine.MiniText(ctx, s.phone)
			if err != nil {
				return Screen{}, fmt.Errorf("ussd: last payments: %w", err)
			}
			return m.end(s, text), nil
		case "0":
			return m.show(s, "", m.static["main"], false, nodeMain), nil
		}
		return m.ask(s, bad, "account_menu", nodeAccount), nil

	case nodeCode:
		return m.code(ctx, s, in)

	case nodePushChoice:
		return m.pushChoice(ctx, s, in)

	case nodePushCode:
		return m.pushCode(ctx, s, in)

	case nodePage:
		p := s.page
		if in == MoreInput {
			return m.show(s, p.rest, p.opts, p.end, p.next), nil
		}
		if !p.end {
			// An answer to the prompt on the last page, keyed early: take it.
			s.node, s.page = p.next, nil
			return m.advance(ctx, s, in)
		}
		return Screen{Text: p.shown}, nil
	}
	return Screen{}, fmt.Errorf("ussd: session in unknown menu node %d", s.node)
}

// amountPrompt is the prompt for the amount at n: a merchant's offers its products too.
func amountPrompt(n node) string {
	if n == nodeMerchantAmount {
		return "ask_merchant_amount"
	}
	return "ask_amount"
}

func numberPrompt(n node) string {
	switch n {
	case nodeAirtimeNumber:
		return "ask_airtime_number"
	case nodeWithdrawAgent:
		return "ask_agent"
	}
	return "ask_number"
}

func digits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}
