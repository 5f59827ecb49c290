package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/rs/zerolog"

	"github.com/payswitch/payswitch/airtime"
	"github.com/payswitch/payswitch/api"
	"github.com/payswitch/payswitch/config"
	"github.com/payswitch/payswitch/ivr"
	"github.com/payswitch/payswitch/ledger"
	"github.com/payswitch/payswitch/otp"
	"github.com/payswitch/payswitch/outbox"
	"github.com/payswitch/payswitch/simswap"
	"github.com/payswitch/payswitch/smpp"
	"github.com/payswitch/payswitch/store"
	payswitch "github.com/payswitch/payswitch/switch"
	"github.com/payswitch/payswitch/tools/smscsim"
	"github.com/payswitch/payswitch/ussd"
)

const serveUsage = `usage: payswitch serve [-config config.yaml]

Runs the switch: opens the database, binds the SMPP links, serves the HTTP API, the
USSD and voice callbacks, and delivers every queued message, until SIGINT or SIGTERM.
On a signal it stops taking new work, lets what is in flight finish, unbinds the links
and closes the database.`

func runServe(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprintln(stderr, serveUsage); fs.PrintDefaults() }
	path := fs.String("config", "config.yaml", "path of the config file")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Sprintf("serve: unexpected argument %q", fs.Arg(0))}
	}
	cfg, err := config.Load(*path)
	if err != nil {
		return err
	}
	if pct, ok := serveGCPercent(os.Getenv); ok {
		debug.SetGCPercent(pct)
	}
	log, err := newLogger(cfg, stderr)
	if err != nil {
		return err
	}
	a, err := startApp(ctx, cfg, log)
	if err != nil {
		return err
	}
	if addr := os.Getenv("PAYSWITCH_PPROF"); addr != "" {
		// Profiling for operators and benchmarks: a separate listener, never the API's.
		mux := http.NewServeMux()
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
		go func() {
			log.Warn().Str("addr", addr).Msg("pprof listening (PAYSWITCH_PPROF)")
			if err := http.ListenAndServe(addr, mux); err != nil {
				log.Error().Err(err).Msg("pprof listener stopped")
			}
		}()
	}
	log.Info().Str("http", a.httpAddr).Str("database", cfg.Database.Path).Msg("payswitch serving")
	<-ctx.Done()
	log.Info().Msg("shutting down")
	return a.Close()
}

func newLogger(cfg *config.Config, w io.Writer) (zerolog.Logger, error) {
	level, err := zerolog.ParseLevel(cfg.Log.Level)
	if err != nil || cfg.Log.Level == "" {
		level = zerolog.InfoLevel
	}
	if cfg.Log.Format == "console" {
		w = zerolog.ConsoleWriter{Out: w, TimeFormat: time.TimeOnly}
	}
	return zerolog.New(w).Level(level).With().Timestamp().Logger(), nil
}

// app is a running switch: everything serve starts, in the order it must stop.
type app struct {
	cfg      *config.Config
	log      zerolog.Logger
	db       *store.DB
	dbWatch  *dbWatch // whether the database can be written; logs its faults once
	ledger   *ledger.Ledger
	outbox   *outbox.Outbox
	engine   *payswitch.Engine
	ussd     *ussd.Menu
	lock     *os.File // held while serving: one serve per database
	sim      *smscsim.Sim
	links    []*smpp.Link
	gateway  *smpp.Gateway // our SMPP server for carriers and aggregators; nil when off
	registry *prometheus.Registry
	http     *http.Server
	httpAddr string

	cancel context.CancelFunc // stops the background loops
	loops  sync.WaitGroup

	stopSender context.CancelFunc // stops the SMS sender, which Close stops first
	sending    sync.WaitGroup
}

// serveGCPercent is the Go garbage collector's target for serve: 400 (a collection
// when the heap has grown to five times what was live after the last one) unless the
// operator set GOGC, which then rules. The switch's memory is mostly SQLite's page
// caches, outside the Go heap, so the heap's growth costs little (peak RSS 200 -> 212
// MB under loadgen), while the default of 100 spent CPU the store's writer needed: in
// three alternating loadgen runs of each, serve's CPU per payment was 1.26 ms at 100,
// 1.15 at 200 and 1.10 at 400, and payments/s 949, 1,007 and 1,047 on average.
func serveGCPercent(getenv func(string) string) (int, bool) {
	if getenv("GOGC") != "" {
		return 0, false
	}
	return 400, true
}

