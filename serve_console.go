package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/payswitch/payswitch/api"
	"github.com/payswitch/payswitch/audit"
	"github.com/payswitch/payswitch/console"
	"github.com/payswitch/payswitch/ledger"
	"github.com/payswitch/payswitch/otp"
	"github.com/payswitch/payswitch/settlement"
	payswitch "github.com/payswitch/payswitch/switch"
	"github.com/payswitch/payswitch/tools/smscsim"
	"github.com/payswitch/payswitch/ussd"
)

// mountConsole serves the operators' console under /console/ on the API's listener,
// signed in with the same tokens. PAYSWITCH_CONSOLE_SECURE_COOKIES=1 marks its cookies
// Secure on plain HTTP, for a switch behind a proxy that terminates TLS.
func (a *app) mountConsole(srv *api.Server) error {
	loc, err := time.LoadLocation(a.cfg.Timezone)
	if err != nil {
		return fmt.Errorf("config: timezone: %w", err)
	}
	var tokens []console.Token
	for _, t := range a.cfg.HTTP.Tokens {
		tokens = append(tokens, console.Token{Name: t.Name, Token: t.Token, Role: console.Role(t.Role)})
	}
	b := &consoleBackend{a: a}
	if a.sim != nil {
		b.phone = &simPhone{sim: a.sim, menu: a.ussd, engine: a.engine, shortcode: a.cfg.Shortcode,
			serviceCode: a.cfg.USSD.ServiceCode, sent: map[string][]console.PhoneMessage{}}
	}
	c, err := console.New(b, console.Config{Tokens: tokens, Location: loc, Log: a.log,
		SecureCookies: os.Getenv("PAYSWITCH_CONSOLE_SECURE_COOKIES") == "1"})
	if err != nil {
		return err
	}
	srv.Handle("/console/", c)
	return nil
}

// consoleBackend adapts the switch to console.Backend.
type consoleBackend struct {
	a     *app
	phone *simPhone // nil without the demo SMSC
}

var _ console.Backend = (*consoleBackend)(nil)

func (b *consoleBackend) Currency() string { return b.a.cfg.Currency }

func (b *consoleBackend) Phone() console.Phone {
	if b.phone == nil {
		return nil // a nil *simPhone in the interface would not be nil
	}
	return b.phone
}

func (b *consoleBackend) Overview(ctx context.Context) (console.Overview, error) {
	h := b.a.health(ctx)
	ov := console.Overview{Outbox: h.Outbox, Database: console.Database{Writable: h.Database.OK,
		Fault: h.Database.Fault, Path: h.Database.Path, CheckpointEvery: 100 * time.Millisecond}}
	ckpt := b.a.db.LastCheckpoint()
	ov.Database.LastCheckpoint, ov.Database.WALFrames, ov.Database.CheckpointedWAL = ckpt.Time, ckpt.WALFrames, ckpt.Copied
	if p := b.a.cfg.Database.Path; p != "" {
		if fi, err := os.Stat(p); err == nil {
			ov.Database.Size = fi.Size()
		}
		if fi, err := os.Stat(p + "-wal"); err == nil {
			ov.Database.WALSize = fi.Size()
		}
	}
	for _, r := range h.Replicas {
		ov.Replicas = append(ov.Replicas, console.Replica{Name: r.Name, OK: r.OK, Error: r.Error,
			Lag: time.Duration(r.LagSeconds * float64(time.Second))})
	}
	link := func(l api.LinkHealth, server bool) console.Link {
		return console.Link{Name: l.Name, State: l.State, Sessions: l.Sessions, InFlight: l.InFlight, Window: l.Window,
			Submitted: l.Submitted, Failed: l.Failed, Received: l.Received, Throttled: l.Throttled, Server: server}
	}
	for _, l := range h.Links {
		ov.Links = append(ov.Links, link(l, false))
	}
	for _, l := range h.Server {
		ov.Links = append(ov.Links, link(l, true))
	}
	var err error
	if ov.Trial, err = b.a.ledger.TrialBalance(ctx); err != nil {
		return ov, err
	}
	if ov.HeadSeq, ov.HeadHash, err = b.a.ledger.Head(ctx); err != nil {
		return ov, fmt.Errorf("journal head: %w", err)
	}
	return ov, nil
}

