package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/payswitch/payswitch/tools/smscsim"
)

// Sizes and timings of the switch run.
const (
	// funding is each wallet's deposit: KES 1,000,000.00, enough for 2,000 of the largest
	// payments a phone makes.
	funding = 100_000_000
	// provisionWorkers is how many API requests provisioning makes at once.
	provisionWorkers = 32
	// settleQuiet is how long no MT may arrive before loadgen takes the load as over.
	settleQuiet = time.Second
	// settleLimit bounds that wait, after the payments in flight finished.
	settleLimit = 15 * time.Second
	// simQueue bounds the MOs and receipts waiting in the simulator: far more than
	// -concurrency phones can have outstanding.
	simQueue = 1 << 20
	// simHistory keeps the simulator's MT history small: MTs reach loadgen through
	// Subscribe, not the history.
	simHistory = 64
)

// buildOrBin returns o.bin, or a payswitch built into a temporary directory that
// cleanup removes.
func buildOrBin(ctx context.Context, o options, lg *logger) (bin string, cleanup func(), err error) {
	if o.bin != "" {
		return o.bin, func() {}, nil
	}
	dir, err := os.MkdirTemp("", "loadgen-bin-")
	if err != nil {
		return "", nil, err
	}
	lg.printf("building payswitch")
	if bin, err = buildSwitch(ctx, dir); err != nil {
		os.RemoveAll(dir)
		return "", nil, err
	}
	return bin, func() { os.RemoveAll(dir) }, nil
}

// target is the database of a run's switch, and how many serve processes share it.
type target struct {
	url   string // a PostgreSQL database's URL; "": a SQLite file in the run's folder
	nodes int    // serve processes; 0 is 1 (more only on PostgreSQL)
}

func (t target) nodeCount() int { return max(t.nodes, 1) }

