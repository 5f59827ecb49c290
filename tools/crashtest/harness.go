package main

import (
	"context"
	"fmt"
	"hash/fnv"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/payswitch/payswitch/internal/pgtest"
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
	sim    *smscsim.Sim // the first node's
	nodes  []*node      // serve processes sharing the database (more than one on PostgreSQL)
	pg     *pgtest.Server
	pair   *pgtest.Pair // -failover: a primary and its synchronous standby
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
	h.mail = newMailboxes()
	database := sqliteDatabase(filepath.Join(dir, "data", "payswitch.db"))
	h.dbPath = filepath.Join(dir, "data", "payswitch.db")
	if o.postgres {
		url, err := h.startPostgres(ctx)
		if err != nil {
			h.close()
			return nil, err
		}
		database, h.dbPath = postgresDatabase(url), ""
	}
	// Each node has its SMSC (a link of its own, as carriers bind to each switch node),
	// and each phone writes to one node's SMSC, by its number; what any node sends
	// reaches the phones' mailboxes.
	sims := make([]*smscsim.Sim, o.nodes)
	for i := range o.nodes {
		sim, err := smscsim.Start(smscsim.Config{
			Listen: "127.0.0.1:0", Accounts: map[string]string{"payswitch": smscPassword},
			Log: zerolog.Nop(), HistorySize: 1 << 20, RespTimeout: 5 * time.Second, RetryDelay: 100 * time.Millisecond,
		})
		if err != nil {
			h.close()
			return nil, err
		}
		sims[i] = sim
		ch, _ := sim.Subscribe("") // ends with sim.Close
		go h.mail.collect(ch)
		addr, err := freePort()
		if err != nil {
			h.close()
			return nil, err
		}
		cfg, logPath := filepath.Join(dir, "config.yaml"), filepath.Join(dir, logName)
		if o.nodes > 1 {
			cfg, logPath = filepath.Join(dir, fmt.Sprintf("config-%d.yaml", i+1)), filepath.Join(dir, fmt.Sprintf("serve-%d.log", i+1))
		}
		text := switchConfig(database, addr, sim.Addr(), smscPassword, opsToken, o.ttl)
		if o.diskLoss {
			text = strings.Replace(text, "  synchronous: FULL\n", "  synchronous: FULL\n"+replicaConfig(dir, o.replicaSync), 1)
		}
		if err := os.WriteFile(cfg, []byte(text), 0o600); err != nil {
			h.close()
			return nil, err
		}
		api := newClient(addr, opsToken)
		h.nodes = append(h.nodes, &node{sim: sim, api: api,
			srv: &server{bin: bin, config: cfg, logPath: logPath, dir: dir, api: api}})
	}
	// Provisioning, checks, export and verify go through the first node; the phones'
	// messages through their own.
	h.sim, h.srv, h.api = h.nodes[0].sim, h.nodes[0].srv, h.nodes[0].api
	h.drv = &driver{
		send: func(ctx context.Context, from, text string) error {
			return sims[nodeOf(from, len(sims))].SendMO(ctx, from, shortcode, text)
		},
		mail: h.mail, api: h.api, timeout: o.answerWait,
	}
	for _, n := range h.nodes {
		if err := n.srv.start(); err != nil {
			h.close()
			return nil, err
		}
	}
	for i, n := range h.nodes {
		if err := n.srv.waitHealthy(ctx, healthWait); err != nil {
			h.close()
			return nil, violated(invSwitchUp, "first start of node %d: %v", i+1, err)
		}
	}
	return h, nil
}

// failoverRound is the round of -failover's kill of the primary: the middle one, so that
// rounds run before it on the first primary and after it on the promoted standby.
func failoverRound(rounds int) int { return rounds/2 + 1 }

// node is one serve process with its SMSC.
type node struct {
	sim *smscsim.Sim
	srv *server
	api *client
}

// nodeOf is the node whose SMSC the phone msisdn writes to.
func nodeOf(msisdn string, nodes int) int {
	h := fnv.New32a()
	h.Write([]byte(msisdn))
	return int(h.Sum32() % uint32(nodes))
}

// close kills what is still running; run stops the switch gracefully before.
func (h *harness) close() {
	for _, n := range h.nodes {
		if n.srv.running() {
			n.srv.kill()
		}
		n.sim.Close()
	}
	if h.pg != nil {
		h.pg.Stop()
	}
	if h.pair != nil {
		h.pair.Stop()
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
	failErr := make(chan error, 1)
	if h.o.failover && r == failoverRound(h.o.rounds) {
		at := time.Duration(h.rng.Int64N(int64(h.window)))
		outage := time.Duration(h.rng.Int64N(int64(time.Second)))
		killedAt = append(killedAt, "primary@"+at.Round(time.Millisecond).String())
		go func() {
			select {
			case <-time.After(at):
				failErr <- h.failover(tctx, outage)
			case <-tctx.Done():
				failErr <- tctx.Err()
			}
		}()
	} else {
		failErr <- nil
	}
	<-done
	traffic := time.Since(trafficStart)
	if err := <-killErr; err != nil {
		return err
	}
	if err := <-failErr; err != nil {
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

	for _, n := range h.nodes {
		if !n.srv.running() {
			return violated(invSwitchUp, "%v", n.srv.unexpectedExit())
		}
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
	srv := h.srv
	if len(h.nodes) > 1 {
		srv = h.nodes[h.rng.IntN(len(h.nodes))].srv
	}
	kill := func() error {
		if h.o.failover && srv.refusedStart() {
			// Started during the primary's outage, it exited as it must (see waitBack);
			// a supervisor starts it again.
			return srv.start()
		}
		if err := srv.kill(); err != nil {
			return violated(invSwitchUp, "%v", err)
		}
		t.kills++
		return srv.start()
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
	if err := h.waitBack(ctx, srv); err != nil {
		return violated(invSwitchUp, "restart after kill %d: %v", t.kills, err)
	}
	h.outages = append(h.outages, outage{killed, time.Now()})
	return nil
}

// waitBack waits until srv is healthy after a restart. On PostgreSQL with -failover a
// node may start while the database has no primary (killed, the standby not yet
// promoted): it then exits saying the database is unreachable, as it must, and is
// started again, as a supervisor (systemd's Restart=) would, until the promoted standby
// takes it.
func (h *harness) waitBack(ctx context.Context, srv *server) error {
	deadline := time.Now().Add(healthWait)
	for {
		err := srv.waitHealthy(ctx, time.Until(deadline))
		if err == nil || !h.o.failover || srv.running() || time.Now().After(deadline) {
			return err
		}
		time.Sleep(200 * time.Millisecond)
		if err := srv.start(); err != nil {
			return err
		}
	}
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
	for _, n := range h.nodes {
		stopErr := n.srv.stop(20 * time.Second)
		if h.o.race && n.srv.raced() {
			return violated(invRace, "the race detector reported a data race; see %s", n.srv.logPath)
		}
		if stopErr != nil {
			fmt.Fprintf(h.errw, "crashtest: warning: %v\n", stopErr)
		}
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