func (b *consoleBackend) SettlementRuns(ctx context.Context, limit int) ([]console.SettlementRun, error) {
	runs, err := b.a.ledger.KeyDateRuns(ctx, settlement.KeyPrefix, limit)
	if err != nil {
		return nil, err
	}
	out := make([]console.SettlementRun, 0, len(runs))
	for _, r := range runs {
		out = append(out, console.SettlementRun{Date: r.Date, Currency: r.Currency, Merchants: r.Transfers, Total: r.Total})
	}
	return out, nil
}

func (b *consoleBackend) Activity(ctx context.Context, since time.Time) ([]console.ActivityRow, error) {
	return paymentActivity(ctx, b.a.db.Reader(), since)
}

// Find tries q as a payment ID, an account ID, a merchant code and a phone number (each
// one lookup of an index), then as part of a name.
func (b *consoleBackend) Find(ctx context.Context, q string) (console.Found, error) {
	if id := strings.ToUpper(q); payswitch.ValidPaymentID(id) {
		if _, err := consolePayment(ctx, b.a.db.Reader(), id); err == nil {
			return console.Found{Payment: id}, nil
		}
	}
	if acc, err := b.a.ledger.Account(ctx, q); err == nil {
		return console.Found{Account: acc.ID}, nil
	}
	var found []ledger.Account
	if acc, err := b.a.ledger.AccountByCode(ctx, q); err == nil {
		found = append(found, acc)
	}
	if n, err := b.a.engine.Normalize(q); err == nil {
		if acc, err := b.a.ledger.AccountByMSISDN(ctx, n); err == nil {
			found = append(found, acc)
		}
	}
	if len(found) == 1 {
		return console.Found{Account: found[0].ID}, nil
	}
	if len(found) == 0 {
		var err error
		if found, err = b.a.ledger.AccountsNamed(ctx, q, ledger.MaxNamed); err != nil {
			return console.Found{}, err
		}
	}
	return console.Found{Accounts: found}, nil
}

func (b *consoleBackend) Account(ctx context.Context, id string) (ledger.Account, error) {
	acc, err := b.a.ledger.Account(ctx, id)
	if errors.Is(err, ledger.ErrNotFound) {
		return acc, fmt.Errorf("%w: account %s", console.ErrNotFound, id)
	}
	return acc, err
}

func (b *consoleBackend) AccountPayments(ctx context.Context, acc ledger.Account, cursor string, limit int) ([]console.Payment, string, error) {
	if acc.MSISDN == "" {
		return nil, "", nil
	}
	return numberPayments(ctx, b.a.db.Reader(), acc.MSISDN, cursor, limit)
}

func (b *consoleBackend) AccountEntries(ctx context.Context, id string, beforeSeq int64, limit int) ([]ledger.Entry, error) {
	return b.a.ledger.Entries(ctx, id, beforeSeq, limit)
}

// SetAccountStatus freezes or reactivates through the engine, which records reason and
// actor with the change in the same write and refuses what may not change.
func (b *consoleBackend) SetAccountStatus(ctx context.Context, id string, s ledger.Status, reason, actor string) error {
	_, err := b.a.engine.SetAccountStatus(ctx, payswitch.AccountStatusChange{Account: id, Status: s, Reason: reason, Actor: actor})
	return engineErr(err)
}

// AccountChanges is the engine's history of the account's changes.
func (b *consoleBackend) AccountChanges(ctx context.Context, id string, limit int) ([]console.AccountChange, error) {
	cs, err := b.a.engine.AccountChanges(ctx, id, limit)
	if err != nil {
		return nil, err
	}
	out := make([]console.AccountChange, 0, len(cs))
	for _, c := range cs {
		out = append(out, console.AccountChange{At: c.At, Actor: c.Actor, Field: c.Field, Old: c.Old, New: c.New, Reason: c.Reason})
	}
	return out, nil
}