// runSwitch is a whole run against a fresh `payswitch serve` of bin: start, provision,
// load, check. withRequests adds the merchants' requests to pay beside the SMS payers
// (o.requests per second); the request phones are opened whenever o.requests is set,
// so that a run without requests of -compare starts from the same books. It returns
// the figures, if the load ran, and the checks' failures or why it could not run.
func runSwitch(ctx context.Context, o options, bin string, lg *logger, withRequests bool, tg target) (_ *phaseResult, err error) {
	dir, err := os.MkdirTemp("", "loadgen-")
	if err != nil {
		return nil, err
	}
	if o.keep {
		lg.printf("keeping %s", dir)
	} else {
		defer os.RemoveAll(dir)
	}

	password, token, secret := randomHex(8), randomHex(16), randomHex(32)
	// Each node has an SMSC of its own, as a switch node has its own SMPP links, and each
	// phone writes to one node's SMSC: its MOs reach that node, while its MTs may come
	// from any node (the outbox is shared on PostgreSQL), so loadgen hears every SMSC.
	sims := make([]*smscsim.Sim, tg.nodeCount())
	for i := range sims {
		if sims[i], err = smscsim.Start(smscsim.Config{
			Listen: "127.0.0.1:0", Accounts: map[string]string{"payswitch": password},
			QueueSize: simQueue, HistorySize: simHistory, Log: simLogger(lg), Window: o.window,
		}); err != nil {
			return nil, err
		}
		defer sims[i].Close()
	}

	// The phones exist before the first MT can come, so that the dispatcher's map never
	// changes while it runs.
	phones := make([]*phone, o.phones)
	var reqPhones []*phone
	if o.requests > 0 {
		reqPhones = newRequestPhones(requestPhoneCount(o))
	}
	// -request-tills are tills of their own after the SMS payers' ones.
	merchants := make([]merchant, o.merchants+o.requestTills)
	d := &dispatcher{phones: make(map[string]*phone, o.phones+len(reqPhones)), merchants: make(map[string]bool, len(merchants))}
	for i := range phones {
		phones[i] = newPhone(fmt.Sprintf("2547%08d", 10_000_000+i))
		d.phones[phones[i].msisdn] = phones[i]
	}
	for _, p := range reqPhones {
		d.phones[p.msisdn] = p
	}
	for i := range merchants {
		merchants[i] = merchant{code: fmt.Sprintf("%d", 70_000+i), msisdn: fmt.Sprintf("2547%08d", 90_000_000+i)}
		d.merchants[merchants[i].msisdn] = true
	}
	everyone := append(append([]*phone(nil), phones...), reqPhones...)
	for i, p := range everyone {
		p.sim = sims[i%len(sims)]
	}
	for _, sim := range sims {
		mts, unsubscribe := sim.Subscribe("")
		defer unsubscribe()
		go d.run(mts)
	}

	if o.db != "" {
		if err := seedDatabase(o.db, dir); err != nil {
			return nil, fmt.Errorf("-db: %w", err)
		}
	}
	var srvs []*serveProc
	defer func() {
		for _, srv := range srvs {
			if serr := srv.stop(); serr != nil {
				err = errors.Join(err, serr)
			}
		}
	}()
	for i, sim := range sims {
		httpAddr, err := freeAddr()
		if err != nil {
			return nil, err
		}
		nodeDir := dir
		if len(sims) > 1 {
			nodeDir = filepath.Join(dir, fmt.Sprintf("node%d", i+1))
			if err := os.Mkdir(nodeDir, 0o700); err != nil {
				return nil, err
			}
		}
		srv, err := startServe(ctx, bin, switchConfig{dir: nodeDir, dbURL: tg.url, httpAddr: httpAddr, smscAddr: sim.Addr(),
			password: password, token: token, otpSecret: secret, synchronous: o.synchronous, replica: o.replica,
			webhookWorkers: o.webhookWorkers, groups: o.groups, noReceiptDLR: o.noReceiptDLR})
		if err != nil {
			return nil, err
		}
		srvs = append(srvs, srv)
	}
	srv := srvs[0] // provisioning, checks and the merchants' API calls go to the first node
	api := newClient(srv.base, token)

	lg.printf("opening %d wallets, %d for requests, and %d tills", len(everyone), len(reqPhones), len(merchants))
	t0 := time.Now()
	if err := provision(ctx, api, everyone, merchants); err != nil {
		return nil, err
	}
	var (
		tills []hookTill
		recv  *hookReceiver
	)
	if withRequests {
		hookMerchants := merchants
		if o.requestTills > 0 {
			hookMerchants = merchants[o.merchants:]
		}
		if tills, recv, err = setupHooks(ctx, api, hookMerchants); err != nil {
			return nil, err
		}
		defer recv.close()
	}
	// Each deposit sends its phone a notice; let those go by before the load starts.
	for d.toPhones.Load() < int64(len(everyone)) && ctx.Err() == nil && time.Since(t0) < time.Minute+time.Duration(len(everyone))*time.Millisecond {
		time.Sleep(20 * time.Millisecond)
	}
	d.waitQuiet(ctx, 500*time.Millisecond, 10*time.Second)
	lg.printf("provisioned in %s", time.Since(t0).Round(time.Millisecond))
	if ctx.Err() != nil {
		return nil, fmt.Errorf("interrupted while provisioning: %w", ctx.Err())
	}
	if tg.url != "" {
		if err := analyze(ctx, tg.url); err != nil {
			return nil, err
		}
		lg.printf("analyzed the database after provisioning (its tables that hold rows), as after any bulk load, and checkpointed")
	}

	if withRequests {
		lg.printf("load: %s, %d phones, %d at once, think %s; beside them %.1f requests to pay/s to %d phones, webhooks to %d tills",
			o.duration, o.phones, o.concurrency, o.think, o.requests, len(reqPhones), len(tills))
	} else {
		lg.printf("load: %s, %d phones, %d at once, think %s", o.duration, o.phones, o.concurrency, o.think)
	}
	pool := poolOf(phones)
	drv := &driver{merchants: merchants[:o.merchants], timeout: o.timeout, think: o.think, progress: o.progress, lg: lg}
	work0 := readWork(ctx, srvs, sims, token)
	w0, wok0, _ := api.writerStats(ctx)
	wb0 := nodesWriteBytes(srvs)
	var stopBackups func() string
	if o.backupLoop {
		stopBackups = backupLoop(ctx, bin, dir, lg)
	}
	var (
		rqStats   *requestStats
		rqElapsed time.Duration
		rqDone    sync.WaitGroup
	)
	if withRequests {
		rq := &requester{tills: tills, rate: o.requests, timeout: o.timeout, think: o.think, progress: o.progress, lg: lg}
		rqDone.Go(func() { rqStats, rqElapsed = rq.drive(ctx, poolOf(reqPhones), o.duration) })
	}
	all, elapsed := drv.drive(ctx, pool, o.concurrency, o.duration)
	rqDone.Wait()
	loadEnd, hooksInLoad := time.Now(), int64(0)
	if recv != nil {
		hooksInLoad = recv.valid.Load()
	}
	if stopBackups != nil {
		lg.printf("during the load: %s", stopBackups())
	}
	work1 := readWork(context.Background(), srvs, sims, token)
	logServeWork(srvs, api, dir, lg, elapsed, work0, work1, w0, wok0, wb0)
	if ctx.Err() != nil {
		lg.printf("stopped early after %s", elapsed.Round(time.Millisecond))
	}
	// Late receipts of payments a phone gave up on still count once they arrive.
	d.waitQuiet(context.Background(), settleQuiet, settleLimit)
	for _, p := range everyone {
		p.drain()
	}
	var hooked map[string]string // till code -> account ID, of the tills with a webhook
	if withRequests {
		hooked = make(map[string]string, len(tills))
		for _, t := range tills {
			hooked[t.code] = t.id
		}
		missing := waitHooks(context.Background(), recv, confirmedToTills(everyone, hooked))
		lg.printf("webhooks: %d events arrived during the load (%.1f/s), %d after it, the last %.1fs after its end; %d payments confirmed to a till still without one",
			hooksInLoad, perSecond(int(hooksInLoad), elapsed), recv.valid.Load()-hooksInLoad,
			max(time.Unix(0, recv.last.Load()).Sub(loadEnd), 0).Seconds(), missing)
	}

	pr := &phaseResult{payments: paymentFigures(phones, all, elapsed, lg)}
	completed := pr.payments.completed
	if withRequests {
		rr := requestFigures(rqStats, recv, rqElapsed)
		pr.requests = &rr
		completed += rr.completed
		logRequests(rqStats, recv, lg)
	}
	logMachine(lg, work0, work1, completed)

	work := workBetween(work0, work1, completed, elapsed, o.echoPDUs)
	pr.work = &work
	lg.printf("MTs: %d to phones, %d payee notices, %d to unknown numbers, %d dropped (phone inbox full)",
		d.toPhones.Load(), d.notices.Load(), d.unknown.Load(), d.dropped.Load())

	checkErr := checkBooks(context.Background(), api, everyone, merchants, lg)
	if checkErr == nil {
		lg.printf("check: books match what the phones saw")
	}
	if withRequests {
		if err := checkHooks(recv, everyone, hooked); err != nil {
			checkErr = errors.Join(checkErr, err)
		} else {
			lg.printf("check: every payment confirmed to a till came to its webhook, signed right")
		}
	}
	for i, srv := range srvs {
		pr.rssMB = max(pr.rssMB, srv.peakRSSMB())
		if !srv.running() {
			checkErr = errors.Join(checkErr, fmt.Errorf("serve (node %d) exited during the run; its log:\n%s", i+1, srv.logTail(20)))
		}
	}
	return pr, checkErr
}

