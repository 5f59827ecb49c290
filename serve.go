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
	"sync"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/rs/zerolog"

	"github.com/payswitch/payswitch/api"
	"github.com/payswitch/payswitch/config"
	"github.com/payswitch/payswitch/ivr"
	"github.com/payswitch/payswitch/ledger"
	"github.com/payswitch/payswitch/otp"
	"github.com/payswitch/payswitch/outbox"
	"github.com/payswitch/payswitch/receiptspool"
	"github.com/payswitch/payswitch/replica"
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
	log.Info().Str("http", a.httpAddr).Str("database", cfg.Database.Where()).Msg("payswitch serving")
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
	// callbacks are the gateway callbacks' own listeners, when configured; empty: the
	// callbacks are on http.
	callbacks []*callbackServer
	replicas  []*replica.Replicator // database.replicas; closed by the store's Close
	merchants merchants             // keys, catalogues, webhooks (serve_merchants.go)
	spool     *receiptspool.Spool   // delivery receipts and MOs acknowledged, not yet applied; nil when off
	moSealer  *moSealer             // seals the MOs' texts in the spool; set with spool

	cancel context.CancelFunc // stops the background loops
	loops  sync.WaitGroup

	stopSender context.CancelFunc // stops the SMS sender, which Close stops first
	sending    sync.WaitGroup
}

// serveGCPercent is the Go garbage collector's target for serve: 400 (a collection
// when the heap has grown to five times what was live after the last one) unless the
// operator set GOGC, which then rules. The switch's memory is mostly SQLite's page
// caches, outside the Go heap, so the heap's growth costs little, while the default of
// 100 spent CPU the store's writer needed (the README's performance section has the
// loadgen figures).
func serveGCPercent(getenv func(string) string) (int, bool) {
	if getenv("GOGC") != "" {
		return 0, false
	}
	return 400, true
}

// appOptions are what startAppWith takes besides the config: inputs that serve leaves
// at their defaults and tests set.
type appOptions struct {
	// Now is the switch's clock: the engine's (code expiry, limits, locks), the
	// ledger's, the outbox's (due times, leases), the IVR's, USSD's and the API's.
	// nil: time.Now.
	Now func() time.Time
}

// startApp builds and starts the switch described by cfg. Close stops it.
func startApp(ctx context.Context, cfg *config.Config, log zerolog.Logger) (a *app, err error) {
	return startAppWith(ctx, cfg, log, appOptions{})
}

