// Command loadgen measures payswitch end to end: many simulated feature phones pay
// merchants by SMS through a real `payswitch serve` process, over real SMPP on loopback.
//
//	go run ./tools/loadgen [-duration 30s] [-phones 4000] [-concurrency 160] [-window 64] [-think 0]
//	go run ./tools/loadgen -requests 50 [-compare [-rounds 1]] [-request-tills 0] [-request-phones 0]
//	go run ./tools/loadgen -echo [-echo-duration 5s] [-concurrency 160]
//	go run ./tools/loadgen -db postgres [-nodes 2]
//
// It starts a simulated SMSC (tools/smscsim) in this process, writes a temporary
// config.yaml, builds and starts `payswitch serve` as a separate process bound to that
// SMSC, opens the wallets and tills through the operator API, and then lets the phones
// pay: PAY <till> <amount>, the code from the code SMS, the receipt. Afterwards it checks
// the books through the API and prints
//
//	echo_pdus/s=X mo=N mt=N seconds=S p50_ms=Y p99_ms=Z
//	payments=N completed=N failed=N payments/s=X p50_ms=Y p99_ms=Z
//	serve_rss_mb=M
//	load payments/s=X pdus/s=P echo_ratio=R serve_cpu_ms/payment=C statements/payment=S pages/payment=W
//
// The first line is the ceiling of the same SMSC and SMPP stack with a trivial echo ESME
// in place of the switch (see runEcho). With -requests, merchants' requests to pay run
// beside the SMS payers (requests.go) and a requests= line follows the payments line;
// -compare runs without them and then with them, on fresh switches of the same binary
// (see usage). It exits non-zero when a check fails.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/debug"
	"strconv"
	"sync"
	"syscall"
	"time"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	// The first Ctrl-C stops the load gracefully (the run still finishes its payments in
	// flight, checks the books and prints its figures); after it the default handling
	// is back, so a second Ctrl-C ends loadgen at once (serve dies with it, see
	// serveProcAttr).
	go func() { <-ctx.Done(); stop() }()
	// The simulator and the phones share the machine with the switch they measure;
	// collecting garbage as seldom as serve does (GOGC=400) leaves it more of the CPU.
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(400)
	}
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "loadgen:", err)
		}
		os.Exit(1)
	}
}