// startApp builds and starts the switch described by cfg. Close stops it.
func startApp(ctx context.Context, cfg *config.Config, log zerolog.Logger) (a *app, err error) {
	a = &app{cfg: cfg, log: log, registry: prometheus.NewRegistry()}
	defer func() {
		if err != nil {
			a.Close()
		}
	}()
	for _, w := range cfg.Warnings() {
		log.Warn().Msg(w)
	}
	a.registry.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))

	// One serve per database: it releases the claims it finds on the outbox, which is only
	// right if the process that made them is gone.
	if a.lock, err = lockExclusive(cfg.Database.Path + ".serve.lock"); err != nil {
		return a, dbStartError(cfg.Database.Path, err)
	}
	opened := time.Now()
	upgraded := false
	a.db, err = store.Open(cfg.Database.Path, store.Options{Synchronous: cfg.Database.Synchronous,
		OnUpgrade: func(component string, from, to int) {
			upgraded = true
			log.Info().Str("component", component).Int("from", from).Int("to", to).
				Msg("database schema upgrade; some rebuild tables, which takes about a minute per million payments")
		}},
		ledger.Schema, otp.Schema, outbox.Schema, payswitch.Schema, smpp.GatewaySchema)
	if err != nil {
		return a, dbStartError(cfg.Database.Path, err)
	}
	if upgraded {
		log.Info().Dur("took", time.Since(opened)).Msg("database schema upgraded")
	}
	a.dbWatch = newDBWatch(a.db, log, a.registry)
	a.ledger = ledger.New(a.db, nil)
	secret, err := otpSecret(cfg)
	if err != nil {
		return a, err
	}
	// Code messages are sealed with a key derived from the same secret, so that no code
	// is ever in the database in clear, not even in the queue of SMS to send.
	if a.outbox, err = outbox.NewSealed(a.db, nil, secret); err != nil {
		return a, err
	}
	issuer, err := otp.NewIssuer(secret, otp.Config{Digits: cfg.OTP.Digits, TTL: cfg.OTP.TTL,
		MaxAttempts: cfg.OTP.MaxAttempts, MaxResends: cfg.OTP.MaxResends, ResendInterval: cfg.OTP.ResendInterval})
	if err != nil {
		return a, err
	}
	loc, err := time.LoadLocation(cfg.Timezone)
	if err != nil {
		return a, fmt.Errorf("config: timezone: %w", err)
	}
	carriers, err := airtimeRouter(cfg, log, a.registry)
	if err != nil {
		return a, err
	}
	deps := payswitch.Deps{DB: a.db, Ledger: a.ledger, OTP: issuer, Outbox: a.outbox, Log: log, Registry: a.registry}
	if carriers != nil {
		deps.Airtime = carriers
	}
	if sw := cfg.Fraud.SIMSwap; sw.URL != "" {
		deps.SIMSwap = &simswap.Client{URL: sw.URL, Token: sw.Token, MaxAge: sw.MaxAge, Timeout: sw.Timeout}
	}
	voice := ""
	if cfg.IVR.Gateway.URL != "" {
		voice = cfg.IVR.Number
	}
	a.engine, err = payswitch.New(payswitch.Config{
		Currency: cfg.Currency, Shortcode: cfg.Shortcode, CountryCode: cfg.CountryCode, Location: loc,
		MinAmount: cfg.Limits.MinAmount, MaxAmount: cfg.Limits.MaxAmount, DailyMax: cfg.Limits.DailyMax,
		Messages: cfg.Messages, VoiceNumber: voice,
		Fraud: payswitch.Fraud{
			WrongCodesLock: cfg.Fraud.WrongCodesLock, LockWindow: cfg.Fraud.LockWindow,
			LockDuration: cfg.Fraud.LockDuration, RequestsPerMinute: cfg.Fraud.RequestsPerMinute,
			SIMSwapThreshold: cfg.Fraud.SIMSwap.Threshold, SIMSwapFreeze: cfg.Fraud.SIMSwap.Action == "freeze",
			SIMSwapFailOpen: cfg.Fraud.SIMSwap.OnError == "allow",
		},
	}, deps)
	if err != nil {
		return a, err
	}
	a.ussd, err = ussd.New(a.engine, ussd.Config{ServiceCode: cfg.USSD.ServiceCode,
		SessionTimeout: cfg.USSD.SessionTimeout, Texts: cfg.USSD.Messages, Log: log, Registry: a.registry})
	if err != nil {
		return a, err
	}

	if d := cfg.SMPP.DemoSMSC; d.Listen != "" {
		accounts := map[string]string{}
		for _, l := range cfg.SMPP.Links {
			if l.Address == d.Listen {
				accounts[l.SystemID] = l.Password
			}
		}
		a.sim, err = smscsim.Start(smscsim.Config{Listen: d.Listen, PhoneAPI: d.PhoneAPI, Accounts: accounts,
			Log: log})
		if err != nil {
			return a, fmt.Errorf("demo SMSC on %s: %w", d.Listen, err)
		}
		log.Info().Str("smpp", a.sim.Addr()).Str("phone_api", a.sim.PhoneAddr()).Msg("demo SMSC started")
	}

	loopCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	a.cancel = cancel
	mo := &moHandler{engine: a.engine, outbox: a.outbox, ussd: a.ussd, log: log, shortcode: cfg.Shortcode,
		links: map[string]smpp.Target{}}
	// Set before any link or sender starts: a receipt can come before its MarkSent.
	a.outbox.OnReceipt(mo.codeDelivery)
	for _, lc := range cfg.SMPP.Links {
		l := smpp.NewLink(smpp.LinkConfig{Name: lc.Name, Address: lc.Address, SystemID: lc.SystemID,
			Password: lc.Password, SystemType: lc.SystemType, Bind: lc.Bind, Prefixes: lc.Prefixes,
			TPS: lc.TPS, Window: lc.Window, EnquireLink: lc.EnquireLink, RespTimeout: lc.RespTimeout,
			Failover: lc.Failover},
			mo, log, a.registry)
		a.links = append(a.links, l)
		mo.links[lc.Name] = l
	}
	// Messages a crashed predecessor had claimed go out now, not when its leases end.
	if n, err := a.outbox.ReleaseClaims(ctx); err != nil {
		return a, err
	} else if n > 0 {
		log.Warn().Int64("messages", n).Msg("released the outbox claims of a process that stopped without finishing them")
	}
	sender := smpp.NewSender(a.outbox, a.links, log)
	if sc := cfg.SMPP.Server; sc.Listen != "" {
		var accounts []smpp.GatewayAccount
		for _, acc := range sc.Accounts {
			accounts = append(accounts, smpp.GatewayAccount{SystemID: acc.SystemID, Password: acc.Password, MaxBinds: acc.MaxBinds,
				Prefixes: acc.Prefixes})
		}
		a.gateway, err = smpp.NewGateway(smpp.GatewayConfig{Listen: sc.Listen, Shortcode: cfg.Shortcode,
			USSDServiceCode: cfg.USSD.ServiceCode, Accounts: accounts, MaxBinds: sc.MaxBinds, PinGrace: sc.PinGrace},
			a.db, mo, log, a.registry)
		if err != nil {
			return a, err
		}
		for _, t := range a.gateway.Targets() {
			mo.links[t.Name()] = t // USSD over SMPP is answered where it came from
		}
		if err := a.gateway.Start(); err != nil {
			return a, fmt.Errorf("smpp.server: listen %s: %w", sc.Listen, err)
		}
		// Users who wrote through a carrier's bind are answered through it.
		sender.AddAffinity(a.gateway)
	}
	for _, l := range a.links { // after mo.links is complete: HandleMO reads it without a lock
		l.Start(loopCtx)
	}
	senderCtx, stopSender := context.WithCancel(loopCtx)
	a.stopSender = stopSender
	a.sending.Add(1)
	go func() {
		defer a.sending.Done()
		if err := sender.Run(senderCtx); err != nil && senderCtx.Err() == nil {
			log.Error().Err(err).Msg("SMS sender stopped")
		}
	}()
	a.loop(func() { a.engine.Run(loopCtx) })
	a.loop(func() { a.engine.RunAirtime(loopCtx) })
	a.loop(func() { a.ussd.Run(loopCtx) })
	a.loop(func() { a.dbWatch.run(loopCtx, dbWatchInterval) })

	srv, err := api.New(a.engine, api.Config{
		Tokens: apiTokens(cfg), MaxBodyBytes: cfg.HTTP.MaxBodyBytes, Gatherer: a.registry,
		Registry: a.registry, Log: log, Health: a.health, Diagnose: a.db.Diagnose,
	})
	if err != nil {
		return a, err
	}
	srv.Handle("POST /ussd", a.ussd.Handler())
	calls, err := ivr.New(ivr.Config{Number: cfg.IVR.Number, GatewayURL: cfg.IVR.Gateway.URL,
		GatewayToken: cfg.IVR.Gateway.Token}, a.engine, a.outbox, nil, log, a.registry)
	if err != nil {
		return a, err
	}
	srv.Handle("POST /ivr", calls.Handler())
	// Run returns once the gateway requests in flight are recorded, before Close shuts
	// the database.
	a.loop(func() { calls.Run(loopCtx) })
	ln, err := net.Listen("tcp", cfg.HTTP.Listen)
	if err != nil {
		return a, fmt.Errorf("http: listen %s: %w", cfg.HTTP.Listen, err)
	}
	a.httpAddr = ln.Addr().String()
	a.http = &http.Server{Handler: srv, ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout: cfg.HTTP.ReadTimeout, WriteTimeout: cfg.HTTP.WriteTimeout, IdleTimeout: time.Minute,
		MaxHeaderBytes: 16 << 10}
	a.loop(func() {
		if err := a.http.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error().Err(err).Msg("http server stopped")
		}
	})
	return a, nil
}

