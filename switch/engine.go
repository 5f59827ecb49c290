package payswitch

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/payswitch/payswitch/internal/timeid"
	"github.com/payswitch/payswitch/ledger"
	"github.com/payswitch/payswitch/otp"
	"github.com/payswitch/payswitch/outbox"
	"github.com/payswitch/payswitch/store"
)

// Errors the engine returns to operators' requests. Users on phones get a message instead.
var (
	ErrNotFound         = errors.New("payswitch: not found")
	ErrStateChanged     = errors.New("payswitch: payment changed state meanwhile")
	ErrInvalid          = errors.New("payswitch: invalid request")
	ErrConflict         = errors.New("payswitch: conflicts with an earlier request")
	ErrInsufficientFund = errors.New("payswitch: insufficient funds")
	// ErrAirtimeDelivered refuses to reverse airtime that the carrier confirmed: the
	// phone keeps the airtime whatever the ledger does, so only the carrier can undo it.
	ErrAirtimeDelivered = errors.New("payswitch: airtime delivered")
)

// Config is what the engine needs to know of the deployment.
type Config struct {
	Currency    string
	Shortcode   string
	CountryCode string         // for numbers typed in national form, e.g. "254"
	Location    *time.Location // business day for the daily limit
	MinAmount   int64          // per payment, minor units
	MaxAmount   int64
	DailyMax    int64 // per wallet per business day, counting pending and completed payments
	Messages    map[string]string
	Fraud       Fraud
	// VoiceNumber, when set, turns on outbound calls: a merchant with a phone number is
	// called to hear that a payment arrived. It is the caller ID of those calls.
	VoiceNumber string
	// Requests bounds merchants' requests to pay (config requests).
	Requests RequestLimits
	// NoPayerReceiptDLR, when set, sends the payer's receipt SMS without asking the SMSC
	// for a delivery receipt (config smpp.payer_receipt_dlr: false).
	NoPayerReceiptDLR bool
	// USSDPush, when set, also pushes each request to pay to the payer's phone as a
	// network-initiated USSD screen (smpp.links[].ussd_push): a message of purpose
	// outbox.PurposeRequestPush, which the SMPP sender opens as a session only over the
	// payer's own carrier link, where that link has ussd_push.
	USSDPush bool
	// EscrowReleaseAfter is how long after its confirmation a guaranteed payment is
	// released to its merchant by itself (config escrow.release_after); 0: 168h.
	EscrowReleaseAfter time.Duration
	// Contract section 14. Tiers are the KYC tiers' limits, by tier (0, 1, 2), with the
	// global limits filled in; the zero value leaves every tier at MaxAmount and
	// DailyMax with no balance cap. Tariff prices payments (nil: everything is free).
	// IDNumberKey keys the digests of id numbers (required once a tier 2 is recorded).
	Tiers       [3]Tier
	Tariff      Tariff
	IDNumberKey []byte
	// Risk grades payment requests (risk.go, config risk); nil: every one is normal.
	Risk *Risk
}

// RequestLimits bound merchants' requests to pay (contract section 10): how long one
// waits, and how many are sent. The counts live in the database (request_counts), so
// they hold across restarts.
type RequestLimits struct {
	DefaultTTL time.Duration // a request's validity when the merchant names none; 0: 10m
	MaxTTL     time.Duration // the longest a merchant may name (the shortest is 1m); 0: 24h
	// PerMerchantPerMinute caps the requests a merchant sends per clock minute; 0: no cap.
	PerMerchantPerMinute int
	// PerNumberPerDay caps the requests a number receives per business day, from all
	// merchants and airtime reminders together; 0: no cap.
	PerNumberPerDay int
}

// minRequestTTL is the shortest validity of a request: less is not time enough to read
// an SMS and answer it.
const minRequestTTL = time.Minute