const usage = `usage: loadgen [flags]

loadgen starts a simulated SMSC, builds and starts "payswitch serve" against it as a
separate process, opens -phones wallets (each funded by a deposit) and -merchants tills
through the operator API, and drives the phones through whole payments for -duration,
-concurrency of them at once: PAY <till> <amount>, wait for the code SMS, reply with the
code (after -think), wait for the receipt "<id> confirmed". A phone that gets no answer
within -timeout counts as failed and sends CANCEL. Ctrl-C stops early; the run still
finishes the payments in flight, checks and prints.

Output (stdout):
  echo_pdus/s=X mo=N mt=N seconds=S p50_ms=Y p99_ms=Z
      the echo ceiling (-echo-duration, before the switch starts): the same simulator
      and SMPP stack with an ESME that answers every MO with an MT of the same text.
      Counted: deliver_sm (MO) acknowledged by the ESME plus submit_sm (MT) accepted by
      the SMSC within the phase, over its length; responses, enquire_link and delivery
      receipts (none are asked for) are not counted. p50/p99: MO sent to MT received.
  payments=N completed=N failed=N payments/s=X p50_ms=Y p99_ms=Z
      payments started, confirmed by a receipt, not confirmed; completed per second of
      load; latency from the PAY MO to the receipt MT minus the phone's own time between
      the code SMS and its reply.
  serve_rss_mb=M
      peak resident memory of the serve process (VmHWM).
  load payments/s=X pdus/s=P echo_ratio=R serve_cpu_ms/payment=C statements/payment=S pages/payment=W
      what the load cost: payments/s counts the requests to pay completed too; pdus/s
      the request PDUs the simulated SMSC(s) exchanged with the switch during the load
      (deliver_sm acknowledged: MOs and delivery receipts; submit_sm accepted); R, P
      over the echo ceiling of the same run (unknown without an echo phase); C, serve's
      CPU time (all nodes) per completed payment; S, the statements run on the store
      writers' connections per completed payment (BEGIN and COMMIT not counted), from
      payswitch_store_statements_total; W, the database pages the writers' commits wrote
      to the WAL per completed payment, from payswitch_store_pages_written_total (SQLite
      only). A figure that cannot be read is "unknown".

Requests to pay (-requests R, requests started per second): every till gets a merchant
key (POST /api/v1/merchants/{id}/keys), and with it a webhook (PUT .../webhook) to an
HTTP receiver inside loadgen, one loopback port per till (up to 64), with a secret of
its own. At R per second, evenly spaced, a random till's key asks a free request phone
to pay KES 10 to 500 (POST /api/v1/payment-requests); the phone reads the code from the
request's SMS, replies with it (after -think) and waits for the receipt. Request phones
are wallets of their own (-request-phones; 0: R × (2 × -timeout + -think), at least 20),
never the SMS payers', so that each number has at most one request and the SMS payers'
figures and checks stay as without requests; a tick that finds every request phone busy
is skipped and logged, not made up. The receiver verifies every delivery with
webhook.Verify under its till's secret. By default the SMS payers' tills send the
requests, so their SMS payments have webhooks too, delivered and checked alike; with
-request-tills N, N tills of their own (which the SMS payers do not pay) have the keys
and webhooks and send the requests instead, so that only the requests make events.
-webhook-workers sets the switch's webhooks.workers (deliveries in flight at once; its
default is 8, and each merchant has at most 2). After the load loadgen waits for the
webhooks still owed (until none is missing, 5 s without one, or 3 min) and logs how
many came during the load and how long the rest took, and where the requests' time
went (p50/p99 of the API's answer, the request's SMS, code to receipt, receipt to
webhook).

  requests=N completed=N failed=N requests/s=X p50_ms=Y p99_ms=Z webhooks=N bad_signatures=N duplicates=N
      requests the API accepted or refused; completed: their payment.completed webhook
      arrived, signature verified; per second of load; latency from just before the API
      call to the webhook's arrival, minus the phone's time between the request's SMS and
      its reply. webhooks: distinct events received (the SMS payments' too, unless
      -request-tills); bad_signatures: deliveries webhook.Verify refused; duplicates:
      deliveries of an event already received (allowed: delivery is at least once).

-compare (needs -requests) runs two whole runs back to back on the same binary, each
with a fresh switch and database and the same wallets and tills: first SMS payments
only (no keys, no webhooks), then SMS payments with requests. Each prints its lines
prefixed by "sms_only: " and "with_requests: ", then
  compare sms_only_payments/s=X with_requests_payments/s=Y ratio=R requests/s=X requests_p99_ms=Z all_payments_ratio=T
where R is the SMS payments/s with requests over those without (the issue asks that
it stay at 0.9 or above; loadgen reports it, it does not fail on it: the host's speed
moves between runs), and T the same with the completed requests/s added to the SMS
payments/s: requests are payments too, booked by the same writer, so at a rate near
a tenth of the SMS payments' they lower R by themselves. The echo line is measured
once, before both. -rounds N makes N such pairs, the second of each pair first in
every other round (so that a host getting slower or faster favours neither), each
with its compare line, and ends with
  compare_rounds=N ratio_median=R ratio_min=A ratio_max=B all_payments_ratio_median=T

PostgreSQL (-db postgres [-nodes N] [-groups G]) starts a throwaway durable PostgreSQL on loopback
(pgtest: Debian's postgresql binaries; fsync and synchronous_commit on, as SQLite's
synchronous FULL) and runs the same load three times on fresh switches: one node on
SQLite, one node on PostgreSQL and N nodes sharing one PostgreSQL database, each node a
serve process with its own SMSC and HTTP port, the phones spread over the SMSCs (a
phone's MOs go to its node; its MTs may come from any node); -groups sets each node's
database.groups. Provisioning, checks and
the merchants' API calls go to the first node. Each run's lines are prefixed with its
name, and then
  db_compare sqlite_payments/s=X sqlite_p99_ms=Y postgres_1node_payments/s=X ... postgres_Nnodes_...
Before each load on PostgreSQL loadgen runs ANALYZE on the tables that hold rows, as
after any bulk load, so that the plans the nodes cached while provisioning filled the
tables are made again (tables still empty keep no statistics), and then CHECKPOINT.
-rounds R makes the PostgreSQL runs R times (SQLite once), one node first in odd rounds
and N nodes first in even ones, each round with its db_compare line, and ends with
  db_compare_rounds=R postgres_1node_median=X postgres_Nnodes_median=Y nodes_ahead=K
(K: the rounds in which N nodes took more payments/s than one).

Checks (exit status 1 when one fails): the trial balance is balanced; every wallet's
posted balance is its deposit minus the payments its phone saw confirmed, and its
completed payments in GET /api/v1/payments are exactly those; every till's balance is
the sum of the payments confirmed to it (SMS payments and requests). With requests,
also: no delivery refused (bad signature, unknown till, not an event); every payment
a phone saw confirmed has its payment.completed webhook at its till's endpoint, with
its amount, its till as payee and state completed; no such webhook for a payment no
phone saw confirmed, and none twice for one payment.

Flags:
`

