package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/payswitch/payswitch/tools/smscsim"
)

const (
	logName      = "serve.log"
	opsToken     = "crashtest-ops-token"
	smscPassword = "crash-pw"       // SMPP 3.4 allows 8 characters
	healthWait   = 30 * time.Second // for the switch to come back after a kill
	// recoveryWindow bounds when a restarting switch is killed again: about as long as
	// it takes to open the database and start (a race-built switch takes longer).
	recoveryWindow = 150 * time.Millisecond
)

// harness runs the rounds: the simulator, the switch process, the phones and the checks.
type harness struct {
	o      options
	dir    string
	out    io.Writer // one line per round
	errw   io.Writer // details
	rng    *rand.Rand
	sim    *smscsim.Sim
	mail   *mailboxes
	srv    *server
	dbPath string
	api    *client
	drv    *driver

	phones    []*phone        // of every round so far
	delivered map[string]bool // payments whose owed messages were all seen
	outages   []outage        // every kill and when the switch was back
	window    time.Duration   // kills fall uniformly in [0, window) of a round's traffic
	total     tally
	start     time.Time
}

// outage is one kill of the switch and the moment it was healthy again.
type outage struct{ killed, back time.Time }

// tally counts what happened, per round and in all.
type tally struct {
	kills, payments, completed, failed, expired, cancelled, pending int
	refused, stalls, replays, recoveryKills                         int
}

func (t *tally) add(u tally) {
	t.kills += u.kills
	t.payments += u.payments
	t.completed += u.completed
	t.failed += u.failed
	t.expired += u.expired
	t.cancelled += u.cancelled
	t.refused += u.refused
	t.stalls += u.stalls
	t.replays += u.replays
	t.recoveryKills += u.recoveryKills
}

func newHarness(ctx context.Context, o options, dir string, out, errw io.Writer) (*harness, error) {
	h := &harness{o: o, dir: dir, out: out, errw: errw, rng: rand.New(rand.NewPCG(o.seed, o.seed^0x9e3779b97f4a7c15)),
		delivered: map[string]bool{}, window: 500 * time.Millisecond, start: time.Now()}
	bin := o.bin
	if bin == "" {
		t := time.Now()
		var err error
		if bin, err = buildSwitch(ctx, dir, o.race); err != nil {
			return nil, err
		}
		fmt.Fprintf(errw, "crashtest: built %s in %s\n", bin, time.Since(t).Round(time.Millisecond))
	} else if abs, err := filepath.Abs(bin); err == nil {
		bin = abs
	}
	sim, err := smscsim.Start(smscsim.Config{
		Listen: "127.0.0.1:0", Accounts: map[string]string{"payswitch": smscPassword},
		Log: zerolog.Nop(), HistorySize: 1 << 20, RespTimeout: 5 * time.Second, RetryDelay: 100 * time.Millisecond,
	})
	if err != nil {
		return nil, err
	}
	h.sim = sim
	h.mail = newMailboxes()
	ch, _ := sim.Subscribe("") // ends with sim.Close
	go h.mail.collect(ch)

	addr, err := freePort()
	if err != nil {
		h.close()
		return nil, err
	}
	cfg := filepath.Join(dir, "config.yaml")
	h.dbPath = filepath.Join(dir, "data", "payswitch.db")
	text := switchConfig(h.dbPath, addr, sim.Addr(), smscPassword, opsToken, o.ttl)
	if o.diskLoss {
		text = strings.Replace(text, "  synchronous: FULL\n", "  synchronous: FULL\n"+replicaConfig(dir, o.replicaSync), 1)
	}
	if err := os.WriteFile(cfg, []byte(text), 0o600); err != nil {
		h.close()
		return nil, err
	}
	h.api = newClient(addr, opsToken)
	h.srv = &server{bin: bin, config: cfg, logPath: filepath.Join(dir, logName), dir: dir, api: h.api}
	h.drv = &driver{
		send: func(ctx context.Context, from, text string) error { return sim.SendMO(ctx, from, shortcode, text) },
		mail: h.mail, api: h.api, timeout: o.answerWait,
	}
	if err := h.srv.start(); err != nil {
		h.close()
		return nil, err
	}
	if err := h.srv.waitHealthy(ctx, healthWait); err != nil {
		h.close()
		return nil, violated(invSwitchUp, "first start: %v", err)
	}
	return h, nil
}

