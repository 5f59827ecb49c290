package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/payswitch/payswitch/config"
	"github.com/payswitch/payswitch/internal/pgtest"
)

// buildDir holds the payswitch binary the end-to-end tests share.
var buildDir string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "loadgen-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	buildDir = dir
	code := pgtest.Main(m)
	os.RemoveAll(dir)
	os.Exit(code)
}

var (
	buildOnce sync.Once
	builtBin  string
	buildErr  error
)

// switchBinary builds payswitch from this repository once per test binary.
func switchBinary(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds and runs payswitch serve; skipped with -short")
	}
	buildOnce.Do(func() { builtBin, buildErr = buildSwitch(context.Background(), buildDir) })
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return builtBin
}

var (
	finalLine = regexp.MustCompile(`^payments=(\d+) completed=(\d+) failed=(\d+) payments/s=([0-9.]+) p50_ms=([0-9.]+) p99_ms=([0-9.]+)$`)
	echoLine  = regexp.MustCompile(`^echo_pdus/s=(\d+) mo=(\d+) mt=(\d+) seconds=[0-9.]+ p50_ms=[0-9.]+ p99_ms=[0-9.]+$`)
	rssLine   = regexp.MustCompile(`^serve_rss_mb=[0-9.]+$`)
	// The load's costs; echo_ratio is unknown without an echo phase.
	loadLine = regexp.MustCompile(`^load payments/s=([0-9.]+) pdus/s=(\d+) echo_ratio=([0-9.]+|unknown) serve_cpu_ms/payment=([0-9.]+) statements/payment=([0-9.]+) pages/payment=([0-9.]+|unknown)$`)
	// The line of the requests to pay (-requests).
	requestsLine = regexp.MustCompile(`^requests=(\d+) completed=(\d+) failed=(\d+) requests/s=[0-9.]+ p50_ms=[0-9.]+ p99_ms=([0-9.]+) webhooks=(\d+) bad_signatures=(\d+) duplicates=(\d+)$`)
	compareOut   = regexp.MustCompile(`^compare sms_only_payments/s=([0-9.]+) with_requests_payments/s=([0-9.]+) ratio=([0-9.]+) requests/s=([0-9.]+) requests_p99_ms=[0-9.]+ all_payments_ratio=([0-9.]+)$`)
)

// figures is the final line, read back.
type figures struct{ payments, completed, failed int }

// readOutput checks the shape of loadgen's stdout: the echo line, the payments line,
// serve_rss_mb, the load's costs; and returns the payments line's counts.
func readOutput(t *testing.T, stdout string) figures {
	t.Helper()
	lines := strings.Split(strings.TrimRight(stdout, "\n"), "\n")
	if len(lines) != 4 {
		t.Fatalf("stdout has %d lines, want 4 (echo, payments, rss, load):\n%s", len(lines), stdout)
	}
	if m := echoLine.FindStringSubmatch(lines[0]); m == nil {
		t.Errorf("echo line %q does not parse", lines[0])
	} else if m[2] == "0" || m[3] == "0" {
		t.Errorf("echo line %q: no MO or no MT counted", lines[0])
	}
	m := finalLine.FindStringSubmatch(lines[1])
	if m == nil {
		t.Fatalf("final line %q does not parse", lines[1])
	}
	if !rssLine.MatchString(lines[2]) {
		t.Errorf("rss line %q does not parse", lines[2])
	}
	checkLoadLine(t, lines[3], true)
	f := figures{atoi(t, m[1]), atoi(t, m[2]), atoi(t, m[3])}
	if f.completed+f.failed != f.payments {
		t.Errorf("%q: completed + failed != payments", lines[1])
	}
	return f
}