func (a *app) loop(f func()) {
	a.loops.Add(1)
	go func() { defer a.loops.Done(); f() }()
}

// Close stops taking work (HTTP), lets the SMS sender record the submits it has in
// flight while the links are still bound (so that none is sent again after a restart),
// unbinds the links (waiting for MO being handled), stops the other loops, and closes the
// database last so that everything in flight is persisted.
func (a *app) Close() error {
	var errs []error
	if a.http != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		errs = append(errs, a.http.Shutdown(ctx))
		cancel()
	}
	if a.stopSender != nil {
		a.stopSender()
		a.sending.Wait()
	}
	for _, l := range a.links {
		errs = append(errs, l.Close())
	}
	if a.gateway != nil {
		errs = append(errs, a.gateway.Close())
	}
	if a.cancel != nil {
		a.cancel()
	}
	a.loops.Wait()
	if a.sim != nil {
		errs = append(errs, a.sim.Close())
	}
	if a.db != nil {
		errs = append(errs, a.db.Close())
	}
	if a.lock != nil {
		errs = append(errs, a.lock.Close()) // closing the file releases the lock
	}
	return errors.Join(errs...)
}

func (a *app) health(ctx context.Context) api.Health {
	h := api.Health{Database: api.ComponentHealth{OK: true, Path: a.cfg.Database.Path}}
	if fault, err := a.dbWatch.check(ctx); err != nil {
		h.Database.OK, h.Database.Fault, h.Database.Error = false, string(fault), err.Error()
	}
	for _, l := range a.links {
		h.Links = append(h.Links, linkHealth(l.Stats()))
	}
	if a.gateway != nil {
		for _, st := range a.gateway.Stats() {
			h.Server = append(h.Server, linkHealth(st))
		}
	}
	// What is left to send and what failed, read from indexes of those messages alone;
	// a count of every state read the whole table on every probe.
	if unsent, err := a.outbox.Unsent(ctx); err == nil {
		h.Outbox = unsent
	}
	return h
}