// options are the command line.
type options struct {
	duration      time.Duration
	phones        int
	concurrency   int
	merchants     int
	think         time.Duration
	timeout       time.Duration
	echoOnly      bool
	echoDuration  time.Duration
	bin           string
	synchronous   string
	window        int
	keep          bool
	progress      time.Duration
	replica       bool
	db            string
	backupLoop    bool
	requests      float64 // requests to pay started per second; 0: none
	requestPhones int
	requestTills  int
	// webhookWorkers is the switch's webhooks.workers; 0: its default.
	webhookWorkers int
	compare        bool
	rounds         int  // pairs of runs of -compare
	postgres       bool // -db postgres: measure on PostgreSQL beside SQLite (dbcompare.go)
	nodes          int  // serve processes on PostgreSQL
	groups         int  // -groups: database.groups of each node on PostgreSQL
	// noReceiptDLR: -payer-receipt-dlr=false (smpp.payer_receipt_dlr of each node).
	noReceiptDLR bool
	// echoPDUs is the echo ceiling measured before the switch started (PDUs/s); 0: none.
	echoPDUs float64
}

// maxRequestPhones bounds -request-phones, as -phones is bounded.
const maxRequestPhones = 100_000

func parseFlags(args []string, stderr io.Writer) (options, error) {
	var o options
	fs := flag.NewFlagSet("loadgen", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, usage); fs.PrintDefaults() }
	fs.DurationVar(&o.duration, "duration", 30*time.Second, "how long phones start new payments")
	fs.IntVar(&o.phones, "phones", 4000, "distinct wallets (phones)")
	fs.IntVar(&o.concurrency, "concurrency", 160, "phones with a payment in flight at once (at most -phones)")
	fs.IntVar(&o.merchants, "merchants", 10, "tills the phones pay")
	fs.DurationVar(&o.think, "think", 0, "how long a phone takes to type the code after the code SMS")
	fs.DurationVar(&o.timeout, "timeout", 10*time.Second, "how long a phone waits for each SMS before it gives up")
	fs.BoolVar(&o.echoOnly, "echo", false, "measure only the echo ceiling for -echo-duration, without the switch")
	fs.DurationVar(&o.echoDuration, "echo-duration", 5*time.Second, "length of the echo phase; 0 skips it")
	fs.StringVar(&o.bin, "bin", "", "a prebuilt payswitch binary; empty builds one from the repository")
	fs.StringVar(&o.synchronous, "synchronous", "FULL", "database.synchronous of the switch: FULL or NORMAL")
	fs.IntVar(&o.window, "window", linkWindow, "deliver_sm the simulated SMSC keeps in flight to the switch (its window); the default is the switch's own submit_sm window in the generated config")
	fs.BoolVar(&o.replica, "replica", false, "stream the switch's database to a file replica (database.replicas, sync_interval 1s)")
	fs.StringVar(&o.db, "db", "", "\"postgres\": measure on PostgreSQL (a throwaway durable server loadgen starts) beside SQLite; otherwise a database file to start the switch on a copy of (a large one, for -backup-loop)")
	fs.IntVar(&o.nodes, "nodes", 1, "with -db postgres: serve processes sharing the database, each with its own SMSC; measured with 1 node and with this many")
	fs.BoolFunc("payer-receipt-dlr", "true (default) or false: smpp.payer_receipt_dlr of the switch, whether the payer's receipt SMS asks for a delivery receipt", func(v string) error {
		b, err := strconv.ParseBool(v)
		o.noReceiptDLR = !b
		return err
	})
	fs.IntVar(&o.groups, "groups", 0, "with -db postgres: database.groups of each node (transactions it fills at once); 0: the switch's default")
	fs.BoolVar(&o.backupLoop, "backup-loop", false, "run \"payswitch backup\" again and again during the load")
	fs.Float64Var(&o.requests, "requests", 0, "merchants' requests to pay started per second beside the SMS payers; 0: none")
	fs.IntVar(&o.requestPhones, "request-phones", 0, "wallets that receive the requests, apart from the SMS payers; 0: enough for -requests")
	fs.IntVar(&o.requestTills, "request-tills", 0, "tills of their own that send the requests, which the SMS payers do not pay; 0: the SMS payers' tills send them")
	fs.IntVar(&o.webhookWorkers, "webhook-workers", 0, "webhooks.workers of the switch (deliveries in flight); 0: its default")
	fs.BoolVar(&o.compare, "compare", false, "run without requests, then with -requests, on fresh switches, and compare SMS payments/s")
	fs.IntVar(&o.rounds, "rounds", 1, "pairs of runs -compare makes, or rounds of PostgreSQL runs -db postgres makes, alternating which goes first")
	fs.BoolVar(&o.keep, "keep", false, "keep the temporary directory (config, database, serve.log)")
	fs.DurationVar(&o.progress, "progress", 5*time.Second, "how often to log progress on stderr; 0: never")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if o.db == "postgres" {
		o.postgres, o.db = true, ""
	}
	switch {
	case o.nodes < 1 || o.nodes > 8 || o.nodes > 1 && !o.postgres:
		return o, errors.New("-nodes: 1 to 8, and more than 1 only with -db postgres")
	case o.groups < 0 || o.groups > 64 || o.groups > 0 && !o.postgres:
		return o, errors.New("-groups: 0 to 64, and only with -db postgres")
	case o.postgres && (o.compare || o.replica || o.backupLoop || o.echoOnly):
		return o, errors.New("-db postgres excludes -compare, -replica, -backup-loop and -echo")
	case fs.NArg() > 0:
		return o, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	case o.phones < 1 || o.concurrency < 1 || o.merchants < 1:
		return o, errors.New("-phones, -concurrency and -merchants must be at least 1")
	case o.phones > 1_000_000 || o.merchants > 10_000:
		return o, errors.New("at most 1000000 -phones and 10000 -merchants")
	case o.duration <= 0 || o.timeout <= 0 || o.think < 0 || o.echoDuration < 0 || o.progress < 0:
		return o, errors.New("-duration and -timeout must be positive, -think, -echo-duration and -progress not negative")
	case o.echoOnly && o.echoDuration == 0:
		return o, errors.New("-echo needs a positive -echo-duration")
	case o.synchronous != "FULL" && o.synchronous != "NORMAL":
		return o, fmt.Errorf("-synchronous %q: FULL or NORMAL", o.synchronous)
	case o.requests < 0 || o.requests > 10_000 || o.requestPhones < 0 || o.requestPhones > maxRequestPhones:
		return o, fmt.Errorf("-requests: 0 to 10000 per second; -request-phones: 0 to %d", maxRequestPhones)
	case o.requestTills < 0 || o.requestTills > 10_000 || o.webhookWorkers < 0 || o.webhookWorkers > 256:
		return o, errors.New("-request-tills: 0 to 10000; -webhook-workers: 0 to 256")
	case o.compare && o.requests == 0:
		return o, errors.New("-compare needs -requests")
	case o.compare && o.echoOnly:
		return o, errors.New("-compare and -echo exclude each other")
	case o.rounds < 1 || o.rounds > 100 || o.rounds > 1 && !o.compare && !o.postgres:
		return o, errors.New("-rounds: 1 to 100, and more than 1 only with -compare or -db postgres")
	}
	o.concurrency = min(o.concurrency, o.phones)
	return o, nil
}

