// Command crashtest drives payments through a real `payswitch serve` process, kills it
// with SIGKILL at random moments, restarts it on the same database and checks, after
// each round, that the kill lost and made no money:
//
//   - the trial balance holds and `payswitch export` + `payswitch verify` accept the
//     ledger;
//   - every payment is completed exactly once or not debited at all: each wallet's
//     posted balance is its deposit minus its completed payments, each merchant's is
//     the sum of the completed payments to it, and only payments whose code the phone
//     sent completed;
//   - holds match pending payments: each wallet's held balance is the sum of its
//     payments in pending_otp, and no payment is in a state outside the contract's;
//   - every completed payment's receipt reaches the payer and its notice the merchant,
//     and every payment's code message reaches the payer (after the restart if need be);
//   - no code works twice: codes the phones used, and codes of payments that failed,
//     expired or were cancelled, are sent again after the restart and move nothing;
//   - a deposit's reference, posted again, credits nothing.
//
// The SMSC is tools/smscsim, in this process, so it survives the kills: it redelivers
// the messages the dead switch did not acknowledge, and it is the phones' view of what
// the switch sent. Phones pay a merchant by SMS (PAY, then the code from the code
// message) and some of them deliberately send a wrong code first, send wrong codes
// until the payment fails, cancel, or never answer, so that payments expire across
// kills (the code TTL is short).
//
//	go run ./tools/crashtest                     # 3 rounds of 10 phones, as in CI
//	go run ./tools/crashtest -rounds 200 -seed 7 # longer; the seed replays the same plan
//
// With -disk-loss, each round loses the disk instead of the process and restores the
// database from a replica (see disk.go for what it checks then):
//
//	go run ./tools/crashtest -disk-loss -rounds 20
//
// With -db postgres the switch runs on a throwaway durable PostgreSQL that crashtest
// starts, and with -nodes N as N serve processes sharing it, each with its own SMSC
// (phones spread over them by number); each kill hits one node at random while the
// others go on:
//
//	go run ./tools/crashtest -db postgres -nodes 2 -rounds 20
//
// With -failover too, PostgreSQL is a durable primary with a synchronous standby, and in
// the middle round the primary is killed (SIGKILL) during the traffic and the standby
// promoted after up to a second; the nodes follow it by themselves (a multi-host
// database.url with target_session_attrs=read-write), and the round's checks then say
// whether anything acknowledged was lost or doubled:
//
//	go run ./tools/crashtest -db postgres -nodes 2 -failover -rounds 6
//
// Each round prints one line: round=K kills=N payments=P completed=C ... ok, where
// kill_at says when each kill came after the traffic began ("+d": the restart was
// killed again d after its start), slowest_sms how late the latest owed message (code,
// receipt, notice, end of a payment) arrived after it was owed or after the switch was
// back, and slowest_answer the longest a phone waited for the answer to a message. A
// broken invariant stops the run with exit status 1 and a message naming it; the
// working directory (database, config, the switch's log) is then kept for inspection.
// The seed fixes the plan (scripts, amounts, kill moments), not the interleaving, so
// a run with the same seed explores the same plan rather than replaying a failure.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(2)
		}
		fmt.Fprintln(os.Stderr, "crashtest:", err)
		os.Exit(1)
	}
}

// options are crashtest's flags.
type options struct {
	rounds        int
	phones        int
	attempts      int
	kills         int
	recoveryKills float64
	seed          uint64
	bin           string
	race          bool
	keep          bool
	ttl           time.Duration
	answerWait    time.Duration
	receiptWait   time.Duration
	drain         bool
	diskLoss      bool
	replicaSync   time.Duration
	maxLag        time.Duration
	db            string
	postgres      bool
	nodes         int
	failover      bool
}

const usage = `usage: crashtest [flags]

Drives payments through a real "payswitch serve", kills it with SIGKILL at random
moments, restarts it on the same database and checks after every round that money
was neither lost nor made, that holds match pending payments, that every receipt is
sent and that no code works twice. Exits 1 naming the first broken invariant.

Flags:`