func apiTokens(cfg *config.Config) []api.Token {
	var ts []api.Token
	for _, t := range cfg.HTTP.Tokens {
		ts = append(ts, api.Token{Name: t.Name, Token: t.Token, Role: api.Role(t.Role)})
	}
	return ts
}

// otpSecret is the key codes are hashed with: from config (an env variable, usually),
// or generated once into a file beside the database and kept there.
func otpSecret(cfg *config.Config) ([]byte, error) {
	if cfg.OTP.Secret != "" {
		return otp.ParseSecret(cfg.OTP.Secret)
	}
	path := cfg.OTP.SecretFile
	if path == "" {
		path = filepath.Join(filepath.Dir(cfg.Database.Path), "otp.secret")
	}
	return otp.LoadOrCreateSecret(path)
}

// moHandler turns what the SMPP links receive into engine calls.
type moHandler struct {
	engine    *payswitch.Engine
	outbox    *outbox.Outbox
	ussd      *ussd.Menu
	links     map[string]smpp.Target // links and server accounts by name; written before anything starts, then only read
	log       zerolog.Logger
	shortcode string
}

// HandleMO passes a text to the engine; an error makes the link answer the SMSC with a
// temporary error so that it delivers the message again. USSD goes to the menus.
func (h *moHandler) HandleMO(ctx context.Context, m smpp.MO) error {
	if m.USSD != nil { // addressed to the service code, not the shortcode
		h.handleUSSD(ctx, m)
		return nil
	}
	if m.To != "" && strings.TrimLeft(m.To, "+") != h.shortcode {
		h.log.Warn().Str("to", m.To).Str("from", payswitch.Mask(m.From)).Msg("MO for another number ignored")
		return nil
	}
	return h.engine.HandleSMS(ctx, m.From, m.Text)
}