// run is the whole command; ctx ending stops the load early (see main).
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	o, err := parseFlags(args, stderr)
	if err != nil {
		return err
	}
	lg := &logger{w: stderr}
	var echo *echoResult
	if o.echoDuration > 0 {
		lg.printf("echo phase: %s, %d phones at once", o.echoDuration, o.concurrency)
		r, err := runEcho(ctx, o, lg)
		if err != nil {
			return fmt.Errorf("echo: %w", err)
		}
		echo = &r
		o.echoPDUs = r.rate()
	}
	if o.echoOnly {
		fmt.Fprintln(stdout, echo.line())
		return nil
	}
	if echo != nil {
		fmt.Fprintln(stdout, echo.line())
	}
	if ctx.Err() != nil {
		return fmt.Errorf("interrupted before the load: %w", ctx.Err())
	}
	bin, cleanup, err := buildOrBin(ctx, o, lg)
	if err != nil {
		return err
	}
	defer cleanup()
	if o.postgres {
		return runDBCompare(ctx, o, bin, lg, stdout)
	}
	if !o.compare {
		pr, err := runSwitch(ctx, o, bin, lg, o.requests > 0, target{})
		printPhase(stdout, pr, "")
		return err
	}
	return runCompare(ctx, o, bin, lg, stdout)
}

// printPhase prints a run's lines, if it got as far as the load.
func printPhase(w io.Writer, pr *phaseResult, prefix string) {
	if pr == nil {
		return
	}
	for _, l := range pr.lines(prefix) {
		fmt.Fprintln(w, l)
	}
}

// logger writes progress lines to stderr; it is safe for concurrent use.
type logger struct {
	mu sync.Mutex // serialises writes to w
	w  io.Writer
}

func (l *logger) printf(format string, args ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	fmt.Fprintf(l.w, "loadgen: "+format+"\n", args...)
}