// checkLoadLine checks the load's costs of a run on SQLite: PDUs counted, CPU,
// statements and pages per payment measured, and the PDU rate set against the echo
// ceiling when there was an echo phase.
func checkLoadLine(t *testing.T, line string, echo bool) {
	t.Helper()
	m := loadLine.FindStringSubmatch(line)
	if m == nil {
		t.Errorf("load line %q does not parse", line)
		return
	}
	if m[2] == "0" || m[5] == "0.0" || m[6] == "unknown" || (m[3] == "unknown") == echo {
		t.Errorf("load line %q: want PDUs, statements and pages (SQLite) counted, and an echo ratio only after an echo phase", line)
	}
	// At least the 8 request PDUs of each payment (2 MOs, 3 MTs, 3 receipts), but
	// the payments of the load's last moments may finish after it.
	rate, _ := strconv.ParseFloat(m[1], 64)
	pdus, _ := strconv.ParseFloat(m[2], 64)
	if rate <= 0 || pdus < 4*rate {
		t.Errorf("load line %q: %.0f PDUs/s for %.1f payments/s", line, pdus, rate)
	}
}

func atoi(t *testing.T, s string) int {
	t.Helper()
	n, err := strconv.Atoi(s)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// requestLine is the requests line, read back.
type requestLine struct{ requests, completed, failed, webhooks, badSignatures, duplicates int }

// readRequestRun checks the lines of a run with requests, each after prefix: payments,
// requests, serve_rss_mb, the load's costs; and returns the two first read back.
func readRequestRun(t *testing.T, lines []string, prefix string) (figures, requestLine) {
	t.Helper()
	if len(lines) != 4 {
		t.Fatalf("%d lines, want 4 (payments, requests, rss, load): %q", len(lines), lines)
	}
	for _, l := range lines {
		if !strings.HasPrefix(l, prefix) {
			t.Fatalf("line %q does not start with %q", l, prefix)
		}
	}
	m := finalLine.FindStringSubmatch(strings.TrimPrefix(lines[0], prefix))
	if m == nil {
		t.Fatalf("payments line %q does not parse", lines[0])
	}
	f := figures{atoi(t, m[1]), atoi(t, m[2]), atoi(t, m[3])}
	r := requestsLine.FindStringSubmatch(strings.TrimPrefix(lines[1], prefix))
	if r == nil {
		t.Fatalf("requests line %q does not parse", lines[1])
	}
	q := requestLine{atoi(t, r[1]), atoi(t, r[2]), atoi(t, r[3]), atoi(t, r[5]), atoi(t, r[6]), atoi(t, r[7])}
	if q.completed+q.failed != q.requests {
		t.Errorf("%q: completed + failed != requests", lines[1])
	}
	if !rssLine.MatchString(strings.TrimPrefix(lines[2], prefix)) {
		t.Errorf("rss line %q does not parse", lines[2])
	}
	checkLoadLine(t, strings.TrimPrefix(lines[3], prefix), false)
	return f, q
}

// TestRunWithRequests runs SMS payers and requests to pay from tills of their own,
// end to end: every request completes, each with its webhook signed right, and the
// books and the webhooks match what the phones saw.
func TestRunWithRequests(t *testing.T) {
	bin := switchBinary(t)
	var stdout, stderr bytes.Buffer
	err := run(context.Background(), []string{"-bin", bin, "-duration", "2s", "-phones", "20", "-concurrency", "4",
		"-echo-duration", "0", "-requests", "5", "-request-tills", "2", "-request-phones", "10"}, &stdout, &stderr)
	t.Logf("stderr:\n%s", stderr.String())
	if err != nil {
		t.Fatalf("run: %v\nstdout:\n%s", err, stdout.String())
	}
	f, q := readRequestRun(t, strings.Split(strings.TrimRight(stdout.String(), "\n"), "\n"), "")
	if f.completed == 0 || f.failed != 0 {
		t.Errorf("payments completed=%d failed=%d; want some completed and none failed", f.completed, f.failed)
	}
	if q.requests < 5 || q.failed != 0 || q.badSignatures != 0 {
		t.Errorf("%+v: want at least 5 requests (2 s at 5/s), none failed, no bad signature", q)
	}
	// Only the request tills have webhooks: one event per completed request.
	if q.webhooks != q.completed {
		t.Errorf("webhooks=%d, completed requests=%d; with -request-tills only the requests make events", q.webhooks, q.completed)
	}
	for _, want := range []string{"check: books match what the phones saw", "check: every payment confirmed to a till came to its webhook, signed right",
		"opening 30 wallets, 10 for requests, and 12 tills"} {
		if !strings.Contains(stderr.String(), want) {
			t.Errorf("stderr does not say %q", want)
		}
	}
}

// TestRunCompare runs -compare for two rounds: SMS payments alone, then with requests
// from the same tills (whose SMS payments then have webhooks too), and the other way
// round; every run passes its checks and the comparison lines parse.
func TestRunCompare(t *testing.T) {
	bin := switchBinary(t)
	var stdout, stderr bytes.Buffer
	err := run(context.Background(), []string{"-bin", bin, "-duration", "2s", "-phones", "20", "-concurrency", "4",
		"-echo-duration", "0", "-requests", "5", "-compare", "-rounds", "2"}, &stdout, &stderr)
	t.Logf("stderr:\n%s", stderr.String())
	if err != nil {
		t.Fatalf("run: %v\nstdout:\n%s", err, stdout.String())
	}
	lines := strings.Split(strings.TrimRight(stdout.String(), "\n"), "\n")
	if len(lines) != 17 {
		t.Fatalf("stdout has %d lines, want 17 (two rounds of 3 + 4 + 1, and the summary):\n%s", len(lines), stdout.String())
	}
	// Round 1 runs SMS only first, round 2 the run with requests first.
	for _, round := range []struct {
		smsOnly, withRequests, compare int // first lines
	}{{0, 3, 7}, {12, 8, 15}} {
		so, wr := lines[round.smsOnly:round.smsOnly+3], lines[round.withRequests:round.withRequests+4]
		m := finalLine.FindStringSubmatch(strings.TrimPrefix(so[0], "sms_only: "))
		if m == nil || !strings.HasPrefix(so[0], "sms_only: ") || !rssLine.MatchString(strings.TrimPrefix(so[1], "sms_only: ")) {
			t.Fatalf("an SMS-only run's lines do not parse: %q", so)
		}
		checkLoadLine(t, strings.TrimPrefix(so[2], "sms_only: "), false)
		if atoi(t, m[2]) == 0 || atoi(t, m[3]) != 0 {
			t.Errorf("SMS-only run: %q; want some completed and none failed", so[0])
		}
		f, q := readRequestRun(t, wr, "with_requests: ")
		if f.completed == 0 || f.failed != 0 || q.requests < 5 || q.failed != 0 || q.badSignatures != 0 {
			t.Errorf("run with requests: %+v %+v; want payments and requests completed, none failed, no bad signature", f, q)
		}
		// Every till has a webhook: the SMS payments' events come too.
		if q.webhooks != q.completed+f.completed {
			t.Errorf("webhooks=%d; want one per completed request (%d) and SMS payment (%d)", q.webhooks, q.completed, f.completed)
		}
		c := compareOut.FindStringSubmatch(lines[round.compare])
		if c == nil {
			t.Fatalf("compare line %q does not parse", lines[round.compare])
		}
		ratio, _ := strconv.ParseFloat(c[3], 64)
		all, _ := strconv.ParseFloat(c[5], 64)
		if ratio <= 0 || all <= ratio {
			t.Errorf("compare line %q: want a ratio, and a larger one with the requests counted", lines[round.compare])
		}
	}
	if !regexp.MustCompile(`^compare_rounds=2 ratio_median=[0-9.]+ ratio_min=[0-9.]+ ratio_max=[0-9.]+ all_payments_ratio_median=[0-9.]+$`).MatchString(lines[16]) {
		t.Errorf("summary line %q does not parse", lines[16])
	}
	if n := strings.Count(stderr.String(), "check: books match what the phones saw"); n != 4 {
		t.Errorf("the books check passed %d times, want 4 (one per run)", n)
	}
}

// TestRun runs a tiny load end to end against a real serve process: every payment
// completes and the books match.
func TestRun(t *testing.T) {
	bin := switchBinary(t)
	var stdout, stderr bytes.Buffer
	err := run(context.Background(), []string{"-bin", bin, "-duration", "2s", "-phones", "20",
		"-concurrency", "8", "-echo-duration", "1s"}, &stdout, &stderr)
	t.Logf("stderr:\n%s", stderr.String())
	if err != nil {
		t.Fatalf("run: %v\nstdout:\n%s", err, stdout.String())
	}
	f := readOutput(t, stdout.String())
	if f.completed == 0 || f.failed != 0 {
		t.Errorf("completed=%d failed=%d; want some completed and none failed", f.completed, f.failed)
	}
	if !strings.Contains(stderr.String(), "check: books match what the phones saw") {
		t.Errorf("stderr does not report the checks as passed")
	}
	// The writer's share of the load, from the switch's /metrics: some groups ran.
	if !regexp.MustCompile(`store writer during the load: busy \d+% .* [1-9]\d* groups/s of \d+\.\d operations, a write answered \d+\.\d ms after its call on average`).MatchString(stderr.String()) {
		t.Errorf("stderr does not report the store writer's work")
	}
	// How long the switch took to acknowledge MOs and receipts, from the simulator.
	if !regexp.MustCompile(`deliver_sm during the load: MO acknowledged p50/p99 \d+\.\d/\d+\.\d ms after sending \([1-9]\d*\), waited for the window p50/p99 \d+\.\d/\d+\.\d ms, the switch's own mean from arrival to answer \d+\.\d ms; receipt acknowledged`).MatchString(stderr.String()) {
		t.Errorf("stderr does not report the deliver_sm times")
	}
	if runtime.GOOS == "linux" && !regexp.MustCompile(`the machine during the load: busy \d+% of its \d+ cores`).MatchString(stderr.String()) {
		t.Errorf("stderr does not report the machine's CPU during the load")
	}
}

// TestRunDBCompareRounds runs -db postgres with two nodes for two rounds: SQLite once,
// then one node and two nodes on a real PostgreSQL in each round, every run's checks
// passed, and the rounds summed up.
func TestRunDBCompareRounds(t *testing.T) {
	pgtest.URL(t) // skips, with its message, where PostgreSQL's binaries are missing (never in CI)
	bin := switchBinary(t)
	var stdout, stderr bytes.Buffer
	err := run(context.Background(), []string{"-bin", bin, "-db", "postgres", "-nodes", "2", "-rounds", "2",
		"-duration", "1s", "-phones", "20", "-concurrency", "8", "-merchants", "2", "-echo-duration", "0"}, &stdout, &stderr)
	if err != nil {
		t.Fatalf("run: %v\nstdout:\n%s\nstderr:\n%s", err, stdout.String(), stderr.String())
	}
	out := stdout.String()
	perRound := regexp.MustCompile(`(?m)^db_compare (sqlite_payments/s=[0-9.]+ sqlite_p99_ms=[0-9.]+ )?postgres_1node_payments/s=([0-9.]+) postgres_1node_p99_ms=[0-9.]+ postgres_2nodes_payments/s=([0-9.]+) postgres_2nodes_p99_ms=[0-9.]+$`)
	rounds := perRound.FindAllStringSubmatch(out, -1)
	if len(rounds) != 2 || rounds[0][1] == "" || rounds[1][1] != "" {
		t.Fatalf("want two db_compare lines, SQLite in the first only:\n%s", out)
	}
	for _, r := range rounds {
		if r[2] == "0.0" || r[3] == "0.0" {
			t.Errorf("a round with no payments: %s", r[0])
		}
	}
	if !regexp.MustCompile(`(?m)^db_compare_rounds=2 postgres_1node_median=[0-9.]+ postgres_2nodes_median=[0-9.]+ nodes_ahead=[0-2]$`).MatchString(out) {
		t.Errorf("no summary line of the rounds:\n%s", out)
	}
	if n := strings.Count(stderr.String(), "check: books match what the phones saw"); n != 5 {
		t.Errorf("%d runs passed their checks, want 5 (SQLite, and two rounds of two)", n)
	}
	if n := strings.Count(stderr.String(), "analyzed the database after provisioning"); n != 4 {
		t.Errorf("%d runs analyzed their database, want the 4 on PostgreSQL", n)
	}
}

// TestRunStopsEarly stops a long run once the load has begun, as Ctrl-C does: the run
// still prints its figures and passes its checks.
func TestRunStopsEarly(t *testing.T) {
	bin := switchBinary(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var stdout bytes.Buffer
	stderr := &lineWatch{match: regexp.MustCompile(`progress: .* confirmed=[1-9]`), fire: cancel}
	err := run(ctx, []string{"-bin", bin, "-duration", "10m", "-phones", "10", "-concurrency", "4",
		"-echo-duration", "1s", "-progress", "100ms"}, &stdout, stderr)
	t.Logf("stderr:\n%s", stderr.String())
	if err != nil {
		t.Fatalf("run: %v\nstdout:\n%s", err, stdout.String())
	}
	if f := readOutput(t, stdout.String()); f.completed == 0 {
		t.Errorf("no payment completed before the stop; the test wanted some")
	}
	if !strings.Contains(stderr.String(), "stopped early") {
		t.Errorf("stderr does not say the load stopped early")
	}
}

// lineWatch is a writer that calls fire once what was written matches.
type lineWatch struct {
	mu    sync.Mutex // guards buf and fired
	buf   bytes.Buffer
	match *regexp.Regexp
	fire  func()
	fired bool
}

func (w *lineWatch) Write(b []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf.Write(b)
	if !w.fired && w.match.Match(w.buf.Bytes()) {
		w.fired = true
		w.fire()
	}
	return len(b), nil
}

func (w *lineWatch) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String()
}

func TestParseFlags(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		wantErr string
		want    func(o options) bool
	}{
		{name: "defaults", want: func(o options) bool {
			return o.phones == 4000 && o.concurrency == 160 && o.window == linkWindow && o.echoDuration > 0 && o.synchronous == "FULL"
		}},
		{name: "payer receipts without delivery receipts", args: []string{"-payer-receipt-dlr=false"},
			want: func(o options) bool { return o.noReceiptDLR }},
		{name: "payer receipts with delivery receipts", args: []string{"-payer-receipt-dlr"},
			want: func(o options) bool { return !o.noReceiptDLR }},
		{name: "bad payer-receipt-dlr", args: []string{"-payer-receipt-dlr=sometimes"}, wantErr: "payer-receipt-dlr"},
		{name: "concurrency above phones is phones", args: []string{"-phones", "5", "-concurrency", "50"},
			want: func(o options) bool { return o.concurrency == 5 }},
		{name: "no phones", args: []string{"-phones", "0"}, wantErr: "at least 1"},
		{name: "echo without a phase", args: []string{"-echo", "-echo-duration", "0"}, wantErr: "-echo needs"},
		{name: "bad synchronous", args: []string{"-synchronous", "OFF"}, wantErr: "FULL or NORMAL"},
		{name: "extra argument", args: []string{"serve"}, wantErr: "unexpected argument"},
		{name: "requests", args: []string{"-requests", "2.5", "-request-tills", "3", "-webhook-workers", "32"},
			want: func(o options) bool {
				return o.requests == 2.5 && o.requestTills == 3 && o.webhookWorkers == 32 && !o.compare
			}},
		{name: "compare without requests", args: []string{"-compare"}, wantErr: "-compare needs -requests"},
		{name: "rounds", args: []string{"-compare", "-requests", "5", "-rounds", "3"},
			want: func(o options) bool { return o.compare && o.rounds == 3 }},
		{name: "rounds without compare", args: []string{"-requests", "5", "-rounds", "3"}, wantErr: "only with -compare or -db postgres"},
		{name: "rounds of postgres", args: []string{"-db", "postgres", "-nodes", "2", "-rounds", "3"},
			want: func(o options) bool { return o.postgres && o.rounds == 3 }},
		{name: "negative requests", args: []string{"-requests", "-1"}, wantErr: "-requests"},
		{name: "too many webhook workers", args: []string{"-webhook-workers", "257"}, wantErr: "-webhook-workers"},
		{name: "groups", args: []string{"-db", "postgres", "-nodes", "2", "-groups", "1"},
			want: func(o options) bool { return o.postgres && o.nodes == 2 && o.groups == 1 }},
		{name: "groups without postgres", args: []string{"-groups", "1"}, wantErr: "only with -db postgres"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o, err := parseFlags(tt.args, &bytes.Buffer{})
			switch {
			case tt.wantErr != "":
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("parseFlags(%q) = %v; want an error with %q", tt.args, err, tt.wantErr)
				}
			case err != nil:
				t.Fatalf("parseFlags(%q): %v", tt.args, err)
			case !tt.want(o):
				t.Errorf("parseFlags(%q) = %+v", tt.args, o)
			}
		})
	}
}