// Deps are the parts the engine drives.
type Deps struct {
	DB     *store.DB
	Ledger *ledger.Ledger
	OTP    *otp.Issuer
	Outbox *outbox.Outbox
	Now    func() time.Time // nil: time.Now
	// After is the engine's timer at the clock of Now: a channel that receives once d
	// has passed. nil: time.After. The expiry sweeper and the airtime resolver wait on it,
	// so that a test that owns the clock owns their waits too.
	After    func(d time.Duration) <-chan time.Time
	Log      zerolog.Logger
	Registry prometheus.Registerer // nil: no metrics
	Airtime  Airtime               // nil: airtime is not sold
	SIMSwap  SIMSwap               // nil: no SIM-swap check
	// Products is the merchants' catalogue that BUY and requests with items price from;
	// nil: no merchant sells products (a BUY is told the merchant has no such product).
	Products ProductCatalog
	// Events queues the events merchants' systems are told of (payment.completed, ...)
	// in the transaction of the change; nil: none are queued.
	Events EventSink
	// Escrow says which merchants' payments are guaranteed (contract section 11); nil:
	// none are, but requests to pay that ask for it.
	Escrow EscrowMerchants
	// Tills finds merchants' stores by till and phone (contract section 11); nil: there
	// are no stores, and only merchant codes are paid.
	Tills Tills
	// Sales answers SALES by SMS; nil: SALES is refused like an unknown command.
	Sales SalesReader
}

// Engine runs payments. It is safe for concurrent use: every decision is made inside a
// store.Write, which the store serialises (SQLite), or under the locks of pgSnapshots
// (PostgreSQL, where several engines share the database).
type Engine struct {
	rules  // what decisions are made by
	db     *store.DB
	ledger *ledger.Ledger
	otp    *otp.Issuer
	outbox *outbox.Outbox
	now    func() time.Time
	after  func(time.Duration) <-chan time.Time
	log    zerolog.Logger
	ids    *timeid.Generator // payment IDs, at the engine's clock
	pg     bool              // db is PostgreSQL: decisions read through pgSnapshots

	airtime     Airtime
	airtimeKick chan struct{} // wakes RunAirtime after a confirmation
	simSwap     SIMSwap
	products    ProductCatalog
	events      EventSink
	// escrowMerchants says which merchants' payments are guaranteed (Deps.Escrow).
	escrowMerchants EscrowMerchants
	limits          *limiter
	payees          payeeCache
	waiting         *waitingHints // nil on PostgreSQL
	tills           Tills
	tillsSeen       tillCache
	sales           SalesReader

	fraudMetrics

	transitions *prometheus.CounterVec // payments entering a state, by type and state
	requests    *prometheus.CounterVec // requests by channel and outcome
}