// poolOf is a pool of free phones holding all of phones.
func poolOf(phones []*phone) chan *phone {
	pool := make(chan *phone, len(phones))
	for _, p := range phones {
		pool <- p
	}
	return pool
}

// logServeWork logs what serve did during the load: its storage writes, its store
// writer's work (the first node's) and the CPU the nodes and loadgen used, from the
// readings taken before the load (w0, wb0) and before and after it (r0, r1).
func logServeWork(srvs []*serveProc, api *client, dir string, lg *logger, elapsed time.Duration,
	r0, r1 workReading, w0 writerStats, wok0 bool, wb0 int64) {
	if wb1 := nodesWriteBytes(srvs); wb0 >= 0 && wb1 >= 0 {
		lg.printf("serve wrote %.1f MB to storage during the load (%.0f KB/s); replica folder %.1f MB",
			float64(wb1-wb0)/1e6, float64(wb1-wb0)/1e3/elapsed.Seconds(), float64(dirBytes(filepath.Join(dir, "replica")))/1e6)
	}
	if w1, wok1, _ := api.writerStats(context.Background()); wok0 && wok1 {
		lg.printf("%s", writerLine(w0, w1, elapsed))
	}
	if line := deliveriesLine(r0, r1); line != "" {
		lg.printf("%s", line)
	}
	if cpu0, cpu1, self0, self1 := r0.cpu, r1.cpu, r0.self, r1.self; cpu0 >= 0 && cpu1 >= 0 && self0 >= 0 && self1 >= 0 {
		lg.printf("cpu during the load: serve (%d node(s)) %.1fs (%.0f%% of one core), loadgen with the simulator %.1fs (%.0f%%), over %.1fs",
			len(srvs), (cpu1 - cpu0).Seconds(), 100*(cpu1-cpu0).Seconds()/elapsed.Seconds(),
			(self1 - self0).Seconds(), 100*(self1-self0).Seconds()/elapsed.Seconds(), elapsed.Seconds())
	}
}

// nodesCPU is the CPU time the serve processes have used so far, or -1 when one cannot
// be read.
func nodesCPU(srvs []*serveProc) time.Duration {
	var sum time.Duration
	for _, s := range srvs {
		c := s.cpuTime()
		if c < 0 {
			return -1
		}
		sum += c
	}
	return sum
}

// nodesWriteBytes is what the serve processes have written to storage so far, or -1.
func nodesWriteBytes(srvs []*serveProc) int64 {
	var sum int64
	for _, s := range srvs {
		b := procWriteBytes(s.cmd.Process.Pid)
		if b < 0 {
			return -1
		}
		sum += b
	}
	return sum
}