// HandleReceipt records a delivery receipt against the message it reports on, as
// smpp.ReceiptRecorder does; the outbox then tells codeDelivery, in the same write.
func (h *moHandler) HandleReceipt(ctx context.Context, r smpp.Receipt) error {
	return smpp.ReceiptRecorder(h.outbox)(ctx, r)
}

// codeDelivery is the outbox's receipt hook: a receipt for a code SMS goes into the
// authentication history, and an undeliverable one may start the voice fallback, in the
// write that applies the receipt. That is the receipt's own write, or the MarkSent of
// the code SMS when the SMSC's receipt came before the submit was recorded. An error
// rolls the receipt back with it (the SMSC redelivers it, or the MarkSent fails).
func (h *moHandler) codeDelivery(ctx context.Context, tx store.Tx, m outbox.Receipted) (after func(), err error) {
	if m.Purpose != "otp" || m.PaymentID == "" {
		return nil, nil
	}
	// Only a final answer says something about the code: ENROUTE, ACCEPTD or UNKNOWN
	// leave the message "sent", and must not start the voice fallback.
	var delivered bool
	switch m.State {
	case outbox.StateDelivered:
		delivered = true
	case outbox.StateUndeliverable:
	default:
		return nil, nil
	}
	return h.engine.RecordCodeDeliveryTx(ctx, tx, m.PaymentID, m.To, delivered, m.Status)
}

// handleUSSD answers one USSD step that arrived over SMPP, on the link it came from and
// with its session info. It never asks for redelivery: the input was acted on and the
// user is looking at the screen.
func (h *moHandler) handleUSSD(ctx context.Context, m smpp.MO) {
	reply, end, err := h.ussd.HandleSMPP(ctx, m.From, m.USSD.ServiceOp, m.USSD.SessionInfo, m.Text)
	if err != nil {
		h.log.Warn().Err(err).Str("link", m.Link).Str("from", payswitch.Mask(m.From)).Msg("ussd over smpp")
	}
	l := h.links[m.Link]
	if reply == "" || l == nil {
		return
	}
	if _, err := l.Submit(ctx, smpp.MT{To: m.From, From: m.To, Text: reply,
		USSD: &smpp.USSDInfo{ServiceOp: ussd.ReplyOp(end), SessionInfo: m.USSD.SessionInfo}}); err != nil {
		h.log.Error().Err(err).Str("link", m.Link).Str("from", payswitch.Mask(m.From)).Msg("ussd answer not sent")
	}
}

// airtimeRouter builds the carriers' airtime clients, or nil when none sells airtime.
func airtimeRouter(cfg *config.Config, log zerolog.Logger, reg prometheus.Registerer) (*carrierAirtime, error) {
	var cs []airtime.CarrierConfig
	for _, c := range cfg.Airtime.Carriers {
		if c.URL != "" {
			cs = append(cs, airtime.CarrierConfig{Name: c.Name, Prefixes: c.Prefixes, URL: c.URL, Token: c.Token, Timeout: c.Timeout})
		}
	}
	if len(cs) == 0 {
		return nil, nil
	}
	r, err := airtime.NewRouter(cs, nil, log, reg)
	if err != nil {
		return nil, fmt.Errorf("config: airtime.carriers: %w", err)
	}
	return &carrierAirtime{r: r}, nil
}