func parseFlags(args []string, stderr io.Writer) (options, error) {
	var o options
	fs := flag.NewFlagSet("crashtest", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprintln(stderr, usage); fs.PrintDefaults() }
	fs.IntVar(&o.rounds, "rounds", 3, "rounds of payments, each with its kills and checks")
	fs.IntVar(&o.phones, "phones", 10, "phones paying at once in each round (fresh ones each round)")
	fs.IntVar(&o.attempts, "attempts", 4, "most payments one phone tries in a round")
	fs.IntVar(&o.kills, "kills", 1, "SIGKILLs of the switch in each round")
	fs.Float64Var(&o.recoveryKills, "recovery-kills", 0.25, "chance that the restart after a kill is killed again while it recovers")
	fs.Uint64Var(&o.seed, "seed", 0, "random seed of the plan (phones' behaviour, amounts, kill moments); 0 picks one")
	fs.StringVar(&o.bin, "bin", "", "payswitch binary to test; empty builds it from the module above the working directory")
	fs.BoolVar(&o.race, "race", false, "build the switch with the race detector, and fail on a race it reports")
	fs.BoolVar(&o.keep, "keep", false, "keep the working directory (database, config, log) even when all is well")
	fs.DurationVar(&o.ttl, "ttl", 20*time.Second, "otp.ttl of the switch: how long a code is valid")
	fs.DurationVar(&o.answerWait, "answer-wait", 45*time.Second, "how long a phone waits for an answer before it gives up (the switch's lease on a message it was sending when killed is 30s)")
	fs.DurationVar(&o.receiptWait, "receipt-wait", 15*time.Second, "how long the checks wait for receipts and code messages still owed")
	fs.BoolVar(&o.drain, "drain", true, "at the end, wait for every unanswered payment to expire and check that no hold is left")
	fs.BoolVar(&o.diskLoss, "disk-loss", false, "lose the disk instead of the process: stream to a file replica, kill, delete the data folder, restore from the replica, check (see disk.go)")
	fs.DurationVar(&o.replicaSync, "replica-sync", time.Second, "with -disk-loss: the replica's sync_interval")
	fs.DurationVar(&o.maxLag, "max-lag", 0, "with -disk-loss: payments acknowledged longer than this before the kill must be restored (default: twice -replica-sync, the documented bound)")
	fs.StringVar(&o.db, "db", "sqlite", "sqlite, or postgres: a throwaway durable PostgreSQL that crashtest starts (Debian's postgresql binaries)")
	fs.BoolVar(&o.failover, "failover", false, "with -db postgres: run on a primary with a synchronous standby, and in the middle round kill the primary (SIGKILL) during the traffic and promote the standby; the nodes carry on by themselves")
	fs.IntVar(&o.nodes, "nodes", 1, "with -db postgres: serve processes sharing the database, each with its own SMSC; each kill hits one at random")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	o.postgres = o.db == "postgres"
	switch {
	case o.db != "sqlite" && o.db != "postgres":
		return o, fmt.Errorf("-db %q: sqlite or postgres", o.db)
	case o.nodes < 1 || o.nodes > 8 || o.nodes > 1 && !o.postgres:
		return o, errors.New("-nodes: 1 to 8, and more than 1 only with -db postgres")
	case o.failover && !o.postgres:
		return o, errors.New("-failover needs -db postgres")
	case o.postgres && o.diskLoss:
		return o, errors.New("-disk-loss is for SQLite; on PostgreSQL the standby is the copy")
	case fs.NArg() > 0:
		return o, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	case o.rounds < 1 || o.phones < 1 || o.phones > 999 || o.attempts < 1 || o.attempts > 20 || o.kills < 0 || o.recoveryKills < 0 || o.recoveryKills > 1:
		return o, errors.New("want -rounds >= 1, -phones 1..999, -attempts 1..20, -kills >= 0, -recovery-kills 0..1")
	case o.ttl < time.Second:
		return o, errors.New("-ttl: at least 1s")
	case o.replicaSync <= 0 || o.maxLag < 0:
		return o, errors.New("-replica-sync must be > 0 and -max-lag >= 0")
	}
	if o.maxLag == 0 {
		o.maxLag = 2 * o.replicaSync
	}
	if o.seed == 0 {
		o.seed = uint64(time.Now().UnixNano())
	}
	return o, nil
}

// run is the whole crash test; tests call it directly.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) (err error) {
	o, err := parseFlags(args, stderr)
	if err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "crashtest-")
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "crashtest: seed=%d rounds=%d phones=%d kills/round=%d ttl=%s dir=%s\n",
		o.seed, o.rounds, o.phones, o.kills, o.ttl, dir)
	defer func() {
		if o.keep || err != nil {
			fmt.Fprintf(stderr, "crashtest: working directory kept: %s (switch log: %s)\n", dir, logName)
			return
		}
		os.RemoveAll(dir)
	}()
	h, err := newHarness(ctx, o, dir, stdout, stderr)
	if err != nil {
		return err
	}
	defer h.close()
	if err := h.run(ctx); err != nil {
		return fmt.Errorf("%w (seed %d)", err, o.seed)
	}
	return nil
}
