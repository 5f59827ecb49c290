package payswitch_test

import (
	"context"
	"regexp"
	"testing"
	"time"

	"github.com/payswitch/payswitch/internal/switchtest"
	"github.com/payswitch/payswitch/ledger"
	"github.com/payswitch/payswitch/outbox"
	"github.com/payswitch/payswitch/store"
	. "github.com/payswitch/payswitch/switch"
)

// The engine's behaviour is tested from outside the package, through its API, on the
// rig of internal/switchtest: a real database in a temporary directory, a clock that
// moves when the test says so. The decision functions' rule tables are internal tests
// (decide_*_test.go): they need no rig at all. (The package under test is dot-imported
// so that its names read as they do inside it.)

// harness is a switchtest.Rig with the helpers these tests read as stories: the engine
// with a sealed outbox, amounts from KES 1 to 150,000 and KES 300,000 a day; codes of 6
// digits that live 5 minutes and allow 3 tries. Set cfg, airtime or simSwap and restart
// to change what the engine is made with.
type harness struct {
	t       testing.TB
	rig     *switchtest.Rig
	clock   *switchtest.Clock
	db      *store.DB
	ledger  *ledger.Ledger
	outbox  *outbox.Outbox
	engine  *Engine
	cfg     Config
	airtime Airtime
	simSwap SIMSwap
	events  *eventLog // what merchants' systems were told
	catalog *catalog  // what merchants sell
}

// testSecret is the OTP secret of the rig (and the key its sealed outbox derives).
var testSecret = switchtest.Secret

func newHarness(t testing.TB) *harness {
	h := &harness{t: t, cfg: switchtest.DefaultConfig(), events: &eventLog{}, catalog: &catalog{}}
	h.rig = switchtest.New(t, switchtest.Options{Start: time.Date(2026, 11, 21, 9, 0, 0, 0, time.UTC), Sealed: true,
		Config: func(c *Config) { *c = h.cfg }, Products: h.catalog, Events: h.events})
	h.clock = h.rig.Clock
	h.synced()
	return h
}

// restart opens the switch again on the harness's database file, as a restart would,
// with h's cfg, airtime and simSwap.
func (h *harness) restart() {
	h.t.Helper()
	h.rig.Opts.Airtime, h.rig.Opts.SIMSwap = h.airtime, h.simSwap
	h.rig.Restart()
	h.synced()
}

func (h *harness) synced() {
	h.db, h.ledger, h.outbox, h.engine = h.rig.DB, h.rig.Ledger, h.rig.Outbox, h.rig.Engine
}

func (h *harness) wallet(msisdn string, balance int64) ledger.Account {
	h.t.Helper()
	a, err := h.engine.OpenAccount(context.Background(), OpenAccount{Type: ledger.Wallet, Name: "W " + msisdn, MSISDN: msisdn})
	if err != nil {
		h.t.Fatal(err)
	}
	if balance > 0 {
		if _, err := h.engine.Deposit(context.Background(), Deposit{Account: a.ID, Amount: balance, Reference: "seed-" + msisdn}); err != nil {
			h.t.Fatal(err)
		}
	}
	return a
}

func (h *harness) merchant(code, msisdn string) ledger.Account {
	h.t.Helper()
	a, err := h.engine.OpenAccount(context.Background(), OpenAccount{Type: ledger.Merchant, Name: "Mama Mboga", Code: code, MSISDN: msisdn})
	if err != nil {
		h.t.Fatal(err)
	}
	return a
}

func (h *harness) sms(from, text string) {
	h.t.Helper()
	if err := h.engine.HandleSMS(context.Background(), from, text); err != nil {
		h.t.Fatalf("HandleSMS(%q): %v", text, err)
	}
}

// last is the newest message queued for msisdn.
func (h *harness) last(msisdn string) outbox.Message {
	h.t.Helper()
	ms, err := h.outbox.List(context.Background(), msisdn, 1)
	if err != nil {
		h.t.Fatal(err)
	}
	if len(ms) == 0 {
		h.t.Fatalf("no message for %s", msisdn)
	}
	return ms[0]
}

func (h *harness) count(msisdn string) int {
	ms, err := h.outbox.List(context.Background(), msisdn, 1000)
	if err != nil {
		h.t.Fatal(err)
	}
	return len(ms)
}

var codeRun = regexp.MustCompile(`(^|[^0-9])([0-9]{6})([^0-9]|$)`)

// code reads the one-time code out of the newest OTP message to msisdn.
func (h *harness) code(msisdn string) string {
	h.t.Helper()
	m := h.last(msisdn)
	if m.Purpose != "otp" {
		h.t.Fatalf("newest message to %s is %q, not a code: %q", msisdn, m.Purpose, m.Text)
	}
	all := codeRun.FindAllStringSubmatch(m.Text, -1)
	if len(all) != 1 {
		h.t.Fatalf("want exactly one 6-digit run in %q, got %d", m.Text, len(all))
	}
	return all[0][2]
}

func (h *harness) balance(id string) ledger.Balance {
	h.t.Helper()
	a, err := h.ledger.Account(context.Background(), id)
	if err != nil {
		h.t.Fatal(err)
	}
	return a.Balance
}

// pendingOf is msisdn's payment waiting for its code, or nil.
func (h *harness) pendingOf(msisdn string) *Payment {
	h.t.Helper()
	ps, err := h.engine.Payments(context.Background(), msisdn, 100)
	if err != nil {
		h.t.Fatal(err)
	}
	for _, p := range ps {
		if p.State == StatePendingOTP && p.PayerMSISDN == msisdn {
			return p
		}
	}
	return nil
}

func wrongCode(c string) string {
	if c == "999999" {
		return "999998"
	}
	return "999999"
}

func (h *harness) assertBalanced() {
	h.t.Helper()
	rep, err := h.ledger.Verify(context.Background())
	if err != nil || !rep.OK {
		h.t.Fatalf("ledger verify: %+v %v", rep, err)
	}
}

// money writes an amount as the engine's texts do.
func money(minor int64) string { return FormatMoney("KES", minor) }

const alice, bob, mama = "254700000001", "254700000002", "254700000900"