// carrierAirtime adapts the carriers' clients to what the engine asks of them.
type carrierAirtime struct{ r *airtime.Router }

var _ payswitch.Airtime = (*carrierAirtime)(nil)

func (c *carrierAirtime) Carrier(msisdn string) (string, bool) {
	ca, ok := c.r.For(msisdn)
	if !ok {
		return "", false
	}
	return ca.Name(), true
}

func (c *carrierAirtime) Credit(ctx context.Context, carrier string, r payswitch.AirtimeRequest) payswitch.AirtimeResult {
	return c.call(ctx, carrier, r, (*airtime.Carrier).Credit)
}

func (c *carrierAirtime) Resolve(ctx context.Context, carrier string, r payswitch.AirtimeRequest) payswitch.AirtimeResult {
	return c.call(ctx, carrier, r, (*airtime.Carrier).Resolve)
}

func (c *carrierAirtime) call(ctx context.Context, carrier string, r payswitch.AirtimeRequest,
	f func(*airtime.Carrier, context.Context, airtime.Request) airtime.Result) payswitch.AirtimeResult {
	ca, ok := c.r.Get(carrier)
	if !ok {
		// The carrier left the config while a top-up was pending. It may have credited,
		// so this is no answer, never a failure that would return the money.
		return payswitch.AirtimeResult{Outcome: payswitch.AirtimeUnknown, Reason: "carrier " + carrier + " is not configured"}
	}
	res := f(ca, ctx, airtime.Request{Reference: r.Reference, MSISDN: r.MSISDN, Amount: r.Amount, Currency: r.Currency})
	return payswitch.AirtimeResult{Outcome: payswitch.AirtimeOutcome(res.Outcome), CarrierReference: res.CarrierReference, Reason: res.Reason}
}

func linkHealth(st smpp.LinkStats) api.LinkHealth {
	return api.LinkHealth{Name: st.Name, State: st.State, Sessions: st.Sessions, InFlight: st.InFlight,
		Window: st.Window, Submitted: st.Submitted, Failed: st.Failed, Throttled: st.Throttled, Received: st.Received}
}

// lockExclusive takes an exclusive advisory lock on path (created 0600), or says which
// process seems to hold it. The lock goes when the file is closed or the process dies.
func lockExclusive(path string) (*os.File, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		return nil, fmt.Errorf("another payswitch serve is using this database (lock %s): %w", path, err)
	}
	return f, nil
}

// dbWatch knows whether the database could last be written. It logs a fault once when it
// starts and once when it ends, however many writes fail in between (each component
// also reports its own failed writes), and exports it as payswitch_database_writable.
type dbWatch struct {
	db       *store.DB
	log      zerolog.Logger
	writable prometheus.Gauge

	mu    sync.Mutex  // guards fault and since
	fault store.Fault // "" while writable
	since time.Time   // when fault began
}

// faultUnavailable is a failed write that store.Diagnose cannot explain.
const faultUnavailable store.Fault = "unavailable"

// dbWatchInterval is how often the database is tried when nothing asks /healthz, so
// that a fault is logged, and its end noticed, even on a quiet switch.
const dbWatchInterval = 5 * time.Second

func newDBWatch(db *store.DB, log zerolog.Logger, reg prometheus.Registerer) *dbWatch {
	w := &dbWatch{db: db, log: log, since: time.Now(), writable: prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "payswitch_database_writable",
		Help: "1 when the last write to the database succeeded, 0 while it cannot be written (see /healthz).",
	})}
	w.writable.Set(1)
	reg.MustRegister(w.writable)
	registerStoreStats(db, reg)
	return w
}