// paymentFigures sums the SMS payers' payments and logs why some were not confirmed.
func paymentFigures(phones []*phone, all []stats, elapsed time.Duration, lg *logger) result {
	res := result{elapsed: elapsed}
	reasons := map[string]int{}
	for _, st := range all {
		res.latencies = append(res.latencies, st.latencies...)
		for k, v := range st.reasons {
			reasons[k] += v
		}
	}
	sortDurations(res.latencies)
	for _, p := range phones {
		n, _ := p.completed()
		res.payments += p.payments
		res.completed += n
	}
	res.failed = res.payments - res.completed
	if late := res.completed - len(res.latencies); late > 0 {
		lg.printf("%d payments confirmed only after their phone gave up", late)
	}
	if len(reasons) > 0 {
		lg.printf("not confirmed in time: %s", strings.Join(reasonsSummary(reasons), "; "))
	}
	return res
}

// logRequests logs why requests did not complete and what the webhook receiver took in.
func logRequests(st *requestStats, recv *hookReceiver, lg *logger) {
	if st.skipped > 0 {
		lg.printf("%d requests not started: every request phone was busy (raise -request-phones)", st.skipped)
	}
	if len(st.reasons) > 0 {
		lg.printf("requests not confirmed in time: %s", strings.Join(reasonsSummary(st.reasons), "; "))
	}
	lg.printf("requests' latency, p50/p99 of each step: %s", latencySteps(st.records, recv))
	types := recv.typeCounts()
	lg.printf("webhooks: %d deliveries, %d events (%s), %d duplicates, %d bad signatures, %d other refusals",
		recv.deliveries.Load(), recv.valid.Load(), strings.Join(reasonsSummary(types), ", "),
		recv.duplicates.Load(), recv.bad.Load(), recv.malformed.Load())
}

// provision opens the merchants' tills and the phones' wallets, funding each wallet.
func provision(ctx context.Context, api *client, phones []*phone, merchants []merchant) error {
	err := parallel(ctx, len(merchants), provisionWorkers, func(ctx context.Context, i int) error {
		m := &merchants[i]
		a, err := api.OpenAccount(ctx, map[string]string{"type": "merchant", "code": m.code,
			"name": "Till " + m.code, "msisdn": m.msisdn})
		m.id = a.ID
		return err
	})
	if err != nil {
		return fmt.Errorf("open tills: %w", err)
	}
	err = parallel(ctx, len(phones), provisionWorkers, func(ctx context.Context, i int) error {
		p := phones[i]
		a, err := api.OpenAccount(ctx, map[string]string{"type": "wallet", "msisdn": p.msisdn,
			"name": fmt.Sprintf("Phone %d", i)})
		if err != nil {
			return err
		}
		p.walletID = a.ID
		if _, err := api.Deposit(ctx, a.ID, funding, fmt.Sprintf("LOADGEN-%d", i)); err != nil {
			return err
		}
		p.funded = funding
		return nil
	})
	if err != nil {
		return fmt.Errorf("open wallets: %w", err)
	}
	return nil
}

// simLogger passes the simulator's warnings (a subscriber that fell behind, a
// delivery dropped) to loadgen's log.
func simLogger(lg *logger) zerolog.Logger {
	return zerolog.New(zerolog.ConsoleWriter{Out: lgWriter{lg}, NoColor: true, TimeFormat: time.TimeOnly}).
		Level(zerolog.WarnLevel).With().Timestamp().Logger()
}

// lgWriter is a logger as an io.Writer.
type lgWriter struct{ lg *logger }

func (w lgWriter) Write(b []byte) (int, error) {
	w.lg.printf("%s", strings.TrimRight(string(b), "\n"))
	return len(b), nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// logMachine logs the whole machine's CPU between readings r0 and r1 (machineCPU) and
// the part of it neither serve nor loadgen used, per completed payment.
func logMachine(lg *logger, r0, r1 workReading, payments int) {
	if payments == 0 || min(r0.busy, r1.busy, r0.cpu, r1.cpu, r0.self, r1.self) < 0 || r1.total <= r0.total {
		return
	}
	busy, total := r1.busy-r0.busy, r1.total-r0.total
	rest := max(busy-(r1.cpu-r0.cpu)-(r1.self-r0.self), 0)
	lg.printf("the machine during the load: busy %.0f%% of its %d cores, %.0f%% stolen by the host; the rest of the busy time (the database server on PostgreSQL, other processes) %.1fs, %.2f ms per payment",
		100*float64(busy)/float64(total), runtime.NumCPU(), 100*float64(r1.steal-r0.steal)/float64(total),
		rest.Seconds(), float64(rest)/float64(time.Millisecond)/float64(payments))
}
