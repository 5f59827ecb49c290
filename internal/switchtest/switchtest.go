// Package switchtest builds the payment engine, with its ledger and outbox, on a real
// database for the tests of the engine and of the channels over it (ussd, ivr): one
// set-up, kept in step with the engine's dependencies, instead of one per channel. The
// database is a SQLite file, or, inside pgtest.Both's postgres subtest, a new database
// of pgtest's server, on which Node starts more switch nodes.
package switchtest

import (
	"context"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/payswitch/payswitch/internal/dbtest"
	"github.com/payswitch/payswitch/internal/pgtest"
	"github.com/payswitch/payswitch/ledger"
	"github.com/payswitch/payswitch/otp"
	"github.com/payswitch/payswitch/outbox"
	"github.com/payswitch/payswitch/store"
	payswitch "github.com/payswitch/payswitch/switch"
)

// Clock is a test clock: time moves when the test says so, and by tick at every reading.
// Its timers (After) fire when Advance moves it past their deadline, never by themselves.
type Clock struct {
	mu      sync.Mutex // guards t and timers
	t       time.Time
	tick    time.Duration
	timers  []timer
	changed *sync.Cond // broadcast when a timer is added
}

type timer struct {
	at time.Time
	c  chan time.Time
}

// NewClock returns a clock that reads t, and moves on by tick after every reading.
func NewClock(t time.Time, tick time.Duration) *Clock {
	c := &Clock{t: t, tick: tick}
	c.changed = sync.NewCond(&c.mu)
	return c
}

// After returns a channel that receives the clock's time once Advance has moved it d
// past its time now.
func (c *Clock) After(d time.Duration) <-chan time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := timer{at: c.t.Add(d), c: make(chan time.Time, 1)}
	if d <= 0 {
		t.c <- c.t
		return t.c
	}
	c.timers = append(c.timers, t)
	c.changed.Broadcast()
	return t.c
}

// BlockUntilTimers waits until n timers wait for the clock to move: a goroutine that
// waits on After has got that far.
func (c *Clock) BlockUntilTimers(n int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for len(c.timers) < n {
		c.changed.Wait()
	}
}

// Now is the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(c.tick)
	return c.t
}

// Advance moves the clock on by d and fires the timers that are then due.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
	waiting := c.timers[:0]
	for _, t := range c.timers {
		if t.at.After(c.t) {
			waiting = append(waiting, t)
			continue
		}
		t.c <- c.t
	}
	c.timers = waiting
}

// Secret is the OTP secret of every Rig (and the key its sealed outbox derives).
var Secret = []byte("0123456789abcdef0123456789abcdef")

// Options shape a Rig.
type Options struct {
	Start       time.Time     // the clock's time at first (zero: DefaultStart)
	Tick        time.Duration // how far the clock moves at every reading (0: never by itself)
	Sealed      bool          // the outbox seals code texts, as serve's does
	VoiceNumber string        // the IVR's number: codes whose SMS fails are offered by call
	Fraud       payswitch.Fraud
	Airtime     payswitch.Airtime         // nil: airtime is not sold
	SIMSwap     payswitch.SIMSwap         // nil: no SIM-swap check
	Products    payswitch.ProductCatalog  // nil: no merchant sells products
	Events      payswitch.EventSink       // nil: no events are queued
	Escrow      payswitch.EscrowMerchants // nil: no merchant has escrow on
	Tills       payswitch.Tills           // nil: no stores
	Sales       payswitch.SalesReader     // nil: SALES is refused
	// Config, when set, changes the engine's configuration (DefaultConfig, with
	// VoiceNumber and Fraud from these Options) before the engine is made.
	Config func(*payswitch.Config)
}

// Rig is the engine on a database in a temporary directory (closed when the test
// ends), with the limits the channels' tests assume: amounts from KES 1 to 150,000, and
// KES 300,000 a day. Codes have 6 digits, live 5 minutes and allow 3 tries.
type Rig struct {
	T      testing.TB
	Path   string  // the database file ("" on PostgreSQL)
	URL    string  // the PostgreSQL database ("" on SQLite)
	Opts   Options // what Restart builds the engine with again
	Clock  *Clock
	DB     *store.DB
	Ledger *ledger.Ledger
	Outbox *outbox.Outbox
	Engine *payswitch.Engine
}

// DefaultConfig is the engine's configuration in a Rig, before Options.Config.
func DefaultConfig() payswitch.Config {
	return payswitch.Config{Currency: "KES", Shortcode: "22333", CountryCode: "254",
		MinAmount: 100, MaxAmount: 15000000, DailyMax: 30000000}
}

// DefaultStart is a rig's first time when Options leave it out: a real moment, since
// the engine refuses to record what happens at time zero (the authentication history
// requires a time).
var DefaultStart = time.Date(2026, 1, 5, 9, 0, 0, 0, time.UTC)

// New builds a Rig.
func New(t testing.TB, o Options) *Rig {
	t.Helper()
	if o.Start.IsZero() {
		o.Start = DefaultStart
	}
	r := &Rig{T: t, Opts: o, Clock: NewClock(o.Start, o.Tick)}
	if dbtest.Dialect(t) == store.Postgres {
		r.URL = pgtest.URL(t)
	} else {
		r.Path = filepath.Join(t.TempDir(), "payswitch.db")
	}
	t.Cleanup(func() { r.DB.Close() })
	r.open()
	return r
}

// Restart closes the database and opens the engine on it again with r.Opts, as a
// restart of the switch would; the clock goes on.
func (r *Rig) Restart() {
	r.T.Helper()
	if err := r.DB.Close(); err != nil {
		r.T.Fatal(err)
	}
	r.open()
}