// startAppWith is startApp with opts.
func startAppWith(ctx context.Context, cfg *config.Config, log zerolog.Logger, opts appOptions) (a *app, err error) {
	now := opts.Now
	if now == nil {
		now = time.Now
	}
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

	opened := time.Now()
	upgraded := false
	a.db, a.lock, err = openDatabase(ctx, cfg.Database, store.Options{Synchronous: cfg.Database.Synchronous, Groups: cfg.Database.Groups,
		OnWriterThread: writerThreadHook(cfg.Database, log),
		OnUpgrade: func(component string, from, to int) {
			upgraded = true
			log.Info().Str("component", component).Int("from", from).Int("to", to).
				Msg("database schema upgrade; some rebuild tables, which takes about a minute per million payments")
		}})
	if err != nil {
		return a, err
	}
	if upgraded {
		log.Info().Dur("took", time.Since(opened)).Msg("database schema upgraded")
	}
	a.dbWatch = newDBWatch(a.db, cfg.Database.Where(), log, a.registry)
	if err := a.startReplicas(); err != nil {
		return a, err
	}
	a.ledger = ledger.New(a.db, now)
	secret, err := otpSecret(cfg, log)
	if err != nil {
		return a, err
	}
	// Code messages are sealed with a key derived from the same secret, so that no code
	// is ever in the database in clear, not even in the queue of SMS to send.
	if a.outbox, err = outbox.NewSealed(a.db, now, secret); err != nil {
		return a, err
	}
	issuer, err := otp.NewIssuer(secret, otp.Config{Digits: cfg.OTP.Digits, TTL: cfg.OTP.TTL,
		MaxAttempts: cfg.OTP.MaxAttempts, MaxResends: cfg.OTP.MaxResends, ResendInterval: cfg.OTP.ResendInterval})
	if err != nil {
		return a, err
	}
	if err := a.startMerchants(secret, now, cfg.Limits.MaxAmount); err != nil {
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
	deps := payswitch.Deps{DB: a.db, Ledger: a.ledger, OTP: issuer, Outbox: a.outbox, Log: log, Registry: a.registry,
		Now: now, Products: a.merchants.catalog, Events: a.merchants.hooks, Escrow: a.merchants.guarantees,
		Tills: a.merchants.stores, Sales: a.merchants.sales}
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
		Messages: cfg.Messages, VoiceNumber: voice, USSDPush: anyUSSDPush(cfg.SMPP.Links),
		EscrowReleaseAfter: cfg.Escrow.ReleaseAfter, NoPayerReceiptDLR: !cfg.SMPP.PayerReceiptDLR,
		Tiers: engineTiers(cfg), Tariff: engineTariff(cfg), IDNumberKey: idNumberKey(secret),
		Risk: engineRisk(cfg.Risk),
		Requests: payswitch.RequestLimits{DefaultTTL: cfg.Requests.DefaultTTL, MaxTTL: cfg.Requests.MaxTTL,
			PerMerchantPerMinute: cfg.Requests.PerMerchantPerMinute, PerNumberPerDay: cfg.Requests.PerNumberPerDay},
		Fraud: payswitch.Fraud{
			WrongCodesLock: cfg.Fraud.WrongCodesLock, WrongCodesPerOrigin: cfg.Fraud.WrongCodesPerOrigin,
			LockWindow:   cfg.Fraud.LockWindow,
			LockDuration: cfg.Fraud.LockDuration, RequestsPerMinute: cfg.Fraud.RequestsPerMinute,
			SIMSwapThreshold: cfg.Fraud.SIMSwap.Threshold, SIMSwapFreeze: cfg.Fraud.SIMSwap.Action == "freeze",
			SIMSwapFailOpen: cfg.Fraud.SIMSwap.OnError == "allow",
		},
	}, deps)
	if err != nil {
		return a, err
	}
	if err := a.openReceiptSpool(ctx, secret); err != nil {
		return a, err
	}
	a.ussd, err = ussd.New(a.engine, ussd.Config{ServiceCode: cfg.USSD.ServiceCode,
		SessionTimeout: cfg.USSD.SessionTimeout, Texts: cfg.USSD.Messages, Log: log, Registry: a.registry, Now: now,
		DB: a.db})
	if err != nil {
		return a, err
	}

	if d := cfg.SMPP.DemoSMSC; d.Listen != "" {
		// Only the links that point at it may bind (a non-nil map), each with its password.
		// The sim refuses an empty one, so a demo link left without one (the shipped
		// config with SMSC_A_PASSWORD unset) gets a random one for this run, given to
		// both sides here, before the links are built from cfg below.
		accounts := map[string]string{}
		for i, l := range cfg.SMPP.Links {
			if l.Address != d.Listen {
				continue
			}
			if pw, ok := accounts[l.SystemID]; ok && l.Password == "" {
				cfg.SMPP.Links[i].Password = pw // a second bind of the same account
			} else if l.Password == "" {
				cfg.SMPP.Links[i].Password = demoPassword()
			}
			accounts[l.SystemID] = cfg.SMPP.Links[i].Password
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
	// What a delivery receipt means for the engine, whichever call applies it: the
	// receipt's own (mo) or the MarkSent it overtook (the sender's queue, below).
	deliveries := codeDeliveries(a.engine)
	mo := &moHandler{engine: a.engine, outbox: a.outbox, receipts: deliveries, ussd: a.ussd, log: log,
		shortcode: cfg.Shortcode, links: map[string]smpp.Target{}}
	if a.spool != nil && cfg.Database.SpoolsReceipts() {
		mo.spool = a.spool
	}
	if a.spool != nil && cfg.Database.SpoolsMOs() {
		mo.mos = &spooledMOs{spool: a.spool, sealer: a.moSealer}
	}
	if a.spool != nil { // before the links start: what the last process spooled goes first
		a.loop(func() { a.runReceiptSpool(loopCtx, deliveries) })
	}
	for _, lc := range cfg.SMPP.Links {
		l := smpp.NewLink(smpp.LinkConfig{Name: lc.Name, Address: lc.Address, SystemID: lc.SystemID,
			Password: lc.Password, SystemType: lc.SystemType, Bind: lc.Bind, Prefixes: lc.Prefixes,
			TPS: lc.TPS, Window: lc.Window, EnquireLink: lc.EnquireLink, RespTimeout: lc.RespTimeout,
			Failover: lc.Failover, USSDPush: lc.USSDPush},
			mo, log, a.registry)
		a.links = append(a.links, l)
		mo.links[lc.Name] = l
	}
	// Messages a crashed predecessor had claimed go out now, not when its leases end.
	a.outbox.SetNode(nodeName(cfg))
	if n, err := a.outbox.ReleaseClaims(ctx); err != nil {
		return a, err
	} else if n > 0 {
		log.Warn().Int64("messages", n).Msg("released the outbox claims of a process that stopped without finishing them")
	}
	// The sender's MarkSent applies the receipts that overtook their submit: it tells the
	// engine of them as HandleReceipt does of the others (serve_receipts.go).
	queue := &sendQueue{Outbox: a.outbox, receipts: deliveries}
	if opts.Now != nil {
		queue.skew = func() time.Duration { return time.Until(opts.Now()) }
	}
	sender := smpp.NewSender(queue, a.links, log)
	wireUSSDPush(sender, a.ussd, cfg.SMPP.Links, log)
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
	a.loop(func() { a.runEscrow(loopCtx) })
	a.loop(func() { a.ussd.Run(loopCtx) })
	a.loop(func() { a.dbWatch.run(loopCtx, dbWatchInterval) })
	a.loop(func() { a.runHooks(loopCtx) })

	srv, err := api.New(a.engine, api.Config{
		Tokens: apiTokens(cfg), MaxBodyBytes: cfg.HTTP.MaxBodyBytes, Gatherer: a.registry,
		Registry: a.registry, Log: log, Health: a.health, Diagnose: a.db.Diagnose, Now: now,
		Keys: a.merchants.keys, Catalog: a.merchants.catalog, Requests: a.engine,
		Webhooks:   webhooksAPI{a.merchants.hooks},
		Guarantees: a.merchants.guarantees, Escrow: a.engine,
		Stores: a.merchants.stores, Sales: a.merchants.sales,
	})
	if err != nil {
		return a, err
	}
	calls, err := ivr.New(ivr.Config{Number: cfg.IVR.Number, GatewayURL: cfg.IVR.Gateway.URL,
		GatewayToken: cfg.IVR.Gateway.Token, Location: loc, DB: a.db}, a.engine, a.outbox, now, log, a.registry)
	if err != nil {
		return a, err
	}
	// Run returns once the gateway requests in flight are recorded, before Close shuts
	// the database.
	a.loop(func() { calls.Run(loopCtx) })
	if err := a.mountCallbacks(srv, a.ussd.Handler(), calls.Handler()); err != nil {
		return a, err
	}
	if err := a.mountConsole(srv); err != nil { // the operators' console, /console/
		return a, err
	}
	ln, err := net.Listen("tcp", cfg.HTTP.Listen)
	if err != nil {
		return a, fmt.Errorf("http: listen %s: %w", cfg.HTTP.Listen, err)
	}
	a.httpAddr = ln.Addr().String()
	if err := a.forbidBound(); err != nil {
		ln.Close()
		return a, err
	}
	a.http = newHTTPServer(cfg, srv)
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

// Close stops taking work (HTTP: the API's listener and the callbacks'), lets the SMS
// sender record the submits it has in flight while the links are still bound (so that
// none is sent again after a restart), unbinds the links (waiting for MO being
// handled), stops the other loops, and closes the database last so that everything in
// flight is persisted.
func (a *app) Close() error {
	errs := []error{a.shutdownHTTP()}
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
	a.drainReceiptSpool()
	if a.cancel != nil {
		a.cancel()
	}
	a.loops.Wait()
	if a.spool != nil {
		errs = append(errs, a.spool.Close())
	}
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
	if a.cfg.Database.Postgres() {
		h.Database.Host = a.writerHost(ctx)
	}
	if c := a.db.LastCheckpoint(); !c.Time.IsZero() {
		h.Database.LastCheckpoint = c.Time.UTC().Format(time.RFC3339Nano)
	}
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
	h.Replicas = a.replicaHealth()
	return h
}

func apiTokens(cfg *config.Config) []api.Token {
	var ts []api.Token
	for _, t := range cfg.HTTP.Tokens {
		ts = append(ts, api.Token{Name: t.Name, Token: t.Token, Role: api.Role(t.Role)})
	}
	return ts
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