// close kills what is still running; run stops the switch gracefully before.
func (h *harness) close() {
	if h.srv != nil && h.srv.running() {
		h.srv.kill()
	}
	if h.sim != nil {
		h.sim.Close()
	}
}

func (h *harness) run(ctx context.Context) error {
	if h.o.diskLoss {
		return h.runDiskLoss(ctx)
	}
	for r := 1; r <= h.o.rounds; r++ {
		if err := h.round(ctx, r); err != nil {
			return fmt.Errorf("round %d: %w", r, err)
		}
	}
	return h.finish(ctx)
}

// round provisions fresh phones and a merchant, lets the phones pay while the switch
// is killed and restarted, then checks everything the round touched.
func (h *harness) round(ctx context.Context, r int) error {
	began := time.Now()
	phones, err := h.provision(ctx, r)
	if err != nil {
		return err
	}
	// The plan: when each kill comes, and whether the restart after it is killed
	// again while it recovers (-1: not).
	delays := make([]time.Duration, h.o.kills)
	again := make([]time.Duration, h.o.kills)
	for i := range delays {
		delays[i] = time.Duration(h.rng.Int64N(int64(h.window)))
		again[i] = -1
		if h.rng.Float64() < h.o.recoveryKills {
			again[i] = time.Duration(h.rng.Int64N(int64(recoveryWindow)))
		}
	}

	// Traffic, with the killer alongside.
	tctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var phonesDone sync.WaitGroup
	for _, p := range phones {
		phonesDone.Go(func() { p.run(tctx, h.drv) })
	}
	done := make(chan struct{})
	go func() { phonesDone.Wait(); close(done) }()
	var t tally
	var killedAt []string
	inTraffic := 0 // kills that came before the phones were done
	killErr := make(chan error, 1)
	trafficStart := time.Now()
	go func() {
		for i, d := range delays {
			select {
			case <-time.After(d):
				select {
				case <-done:
				default:
					inTraffic++
				}
			case <-done:
			case <-tctx.Done():
				killErr <- tctx.Err()
				return
			}
			killedAt = append(killedAt, time.Since(trafficStart).Round(time.Millisecond).String())
			if again[i] >= 0 {
				killedAt = append(killedAt, "+"+again[i].Round(time.Millisecond).String())
			}
			if err := h.crash(tctx, again[i], &t); err != nil {
				killErr <- err
				cancel()
				return
			}
		}
		killErr <- nil
	}()
	<-done
	traffic := time.Since(trafficStart)
	if err := <-killErr; err != nil {
		return err
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	// The next round's kills fall within about as long as traffic takes undisturbed:
	// a kill during the traffic makes it longer by the restart and what was in flight.
	if inTraffic == 0 {
		h.window = max(traffic, 50*time.Millisecond)
	}

	if !h.srv.running() {
		return violated(invSwitchUp, "%v", h.srv.unexpectedExit())
	}
	// What the phones saw.
	var slowestAnswer time.Duration
	for _, p := range phones {
		slowestAnswer = max(slowestAnswer, p.slowest)
		for _, a := range p.attempts {
			if a.outcome == "refused" {
				t.refused++
			}
		}
		t.stalls += len(p.stalls)
		for _, s := range p.stalls {
			fmt.Fprintf(h.errw, "crashtest: round %d: phone stalled: %s\n", r, s)
		}
	}

	if err := h.sync(ctx, phones[0]); err != nil {
		return err
	}
	// Checks: the ledger as a whole, then every wallet and merchant the round touched
	// and a sample of older ones.
	if err := h.checkLedger(ctx, fmt.Sprint(r)); err != nil {
		return err
	}
	if err := h.redeposit(ctx, phones); err != nil {
		return err
	}
	set := h.checkSet(r)
	views, err := h.checkWallets(ctx, set)
	if err != nil {
		return err
	}
	slowest, err := h.checkDelivered(ctx, set, views)
	if err != nil {
		return err
	}
	n, err := h.replay(ctx, phones, views)
	if err != nil {
		return err
	}
	t.replays = n

	for _, p := range phones {
		for _, pay := range views[p].pays {
			if pay.Type != "merchant_payment" {
				continue
			}
			t.payments++
			switch pay.State {
			case "completed":
				t.completed++
			case "failed":
				t.failed++
			case "expired":
				t.expired++
			case "cancelled":
				t.cancelled++
			case "pending_otp":
				t.pending++
			}
		}
	}
	h.total.add(t)
	fmt.Fprintf(h.out, "round=%d kills=%d kill_at=%s in_traffic=%d payments=%d completed=%d failed=%d cancelled=%d expired=%d pending=%d refused=%d stalls=%d replays=%d slowest_sms=%s slowest_answer=%s traffic=%s took=%s ok\n",
		r, t.kills, strings.Join(killedAt, ","), inTraffic, t.payments, t.completed, t.failed, t.cancelled, t.expired, t.pending,
		t.refused, t.stalls, t.replays, slowest.Round(time.Millisecond), slowestAnswer.Round(time.Millisecond), traffic.Round(time.Millisecond), time.Since(began).Round(time.Millisecond))
	return nil
}

// crash kills the switch with SIGKILL and starts it again on the same database. When
// again >= 0, the new process is killed too, again after its start, while it recovers
// (expires what went overdue, re-arms the rest, resends what the outbox holds), and
// started once more. crash returns once the switch is healthy.
func (h *harness) crash(ctx context.Context, again time.Duration, t *tally) error {
	killed := time.Now()
	kill := func() error {
		if err := h.srv.kill(); err != nil {
			return violated(invSwitchUp, "%v", err)
		}
		t.kills++
		return h.srv.start()
	}
	if err := kill(); err != nil {
		return err
	}
	if again >= 0 {
		time.Sleep(again)
		t.recoveryKills++
		if err := kill(); err != nil {
			return err
		}
	}
	if err := h.srv.waitHealthy(ctx, healthWait); err != nil {
		return violated(invSwitchUp, "restart after kill %d: %v", t.kills, err)
	}
	h.outages = append(h.outages, outage{killed, time.Now()})
	return nil
}

// provision opens a merchant and fresh wallets for round r, deposits into each, and
// draws each phone's script.
func (h *harness) provision(ctx context.Context, r int) ([]*phone, error) {
	m := &merchant{code: fmt.Sprint(50000 + r), msisdn: fmt.Sprintf("2541%08d", r)}
	a, err := h.api.openAccount(ctx, "merchant", m.msisdn, m.code, fmt.Sprintf("Shop %d", r))
	if err != nil {
		return nil, fmt.Errorf("open merchant: %w", err)
	}
	m.account = a.ID
	var phones []*phone
	for i := range h.o.phones {
		p := &phone{msisdn: fmt.Sprintf("2547%05d%03d", r, i), merchant: m, round: r, byID: map[string]*attempt{}}
		a, err := h.api.openAccount(ctx, "wallet", p.msisdn, "", fmt.Sprintf("Phone %d-%d", r, i))
		if err != nil {
			return nil, fmt.Errorf("open wallet: %w", err)
		}
		p.account = a.ID
		// One phone in ten has too little for most payments: refusals move nothing either.
		if h.rng.IntN(10) == 0 {
			p.deposit = 5000 + h.rng.Int64N(20000)
		} else {
			p.deposit = 200000 + h.rng.Int64N(800000)
		}
		p.ref = fmt.Sprintf("CASHIN-%d-%d", r, i)
		if _, err := h.api.Deposit(ctx, p.account, p.deposit, p.ref); err != nil {
			return nil, fmt.Errorf("deposit: %w", err)
		}
		p.script = newScript(h.rng, h.o.attempts)
		phones = append(phones, p)
		m.phones = append(m.phones, p)
	}
	h.phones = append(h.phones, phones...)
	return phones, nil
}

// redeposit posts each deposit of the round again, after the kills: the same
// reference must return the same payment and credit nothing (checkWallet sees the
// balance).
func (h *harness) redeposit(ctx context.Context, phones []*phone) error {
	for _, p := range phones {
		pay, err := h.api.Deposit(ctx, p.account, p.deposit, p.ref)
		if err != nil {
			return violated(invDeposits, "%s: deposit %s again: %v", p.msisdn, p.ref, err)
		}
		if pay.Amount != p.deposit || pay.Payee != p.account {
			return violated(invDeposits, "%s: deposit %s again answered %+v", p.msisdn, p.ref, pay)
		}
	}
	return nil
}

// checkSet is the phones to check after round r: its own, the round before's (their
// silent payments expire now), and a sample of older ones.
func (h *harness) checkSet(r int) []*phone {
	var set, older []*phone
	for _, p := range h.phones {
		if p.round >= r-1 {
			set = append(set, p)
		} else {
			older = append(older, p)
		}
	}
	for _, i := range h.rng.Perm(len(older))[:min(len(older), 2*h.o.phones)] {
		set = append(set, older[i])
	}
	return set
}

// checkLedger checks the trial balance, then exports the ledger with the switch's own
// export command while it runs, and verifies the export.
func (h *harness) checkLedger(ctx context.Context, name string) error {
	tb, err := h.api.trialBalance(ctx)
	if err != nil {
		return fmt.Errorf("trial balance: %w", err)
	}
	if !tb.Balanced {
		return violated(invTrial, "GET /api/v1/ledger/trial-balance: %+v", tb)
	}
	out := filepath.Join(h.dir, "export-"+name)
	if text, err := h.srv.command(ctx, "export", "-config", h.srv.config, "-out", out); err != nil {
		return violated(invVerify, "payswitch export: %v\n%s", err, text)
	}
	if text, err := h.srv.command(ctx, "verify", out); err != nil {
		return violated(invVerify, "payswitch verify %s: %v\n%s", out, err, text)
	}
	return os.RemoveAll(out)
}

// readWallet reads a wallet's payments, its account, and its payments again, until the
// two reads of payments agree, so that the account belongs with them.
func (h *harness) readWallet(ctx context.Context, p *phone) (walletView, error) {
	for try := 0; try < 20; try++ {
		before, err := h.api.Payments(ctx, p.msisdn)
		if err != nil {
			return walletView{}, err
		}
		acct, err := h.api.Account(ctx, p.account)
		if err != nil {
			return walletView{}, err
		}
		after, err := h.api.Payments(ctx, p.msisdn)
		if err != nil {
			return walletView{}, err
		}
		if samePayments(before, after) {
			return walletView{acct: acct, pays: after}, nil
		}
	}
	return walletView{}, fmt.Errorf("%s: payments keep changing", p.msisdn)
}

// checkWallets reads and checks each phone of set, and each merchant of theirs.
func (h *harness) checkWallets(ctx context.Context, set []*phone) (map[*phone]walletView, error) {
	views := map[*phone]walletView{}
	for _, p := range set {
		v, err := h.readWallet(ctx, p)
		if err != nil {
			return nil, err
		}
		if err := checkWallet(p, v); err != nil {
			return nil, err
		}
		views[p] = v
	}
	seen := map[*merchant]bool{}
	for _, p := range set {
		if m := p.merchant; !seen[m] {
			seen[m] = true
			if err := h.checkMerchant(ctx, m, views); err != nil {
				return nil, err
			}
		}
	}
	return views, nil
}

// checkMerchant reads a merchant between two reads of its phones' payments and checks it.
func (h *harness) checkMerchant(ctx context.Context, m *merchant, views map[*phone]walletView) error {
	for try := 0; try < 20; try++ {
		mv := map[*phone]walletView{}
		for _, p := range m.phones {
			if v, ok := views[p]; ok && try == 0 {
				mv[p] = v
				continue
			}
			v, err := h.readWallet(ctx, p)
			if err != nil {
				return err
			}
			mv[p] = v
		}
		acct, err := h.api.Account(ctx, m.account)
		if err != nil {
			return err
		}
		stable := true
		for _, p := range m.phones {
			pays, err := h.api.Payments(ctx, p.msisdn)
			if err != nil {
				return err
			}
			stable = stable && samePayments(pays, mv[p].pays)
		}
		if stable {
			return checkMerchant(m, acct, mv)
		}
	}
	return fmt.Errorf("merchant %s: payments keep changing", m.code)
}

// checkDelivered checks that every payment of the views has its code message at the
// payer, and every completed one its receipt at the payer and its notice at the
// merchant, each within -receipt-wait of the moment it was owed or, when the switch
// was killed meanwhile, of the moment it was back: what the switch committed to send,
// it sends, a kill or not, and soon.
func (h *harness) checkDelivered(ctx context.Context, set []*phone, views map[*phone]walletView) (time.Duration, error) {
	var slowest time.Duration
	type owed struct {
		what, inv, to string
		pay           payment
		match         func(string) bool
		due           time.Time // the latest it may arrive
	}
	var todo []*owed
	for _, p := range set {
		for _, pay := range views[p].pays {
			if pay.Type != "merchant_payment" || h.delivered[pay.ID] {
				continue
			}
			id := pay.ID
			todo = append(todo, &owed{what: "code message", inv: invCodesSent, to: p.msisdn, pay: pay,
				match: func(t string) bool { return isOTPFor(t, id) }, due: h.due(pay.CreatedAt)})
			switch pay.State {
			case "completed":
				todo = append(todo,
					&owed{what: "receipt", inv: invDelivered, to: p.msisdn, pay: pay,
						match: func(t string) bool { return isReceipt(t, id) }, due: h.due(pay.UpdatedAt)},
					&owed{what: "merchant's notice", inv: invDelivered, to: p.merchant.msisdn, pay: pay,
						match: func(t string) bool { return isNotice(t, id) }, due: h.due(pay.UpdatedAt)})
			case "failed", "expired", "cancelled":
				// The payer is told it did not happen, and never that it did.
				if h.mail.has(p.msisdn, func(t string) bool { return isReceipt(t, id) }) {
					return 0, violated(invExactlyOnce, "%s: payment %s is %s, but the phone got its receipt", p.msisdn, id, pay.State)
				}
				state := pay.State
				todo = append(todo, &owed{what: "notice that it " + state, inv: invEnded, to: p.msisdn, pay: pay,
					match: func(t string) bool { st, ok := finalFor(t, id); return ok && st == state }, due: h.due(pay.UpdatedAt)})
			}
		}
	}
	for {
		var missing []*owed
		for _, o := range todo {
			at, ok := h.mail.first(o.to, o.match)
			if ok {
				slowest = max(slowest, at.Sub(o.due.Add(-h.o.receiptWait)))
			}
			switch {
			case !ok:
				missing = append(missing, o)
			case at.After(o.due):
				return slowest, violated(o.inv, "the %s of %s (%s, to %s) arrived %s after it was owed (the switch was up since %s); want within %s",
					o.what, o.pay.ID, o.pay.State, o.to, at.Sub(o.due.Add(-h.o.receiptWait)).Round(time.Millisecond),
					o.due.Add(-h.o.receiptWait).Format("15:04:05.000"), h.o.receiptWait)
			}
		}
		if len(missing) == 0 {
			break
		}
		now := time.Now()
		for _, o := range missing {
			if now.After(o.due) {
				return slowest, violated(o.inv, "the %s of %s (%s, to %s) never arrived; owed since %s, %s ago",
					o.what, o.pay.ID, o.pay.State, o.to, o.due.Add(-h.o.receiptWait).Format("15:04:05.000"),
					now.Sub(o.due.Add(-h.o.receiptWait)).Round(time.Millisecond))
			}
		}
		todo = missing
		select {
		case <-ctx.Done():
			return slowest, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
	for _, p := range set {
		for _, pay := range views[p].pays {
			// A payment still waiting may yet complete and owe more.
			if pay.State != "pending_otp" {
				h.delivered[pay.ID] = true
			}
		}
	}
	return slowest, nil
}

// due is the latest a message owed since t may arrive: -receipt-wait after t, or after
// the switch was back from a kill that came later.
func (h *harness) due(t time.Time) time.Time {
	from := t
	for _, o := range h.outages {
		if o.killed.After(t) && o.back.After(from) {
			from = o.back
		}
	}
	return from.Add(h.o.receiptWait)
}

// replay sends codes again after the kills: codes of completed payments and of
// payments that failed, expired or were cancelled, from the phone that had them. A
// phone with nothing waiting must be told so; a phone with a payment waiting must be
// told the code is wrong (an old code is not the new payment's). Then nothing may
// have moved. It returns how many codes it sent.
func (h *harness) replay(ctx context.Context, phones []*phone, views map[*phone]walletView) (int, error) {
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex // guards sent and first
		sent  int
		first error
	)
	fail := func(err error) {
		mu.Lock()
		defer mu.Unlock()
		if first == nil {
			first = err
		}
	}
	type job struct {
		p     *phone
		codes []*attempt
		texts []string // what the phone sends: each code, bare or as "OK <code>"
		wait  *payment // the payment waiting for a code, if any
	}
	var jobs []job
	for _, p := range phones {
		if len(p.stalls) > 0 {
			continue // it may still have messages on their way
		}
		v := views[p]
		state := map[string]string{}
		var wait *payment
		for i, pay := range v.pays {
			state[pay.ID] = pay.State
			if pay.State == "pending_otp" {
				wait = &v.pays[i]
			}
		}
		var used, dead []*attempt
		for _, a := range p.attempts {
			switch st := state[a.id]; {
			case a.code == "" || st == "":
			case st == "completed":
				used = append(used, a)
			case st != "pending_otp":
				dead = append(dead, a)
			}
		}
		var codes []*attempt
		if len(used) > 0 {
			codes = append(codes, used[h.rng.IntN(len(used))])
		}
		if len(dead) > 0 && wait == nil {
			codes = append(codes, dead[h.rng.IntN(len(dead))])
		}
		if wait != nil && len(codes) > 1 {
			codes = codes[:1] // one wrong code for the waiting payment is enough
		}
		if len(codes) > 0 {
			j := job{p: p, codes: codes, wait: wait}
			for _, a := range codes {
				if h.rng.IntN(2) == 0 {
					j.texts = append(j.texts, "OK "+a.code)
				} else {
					j.texts = append(j.texts, a.code)
				}
			}
			jobs = append(jobs, j)
		}
	}
	for _, j := range jobs {
		wg.Go(func() {
			for i, a := range j.codes {
				text := j.texts[i]
				mark := h.mail.mark(j.p.msisdn)
				if err := h.drv.send(ctx, j.p.msisdn, text); err != nil {
					fail(err)
					return
				}
				mu.Lock()
				sent++
				mu.Unlock()
				var bad string
				_, _, err := h.mail.await(ctx, j.p.msisdn, mark, h.o.answerWait, func(t string) bool {
					if isReceipt(t, a.id) || j.wait != nil && isReceipt(t, j.wait.ID) {
						bad = t
						return true
					}
					if t == textNoPending {
						return true // and the payment that waited, if any, expired meanwhile
					}
					if j.wait == nil {
						return false
					}
					_, over := finalFor(t, j.wait.ID)
					return isWrongCode(t, j.wait.ID) || over || strings.Contains(t, "Payments are locked")
				})
				switch {
				case errors.Is(err, errNoAnswer):
					fail(violated(invAnswered, "%s: no answer within %s to the replayed code of %s", j.p.msisdn, h.o.answerWait, a.id))
					return
				case err != nil:
					fail(err)
					return
				case bad != "":
					fail(violated(invCodeOnce, "%s: the replayed code of %s (%s) was answered %q", j.p.msisdn, a.id, a.outcome, bad))
					return
				}
			}
		})
	}
	wg.Wait()
	if first != nil {
		return sent, first
	}
	// An answer taken above may have been a copy of an older one; once the sync is
	// answered, every replayed code has surely been handled.
	if len(jobs) > 0 {
		if err := h.sync(ctx, jobs[0].p); err != nil {
			return sent, err
		}
	}
	for _, j := range jobs {
		after, err := h.readWallet(ctx, j.p)
		if err != nil {
			return sent, err
		}
		if err := checkUnmoved(j.p, views[j.p], after, "replaying old codes"); err != nil {
			return sent, err
		}
		if err := checkWallet(j.p, after); err != nil {
			return sent, err
		}
		views[j.p] = after
	}
	seen := map[*merchant]bool{}
	for _, j := range jobs {
		if m := j.p.merchant; !seen[m] {
			seen[m] = true
			if err := h.checkMerchant(ctx, m, views); err != nil {
				return sent, err
			}
		}
	}
	return sent, nil
}

// sync sends BAL from p and waits for the answer. The simulator delivers messages one
// at a time in the order they were sent, and the switch answers each after committing
// it, so once the answer is there every message sent before it has been handled.
func (h *harness) sync(ctx context.Context, p *phone) error {
	mark := h.mail.mark(p.msisdn)
	if err := h.drv.send(ctx, p.msisdn, "BAL"); err != nil {
		return err
	}
	_, _, err := h.mail.await(ctx, p.msisdn, mark, h.o.answerWait, func(t string) bool {
		return strings.HasPrefix(t, "Balance ")
	})
	if errors.Is(err, errNoAnswer) {
		return violated(invAnswered, "%s: no answer to BAL within %s", p.msisdn, h.o.answerWait)
	}
	return err
}

// finish waits for every unanswered payment to expire (with -drain), checks every
// wallet and merchant of the run once more, stops the switch with SIGTERM, and prints
// the totals.
func (h *harness) finish(ctx context.Context) error {
	if h.o.drain {
		// Every wallet with a payment still waiting for its code, until there is none.
		waiting := h.phones
		deadline := time.Now().Add(h.o.ttl + 15*time.Second)
		for len(waiting) > 0 {
			var still []*phone
			for _, p := range waiting {
				v, err := h.readWallet(ctx, p)
				if err != nil {
					return err
				}
				for _, pay := range v.pays {
					if pay.State == "pending_otp" {
						still = append(still, p)
						break
					}
				}
			}
			if waiting = still; len(waiting) == 0 {
				break
			}
			if time.Now().After(deadline) {
				return violated(invHolds, "%d wallets still have a payment waiting for a code %s after the last round, with a code TTL of %s",
					len(waiting), h.o.ttl+15*time.Second, h.o.ttl)
			}
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(500 * time.Millisecond):
			}
		}
	}
	if err := h.checkLedger(ctx, "final"); err != nil {
		return err
	}
	views, err := h.checkWallets(ctx, h.phones)
	if err != nil {
		return fmt.Errorf("final check: %w", err)
	}
	if _, err := h.checkDelivered(ctx, h.phones, views); err != nil {
		return fmt.Errorf("final check: %w", err)
	}
	stopErr := h.srv.stop(20 * time.Second)
	if h.o.race && h.srv.raced() {
		return violated(invRace, "the race detector reported a data race; see %s", h.srv.logPath)
	}
	if stopErr != nil {
		fmt.Fprintf(h.errw, "crashtest: warning: %v\n", stopErr)
	}
	t := h.total
	t.payments, t.completed, t.failed, t.cancelled, t.expired, t.pending = 0, 0, 0, 0, 0, 0
	for _, v := range views {
		for _, pay := range v.pays {
			if pay.Type != "merchant_payment" {
				continue
			}
			t.payments++
			switch pay.State {
			case "completed":
				t.completed++
			case "failed":
				t.failed++
			case "expired":
				t.expired++
			case "cancelled":
				t.cancelled++
			case "pending_otp":
				t.pending++
			}
		}
	}
	elapsed := time.Since(h.start)
	fmt.Fprintf(h.out, "crashtest: ok seed=%d rounds=%d kills=%d recovery_kills=%d payments=%d completed=%d failed=%d cancelled=%d expired=%d pending=%d refused=%d stalls=%d replays=%d duplicate_sms=%d elapsed=%s per_round=%s\n",
		h.o.seed, h.o.rounds, t.kills, t.recoveryKills, t.payments, t.completed, t.failed, t.cancelled, t.expired, t.pending, t.refused, t.stalls, t.replays, h.mail.duplicates(),
		elapsed.Round(time.Millisecond), (elapsed / time.Duration(h.o.rounds)).Round(time.Millisecond))
	return nil
}