func TestRequestPhoneCount(t *testing.T) {
	tests := []struct {
		name string
		o    options
		want int
	}{
		{"as asked", options{requestPhones: 7, requests: 100, timeout: 10 * time.Second}, 7},
		{"rate times the longest hold", options{requests: 50, timeout: 10 * time.Second, think: time.Second}, 1050},
		{"at least the minimum", options{requests: 0.5, timeout: time.Second}, requestPhonesMin},
		{"at most the bound", options{requests: 10_000, timeout: time.Minute}, maxRequestPhones},
	}
	for _, tt := range tests {
		if got := requestPhoneCount(tt.o); got != tt.want {
			t.Errorf("%s: requestPhoneCount = %d, want %d", tt.name, got, tt.want)
		}
	}
}

// TestSwitchConfigOnPostgres: the config loadgen writes for a PostgreSQL node is one the
// switch takes, with -groups as its database.groups and the switch's default without it.
func TestSwitchConfigOnPostgres(t *testing.T) {
	for _, groups := range []int{0, 1} {
		c := switchConfig{dir: t.TempDir(), dbURL: "postgres://postgres@127.0.0.1:5432/loadgen", httpAddr: "127.0.0.1:8080",
			smscAddr: "127.0.0.1:2775", password: "pw", token: "an operator token long enough", otpSecret: "0123456789abcdef0123456789abcdef",
			groups: groups}
		cfg, err := config.Parse([]byte(c.yaml()), func(string) string { return "" })
		if err != nil {
			t.Fatalf("groups %d: %v\n%s", groups, err, c.yaml())
		}
		want := groups
		if want == 0 {
			want = 2 // the switch's default
		}
		if cfg.Database.URL != c.dbURL || cfg.Database.Groups != want {
			t.Fatalf("groups %d: database %+v, want url %s and groups %d", groups, cfg.Database, c.dbURL, want)
		}
	}
}

// TestSwitchConfigPayerReceiptDLR: -payer-receipt-dlr=false reaches the switch's
// smpp.payer_receipt_dlr; without it the switch asks, as by default.
func TestSwitchConfigPayerReceiptDLR(t *testing.T) {
	for _, no := range []bool{false, true} {
		c := switchConfig{dir: t.TempDir(), httpAddr: "127.0.0.1:8080", smscAddr: "127.0.0.1:2775", password: "pw",
			token: "an operator token long enough", otpSecret: "0123456789abcdef0123456789abcdef", synchronous: "FULL",
			noReceiptDLR: no}
		cfg, err := config.Parse([]byte(c.yaml()), func(string) string { return "" })
		if err != nil {
			t.Fatalf("%v\n%s", err, c.yaml())
		}
		if cfg.SMPP.PayerReceiptDLR == no {
			t.Fatalf("noReceiptDLR %t: payer_receipt_dlr %t", no, cfg.SMPP.PayerReceiptDLR)
		}
	}
}