func (b *consoleBackend) Payment(ctx context.Context, id string) (console.PaymentDetail, error) {
	db := b.a.db.Reader()
	p, err := consolePayment(ctx, db, id)
	if err != nil {
		return console.PaymentDetail{}, err
	}
	d := console.PaymentDetail{Payment: p, Accounts: map[string]ledger.Account{}}
	if d.Timeline, err = paymentTimeline(ctx, db, id); err != nil {
		return d, err
	}
	if d.Transfers, err = b.a.ledger.TransfersOfPayment(ctx, id); err != nil {
		return d, err
	}
	if p.Type == string(payswitch.MerchantPayment) {
		if d.Refunds, err = b.paymentRefunds(ctx, id); err != nil {
			return d, err
		}
	}
	for _, tr := range d.Transfers {
		for _, acc := range []string{tr.Debit, tr.Credit} {
			if _, ok := d.Accounts[acc]; !ok {
				if a, err := b.a.ledger.Account(ctx, acc); err == nil {
					d.Accounts[acc] = a
				}
			}
		}
	}
	auth, err := otp.PaymentEvents(ctx, db, id)
	if err != nil {
		return d, err
	}
	times := []time.Time{p.CreatedAt}
	for _, e := range auth {
		d.Auth = append(d.Auth, console.AuthEvent{Time: e.Time, Event: e.Event, Channel: e.Channel, MSISDN: e.MSISDN, Detail: e.Detail})
		times = append(times, e.Time)
	}
	for _, sc := range d.Timeline {
		times = append(times, sc.Time)
	}
	msgs, err := b.a.outbox.PaymentMessages(ctx, id, times)
	if err != nil {
		return d, err
	}
	for _, m := range msgs {
		d.Messages = append(d.Messages, console.Message{ID: m.ID, Kind: m.Kind, To: m.To, Purpose: m.Purpose,
			State: m.State, Text: m.Text, Sealed: m.Sealed, Link: m.Link, LastError: m.LastError,
			Attempts: m.Attempts, CreatedAt: m.CreatedAt, Receipts: m.Receipts})
	}
	return d, nil
}

// Reverse is the API's reverse: the same engine call.
func (b *consoleBackend) Reverse(ctx context.Context, id, reason, reference string) error {
	_, err := b.a.engine.Reverse(ctx, id, payswitch.Reversal{Reason: reason, Reference: reference})
	return engineErr(err)
}

// Deposit is the API's deposit: the same engine call. The account may be given by ID,
// number or merchant code.
func (b *consoleBackend) Deposit(ctx context.Context, account string, amount int64, reference string) (string, error) {
	acc, err := b.a.ledger.Account(ctx, account)
	if err != nil {
		if n, nerr := b.a.engine.Normalize(account); nerr == nil {
			acc, err = b.a.ledger.AccountByMSISDN(ctx, n)
		}
	}
	if err != nil {
		acc, err = b.a.ledger.AccountByCode(ctx, account)
	}
	if err != nil {
		return "", fmt.Errorf("%w: no account has the ID, number or code %q", console.ErrNotFound, account)
	}
	p, err := b.a.engine.Deposit(ctx, payswitch.Deposit{Account: acc.ID, Amount: amount, Reference: reference})
	if err != nil {
		return "", engineErr(err)
	}
	return p.ID, nil
}

// Export is `payswitch export` of the whole ledger, from serve's own read connections.
func (b *consoleBackend) Export(ctx context.Context, dir string) error {
	_, err := audit.Export(ctx, b.a.db.Reader(), dir, audit.Options{})
	return err
}

// engineErr turns the engine's refusals into console.ErrRefused (shown with their
// reason) and its not-found into console.ErrNotFound.
func engineErr(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, payswitch.ErrNotFound), errors.Is(err, ledger.ErrNotFound):
		return fmt.Errorf("%w: %s", console.ErrNotFound, cleanErr(err))
	case errors.Is(err, payswitch.ErrInvalid), errors.Is(err, payswitch.ErrConflict),
		errors.Is(err, payswitch.ErrInsufficientFund), errors.Is(err, payswitch.ErrAirtimeDelivered),
		errors.Is(err, ledger.ErrInsufficientFunds), errors.Is(err, ledger.ErrDuplicate),
		errors.Is(err, ledger.ErrIdempotencyConflict), errors.Is(err, ledger.ErrAccountInactive),
		errors.Is(err, ledger.ErrAlreadyReversed), errors.Is(err, payswitch.ErrBalanceCap),
		// contract sections 11 and 14: refunds, escrow, tiers
		errors.Is(err, payswitch.ErrRefundTooMuch), errors.Is(err, payswitch.ErrNotRefundable),
		errors.Is(err, payswitch.ErrRefundLimit), errors.Is(err, payswitch.ErrNotInEscrow),
		errors.Is(err, payswitch.ErrBadTier), errors.Is(err, payswitch.ErrBadIDNumber):
		return fmt.Errorf("%w: %s", console.ErrRefused, cleanErr(err))
	}
	return err
}