// registerStoreStats exports the store writer's running totals: rate(run) + rate(commit)
// near 1 means the one writer is the bottleneck; ops/groups is the group-commit size.
func registerStoreStats(db *store.DB, reg prometheus.Registerer) {
	counter := func(name, help string, value func(store.Stats) float64) {
		reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name, Help: help},
			func() float64 { return value(db.Stats()) }))
	}
	counter("payswitch_store_groups_total", "Transactions the store's writer committed (group commits).",
		func(s store.Stats) float64 { return float64(s.Groups) })
	counter("payswitch_store_operations_total", "Write operations run in those transactions.",
		func(s store.Stats) float64 { return float64(s.Ops) })
	counter("payswitch_store_redos_total", "Groups run again, each operation in a savepoint, because one of their operations failed.",
		func(s store.Stats) float64 { return float64(s.Redos) })
	counter("payswitch_store_run_seconds_total", "Time the writer spent running operations.",
		func(s store.Stats) float64 { return s.Run.Seconds() })
	counter("payswitch_store_commit_seconds_total", "Time the writer spent in COMMIT.",
		func(s store.Stats) float64 { return s.Commit.Seconds() })
	counter("payswitch_store_syncs_total", "fsyncs of the WAL by the store (synchronous FULL).",
		func(s store.Stats) float64 { return float64(s.Syncs) })
	counter("payswitch_store_sync_seconds_total", "Time those fsyncs took.",
		func(s store.Stats) float64 { return s.Sync.Seconds() })
}

// run checks the database every interval until ctx ends.
func (w *dbWatch) run(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			cctx, cancel := context.WithTimeout(ctx, 3*time.Second)
			w.check(cctx)
			cancel()
		}
	}
}

// check tries a write and reports the fault that stops it ("" when it succeeds).
func (w *dbWatch) check(ctx context.Context) (store.Fault, error) {
	err := w.db.Ping(ctx)
	if err != nil && errors.Is(ctx.Err(), context.Canceled) {
		return faultUnavailable, err // the asker went away: that says nothing of the database
	}
	f := store.Fault("")
	if err != nil {
		f = w.db.Diagnose(err)
		if f == "" && errors.Is(err, context.DeadlineExceeded) {
			f = store.FaultBusy // the writer did not get to it in time: a held lock, a stalled disk
		}
		if f == "" {
			f = faultUnavailable
		}
	}
	w.observe(f, err)
	return f, err
}

// observe records the outcome of a write and logs when it changes the database's state.
func (w *dbWatch) observe(f store.Fault, err error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if f == w.fault {
		return
	}
	was, since := w.fault, w.since
	w.fault, w.since = f, time.Now()
	if f == "" {
		w.writable.Set(1)
		w.log.Info().Str("fault", string(was)).Dur("after", time.Since(since)).Msg("database writable again")
		return
	}
	w.writable.Set(0)
	action := faultAction(f)
	if errors.Is(err, store.ErrSyncFailed) {
		// The store refuses every write after a failed fsync, whatever the disk does next.
		action += "; an fsync failed, so only a restart ends it"
	}
	w.log.Error().Err(err).Str("fault", string(f)).Str("path", w.db.Path()).Str("action", action).
		Msg("database cannot be written: writes fail and MO are refused for the SMSC to redeliver")
}

// faultAction tells the operator what ends fault f.
func faultAction(f store.Fault) string {
	switch f {
	case store.FaultBusy:
		return "another process holds the database's write lock, or the disk stalls: the switch recovers by itself once it is free"
	case store.FaultFull:
		return "the disk is full: free space; the switch recovers by itself"
	case store.FaultReadOnly:
		return "the filesystem is read-only (the kernel remounts a disk read-only after errors): repair it, remount it read-write and restart payswitch"
	case store.FaultIO:
		return "the disk reports I/O errors: repair or replace it and restart payswitch"
	case store.FaultCorrupt:
		return "the database file is damaged: stop payswitch and restore it from a backup"
	}
	return "see the error"
}

// dbStartError says what to do when the database cannot be opened because of its disk.
// Serve does not start degraded on a read-only filesystem: nothing it does could be kept.
func dbStartError(path string, err error) error {
	switch store.Diagnose(path, err) {
	case store.FaultReadOnly:
		return fmt.Errorf("database %s is on a read-only filesystem; serve must write there: remount it read-write (after fsck if the kernel made it read-only after errors): %w", path, err)
	case store.FaultFull:
		return fmt.Errorf("database %s: the disk is full; free space and start again: %w", path, err)
	case store.FaultIO:
		return fmt.Errorf("database %s: the disk reports I/O errors; repair it and start again: %w", path, err)
	}
	return err
}