// New checks cfg and returns an engine. Call Run to expire payments whose code ran out.
func New(cfg Config, d Deps) (*Engine, error) {
	if d.DB == nil || d.Ledger == nil || d.OTP == nil || d.Outbox == nil {
		return nil, fmt.Errorf("payswitch: New needs DB, Ledger, OTP and Outbox")
	}
	if len(cfg.Currency) != 3 {
		return nil, fmt.Errorf("payswitch: currency %q: want an ISO 4217 code", cfg.Currency)
	}
	if cfg.Location == nil {
		cfg.Location = time.UTC
	}
	if cfg.MinAmount <= 0 {
		cfg.MinAmount = 1
	}
	if cfg.MaxAmount <= 0 {
		cfg.MaxAmount = maxAmount
	}
	if cfg.Fraud.WrongCodesLock > 0 && (cfg.Fraud.LockWindow <= 0 || cfg.Fraud.LockDuration <= 0) {
		return nil, fmt.Errorf("payswitch: a wrong-code lock needs a window and a duration")
	}
	if cfg.Fraud.WrongCodesPerOrigin < 0 {
		return nil, fmt.Errorf("payswitch: wrong codes per origin %d: want 0 (the lock's less one) or more", cfg.Fraud.WrongCodesPerOrigin)
	}
	if cfg.MinAmount > cfg.MaxAmount {
		return nil, fmt.Errorf("payswitch: min amount %d above max amount %d", cfg.MinAmount, cfg.MaxAmount)
	}
	if err := cfg.Requests.withDefaults(); err != nil {
		return nil, err
	}
	if cfg.EscrowReleaseAfter == 0 {
		cfg.EscrowReleaseAfter = 168 * time.Hour
	} else if cfg.EscrowReleaseAfter < 0 {
		return nil, fmt.Errorf("payswitch: escrow release after %v: want more than 0", cfg.EscrowReleaseAfter)
	}
	texts, err := NewTexts(cfg.Messages)
	if err != nil {
		return nil, err
	}
	now := d.Now
	if now == nil {
		now = time.Now
	}
	after := d.After
	if after == nil {
		after = time.After
	}
	oc := d.OTP.Config()
	e := &Engine{
		rules: rules{cfg: cfg, texts: texts, digits: oc.Digits, ttl: oc.TTL, resendInterval: oc.ResendInterval},
		ids:   timeid.New(paymentIDLayout),
		db:    d.DB, pg: d.DB.Dialect() == store.Postgres, ledger: d.Ledger, otp: d.OTP, outbox: d.Outbox, now: now, after: after, log: d.Log,
		airtime: d.Airtime, airtimeKick: make(chan struct{}, 1), simSwap: d.SIMSwap, products: d.Products, events: d.Events,
		escrowMerchants: d.Escrow,
		limits:          &limiter{perMinute: cfg.Fraud.RequestsPerMinute, numbers: map[string]*numberBudget{}},
		tills:           d.Tills, sales: d.Sales,
		transitions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "payswitch_payments_total",
			Help: "Payments entering each state, by type.",
		}, []string{"type", "state"}),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "payswitch_requests_total",
			Help: "Payment requests and confirmations by channel and outcome.",
		}, []string{"channel", "outcome"}),
	}
	if !e.pg {
		e.waiting = &waitingHints{}
	}
	e.locks = prometheus.NewCounter(prometheus.CounterOpts{Name: "payswitch_fraud_number_locks_total",
		Help: "Numbers locked after repeated wrong codes."})
	e.simSwaps = prometheus.NewCounter(prometheus.CounterOpts{Name: "payswitch_fraud_sim_swaps_total",
		Help: "Payments refused because the payer's SIM changed recently."})
	e.rateLimited = prometheus.NewCounter(prometheus.CounterOpts{Name: "payswitch_fraud_rate_limited_total",
		Help: "Payment requests refused by the per-number rate limit."})
	if d.Registry != nil {
		for _, c := range []prometheus.Collector{e.transitions, e.requests, e.locks, e.simSwaps, e.rateLimited} {
			if err := d.Registry.Register(c); err != nil {
				return nil, fmt.Errorf("payswitch: register metrics: %w", err)
			}
		}
	}
	return e, nil
}

// withDefaults fills in l's zero validities and checks them.
func (l *RequestLimits) withDefaults() error {
	if l.MaxTTL == 0 {
		l.MaxTTL = 24 * time.Hour
	}
	if l.DefaultTTL == 0 {
		l.DefaultTTL = min(10*time.Minute, l.MaxTTL)
	}
	switch {
	case l.MaxTTL < minRequestTTL:
		return fmt.Errorf("payswitch: requests' max ttl %v: want at least %v", l.MaxTTL, minRequestTTL)
	case l.DefaultTTL < minRequestTTL || l.DefaultTTL > l.MaxTTL:
		return fmt.Errorf("payswitch: requests' default ttl %v: want %v to %v", l.DefaultTTL, minRequestTTL, l.MaxTTL)
	case l.PerMerchantPerMinute < 0 || l.PerNumberPerDay < 0:
		return fmt.Errorf("payswitch: requests' caps %d, %d: want 0 (none) or more", l.PerMerchantPerMinute, l.PerNumberPerDay)
	}
	return nil
}