// cleanErr drops the package prefixes that sentinel errors carry, as the API does.
func cleanErr(err error) string {
	msg := err.Error()
	for _, p := range []string{"payswitch: ", "ledger: "} {
		msg = strings.ReplaceAll(msg, p, "")
	}
	return msg
}

// simPhone is the console's phone: SMS through the demo SMSC, as a handset on it would
// send them, and USSD through the switch's menus in-process.
type simPhone struct {
	sim                    *smscsim.Sim
	menu                   *ussd.Menu
	engine                 *payswitch.Engine
	shortcode, serviceCode string

	mu   sync.Mutex // guards sent
	sent map[string][]console.PhoneMessage
}

// phoneSentMax bounds what the phone remembers having sent, per number and in numbers.
const (
	phoneSentMax    = 200
	phoneNumbersMax = 1000
)

func (p *simPhone) ServiceCode() string { return p.serviceCode }

func (p *simPhone) SendSMS(ctx context.Context, from, text string) error {
	if err := p.sim.SendMO(ctx, from, p.shortcode, text); err != nil {
		return err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if _, ok := p.sent[from]; !ok && len(p.sent) >= phoneNumbersMax {
		clear(p.sent)
	}
	ms := append(p.sent[from], console.PhoneMessage{Time: time.Now(), Text: text})
	if len(ms) > phoneSentMax {
		ms = ms[len(ms)-phoneSentMax:]
	}
	p.sent[from] = ms
	return nil
}

func (p *simPhone) Thread(number string) []console.PhoneMessage {
	p.mu.Lock()
	out := append([]console.PhoneMessage(nil), p.sent[number]...)
	p.mu.Unlock()
	for _, mt := range p.sim.MTs(number) {
		if mt.Status != "DELIVRD" || mt.USSD != nil {
			continue // a phone shows what reached it; USSD screens are not SMS
		}
		out = append(out, console.PhoneMessage{Time: mt.Time, Incoming: true, Text: mt.Text})
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Time.Before(out[j].Time) })
	return out
}

func (p *simPhone) USSD(ctx context.Context, session, number, input string, begin bool) (string, bool, error) {
	scr, err := p.menu.Step(ctx, ussd.Input{SessionID: session, Phone: number, ServiceCode: p.serviceCode,
		Network: "console", Incremental: true, NewInput: input, Begin: begin})
	return scr.Text, scr.End, err
}

// PushedScreen is the USSD screen the demo SMSC shows on the number's display: what
// the switch pushed to it (a request to pay, over a link with ussd_push) and its answers
// to the phone's replies.
func (p *simPhone) PushedScreen(number string) (console.PushedScreen, bool) {
	sc, ok := p.sim.USSDScreen(number)
	if !ok {
		return console.PushedScreen{}, false
	}
	return console.PushedScreen{From: sc.From, Text: sc.Text, Open: sc.Open, Time: sc.Time}, true
}

// AnswerPushed sends the phone's answer to its open screen through the SMSC, as the
// handset would: the switch gets it over the SMPP link like any USSD from a phone.
func (p *simPhone) AnswerPushed(ctx context.Context, number, input string) error {
	err := p.sim.AnswerUSSD(ctx, number, input)
	if errors.Is(err, smscsim.ErrNoUSSDScreen) {
		return fmt.Errorf("%w: %w", console.ErrNotFound, err)
	}
	return err
}

// Numbers are numbers the SMSC has delivered to (newest first) or the phone has sent
// from, to pick from.
func (p *simPhone) Numbers() []string {
	seen := map[string]bool{}
	var out []string
	mts := p.sim.MTs("")
	for i := len(mts) - 1; i >= 0 && len(out) < 20; i-- {
		if n := mts[i].To; !seen[n] {
			seen[n] = true
			out = append(out, n)
		}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	for n := range p.sent {
		if !seen[n] && len(out) < 30 {
			seen[n] = true
			out = append(out, n)
		}
	}
	return out
}