func (r *Rig) open() {
	r.T.Helper()
	n := r.node()
	r.DB, r.Ledger, r.Outbox, r.Engine = n.DB, n.Ledger, n.Outbox, n.Engine
}

// Schemas are the components a Rig's database holds, in the order serve opens them.
var Schemas = []store.Schema{ledger.Schema, otp.Schema, outbox.Schema, payswitch.Schema}

// A Node is one switch process on a Rig's database: its own store.DB (its own
// connections), ledger, outbox and engine, made with the Rig's options and clock.
type Node struct {
	DB     *store.DB
	Ledger *ledger.Ledger
	Outbox *outbox.Outbox
	Engine *payswitch.Engine
}

// Node starts another switch node on r's PostgreSQL database, as a second serve process
// would, closed when the test ends. On SQLite, which has one writer per file, it is the
// Rig's own DB with an engine of its own.
func (r *Rig) Node() *Node {
	r.T.Helper()
	return r.NodeAt(0)
}

// NodeAt is Node with a clock of its own: r's clock moved on by offset, as a node whose
// clock is ahead of the others' would read it (behind, for a negative offset).
func (r *Rig) NodeAt(offset time.Duration) *Node {
	r.T.Helper()
	now := func() time.Time { return r.Clock.Now().Add(offset) }
	if r.URL == "" {
		return r.nodeOn(r.DB, now)
	}
	db := r.openDB()
	r.T.Cleanup(func() { db.Close() })
	return r.nodeOn(db, now)
}

// node opens a new store.DB on r's database and a node on it, at r's clock.
func (r *Rig) node() *Node {
	r.T.Helper()
	return r.nodeOn(r.openDB(), r.Clock.Now)
}

// openDB opens a new store.DB on r's database.
func (r *Rig) openDB() *store.DB {
	t := r.T
	t.Helper()
	var db *store.DB
	var err error
	if r.URL != "" {
		db, err = store.OpenPostgres(context.Background(), r.URL, store.Options{}, Schemas...)
	} else {
		db, err = store.Open(r.Path, store.Options{Synchronous: "NORMAL"}, Schemas...)
	}
	if err != nil {
		t.Fatal(err)
	}
	return db
}

// nodeOn makes a node's ledger, outbox and engine on db, at the clock now.
func (r *Rig) nodeOn(db *store.DB, now func() time.Time) *Node {
	t, o := r.T, r.Opts
	t.Helper()
	iss, err := otp.NewIssuer(Secret, otp.Config{Digits: 6, TTL: 5 * time.Minute, MaxAttempts: 3})
	if err != nil {
		t.Fatal(err)
	}
	n := &Node{DB: db, Ledger: ledger.New(db, now)}
	if o.Sealed {
		if n.Outbox, err = outbox.NewSealed(db, now, Secret); err != nil {
			t.Fatal(err)
		}
	} else {
		n.Outbox = outbox.New(db, now)
	}
	cfg := DefaultConfig()
	cfg.VoiceNumber, cfg.Fraud = o.VoiceNumber, o.Fraud
	if o.Config != nil {
		o.Config(&cfg)
	}
	n.Engine, err = payswitch.New(cfg,
		payswitch.Deps{DB: db, Ledger: n.Ledger, OTP: iss, Outbox: n.Outbox, Now: now, After: r.Clock.After,
			Log: zerolog.Nop(), Airtime: o.Airtime, SIMSwap: o.SIMSwap, Products: o.Products, Events: o.Events,
			Escrow: o.Escrow, Tills: o.Tills, Sales: o.Sales})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// Wallet opens msisdn's wallet and, for a positive balance, cashes that much in.
func (r *Rig) Wallet(msisdn string, balance int64) ledger.Account {
	r.T.Helper()
	ctx := context.Background()
	a, err := r.Engine.OpenAccount(ctx, payswitch.OpenAccount{Type: ledger.Wallet, Name: "W" + msisdn[len(msisdn)-3:], MSISDN: msisdn})
	if err != nil {
		r.T.Fatal(err)
	}
	if balance > 0 {
		if _, err := r.Engine.Deposit(ctx, payswitch.Deposit{Account: a.ID, Amount: balance, Reference: "seed-" + msisdn}); err != nil {
			r.T.Fatal(err)
		}
	}
	return a
}

// Merchant opens the till code, named name, whose owner's phone is msisdn.
func (r *Rig) Merchant(code, name, msisdn string) ledger.Account {
	r.T.Helper()
	a, err := r.Engine.OpenAccount(context.Background(), payswitch.OpenAccount{Type: ledger.Merchant, Name: name, Code: code, MSISDN: msisdn})
	if err != nil {
		r.T.Fatal(err)
	}
	return a
}

// Balance is account id's balance.
func (r *Rig) Balance(id string) ledger.Balance {
	r.T.Helper()
	a, err := r.Ledger.Account(context.Background(), id)
	if err != nil {
		r.T.Fatal(err)
	}
	return a.Balance
}

// Payments are msisdn's payments, newest first.
func (r *Rig) Payments(msisdn string) []*payswitch.Payment {
	r.T.Helper()
	ps, err := r.Engine.Payments(context.Background(), msisdn, 100)
	if err != nil {
		r.T.Fatal(err)
	}
	return ps
}

// Messages are the messages to msisdn, newest first (up to limit).
func (r *Rig) Messages(msisdn string, limit int) []outbox.Message {
	r.T.Helper()
	ms, err := r.Outbox.List(context.Background(), msisdn, limit)
	if err != nil {
		r.T.Fatal(err)
	}
	return ms
}