// fraudMetrics are the fraud controls' counters.
type fraudMetrics struct {
	locks, simSwaps, rateLimited prometheus.Counter
}

// Texts are the engine's message texts, for channels that show them on a screen.
func (e *Engine) Texts() *Texts { return e.texts }

// CodeDigits is the length of the one-time codes.
func (e *Engine) CodeDigits() int { return e.digits }

// Currency is the currency of every wallet.
func (e *Engine) Currency() string { return e.cfg.Currency }

// Normalize turns a number as typed into its international form.
func (e *Engine) Normalize(msisdn string) (string, error) {
	return NormalizeMSISDN(msisdn, e.cfg.CountryCode)
}

// op is one engine decision inside a store transaction. Effects that must not happen
// unless the transaction commits (logs, metrics, waking the outbox) wait in after.
type op struct {
	e      *Engine
	ctx    context.Context
	tx     store.Tx
	lt     *ledger.Tx
	snap   snapshotSource  // &sqlite, or on PostgreSQL a *pgSnapshots
	sqlite sqliteSnapshots // kept in the op, so that snap costs no allocation of its own
	now    time.Time
	after  []func()
	events int // enqueueEvents calls that queued through the EventSink
}

// write runs fn as one engine decision and, once it is durable, its after-effects.
func (e *Engine) write(ctx context.Context, fn func(o *op) error) (err error) {
	for range maxIDDraws {
		// A payment made inside fn drew an ID that is taken (see paymentIDLayout): fn's work
		// was rolled back, and it runs again with a new one.
		if err = e.writeOnce(ctx, fn); !errors.Is(err, errPaymentIDTaken) {
			return err
		}
		e.ids.Reseed()
	}
	return err
}

// writeOnce is write without its second try.
func (e *Engine) writeOnce(ctx context.Context, fn func(o *op) error) error {
	var o *op
	err := e.db.Write(ctx, func(tx store.Tx) error {
		if before, err := recordOnce(ctx, tx); err != nil || before {
			return err
		}
		o = e.newOp(ctx, tx)
		return fn(o)
	})
	if err != nil {
		return err
	}
	if err := onceRecorded(ctx); err != nil {
		return err
	}
	o.done()
	return nil
}

// errPaymentIDTaken means a new payment's ID belongs to an earlier payment: a switch
// restarted within the same ten-second tick drew a number it had used (paymentIDLayout). The
// operation is rolled back and made again with a new ID, up to maxIDDraws times.
var errPaymentIDTaken = errors.New("payswitch: payment ID already taken")

const maxIDDraws = 3

// inTx runs fn as one engine decision inside tx, a caller's store.Write, and returns what
// the caller must run once that Write has returned nil: o's after-effects.
func (e *Engine) inTx(ctx context.Context, tx store.Tx, fn func(o *op) error) (after func(), err error) {
	o := e.newOp(ctx, tx)
	if err := fn(o); err != nil {
		return nil, err
	}
	return o.done, nil
}

func (e *Engine) newOp(ctx context.Context, tx store.Tx) *op {
	o := &op{e: e, ctx: ctx, tx: tx, lt: e.ledger.In(tx), now: e.now().UTC(),
		sqlite: sqliteSnapshots{ctx: ctx, tx: tx, locksOn: e.cfg.Fraud.WrongCodesLock > 0}}
	o.snap = &o.sqlite
	if e.pg {
		o.snap = &pgSnapshots{sqliteSnapshots: o.sqlite, merchantCap: e.cfg.Requests.PerMerchantPerMinute > 0}
	}
	return o
}

// done runs o's after-effects; only once its transaction is durable.
func (o *op) done() {
	if k, ok := o.e.events.(kicker); ok && o.events > 0 {
		k.Kick()
	}
	for _, f := range o.after {
		f()
	}
}
