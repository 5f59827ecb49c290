package main

import (
	"testing"
	"time"

	"github.com/payswitch/payswitch/tools/smscsim"
)

func TestResultLines(t *testing.T) {
	ms := time.Millisecond
	smsOnly := phaseResult{payments: result{payments: 1000, completed: 1000, elapsed: 10 * time.Second,
		latencies: []time.Duration{100 * ms, 200 * ms}}, rssMB: -1}
	rq := &requestResult{requests: 101, completed: 100, failed: 1, elapsed: 10 * time.Second,
		latencies: []time.Duration{30 * ms, 40 * ms, 900 * ms}, webhooks: 1000, badSignatures: 0, duplicates: 2}
	work := &workFigures{payments: 1000, elapsed: 10 * time.Second, cpu: 1500 * ms, statements: 27_000, pages: 12_000, pdus: 80_000, echoPDUsPerSec: 40_000}
	with := phaseResult{payments: result{payments: 905, completed: 900, failed: 5, elapsed: 10 * time.Second}, requests: rq, rssMB: 150, work: work}

	if got, want := rq.line(), "requests=101 completed=100 failed=1 requests/s=10.0 p50_ms=40.0 p99_ms=900.0 webhooks=1000 bad_signatures=0 duplicates=2"; got != want {
		t.Errorf("requests line\n got %s\nwant %s", got, want)
	}
	lines := with.lines("with_requests: ")
	if len(lines) != 4 || lines[1] != "with_requests: "+rq.line() || lines[2] != "with_requests: serve_rss_mb=150.0" ||
		lines[3] != "with_requests: load payments/s=100.0 pdus/s=8000 echo_ratio=0.200 serve_cpu_ms/payment=1.500 statements/payment=27.0 pages/payment=12.0" {
		t.Errorf("lines = %q", lines)
	}
	unknown := workFigures{payments: 10, elapsed: time.Second, cpu: -1, statements: -1, pdus: 80}
	if got, want := unknown.line(), "load payments/s=10.0 pdus/s=80 echo_ratio=unknown serve_cpu_ms/payment=unknown statements/payment=unknown pages/payment=unknown"; got != want {
		t.Errorf("load line\n got %s\nwant %s", got, want)
	}
	if got := smsOnly.lines(""); len(got) != 2 || got[1] != "serve_rss_mb=unknown" {
		t.Errorf("lines without requests = %q", got)
	}
	// 90 SMS payments/s against 100: 0.9; with the 10 requests/s, 1.0.
	want := "compare sms_only_payments/s=100.0 with_requests_payments/s=90.0 ratio=0.900 requests/s=10.0 requests_p99_ms=900.0 all_payments_ratio=1.000"
	if got := compare(smsOnly, with).line(); got != want {
		t.Errorf("compare line\n got %s\nwant %s", got, want)
	}
}

func TestComparisonsLine(t *testing.T) {
	cs := []comparison{{ratio: 0.95, allPayments: 1.05}, {ratio: 0.85, allPayments: 0.9}, {ratio: 1.1, allPayments: 1.2}, {ratio: 0.9, allPayments: 1.0}}
	want := "compare_rounds=4 ratio_median=0.925 ratio_min=0.850 ratio_max=1.100 all_payments_ratio_median=1.025"
	if got := comparisonsLine(cs); got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
	if got := comparisonsLine(cs[:3]); got != "compare_rounds=3 ratio_median=0.950 ratio_min=0.850 ratio_max=1.100 all_payments_ratio_median=1.050" {
		t.Errorf("odd count: %s", got)
	}
}

func TestDBRoundsLine(t *testing.T) {
	rounds := []dbRound{{one: 300, many: 330}, {one: 280, many: 270}, {one: 250, many: 310}}
	want := "db_compare_rounds=3 postgres_1node_median=280.0 postgres_2nodes_median=310.0 nodes_ahead=2"
	if got := dbRoundsLine(2, rounds); got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
}

// deliveriesLine reports each kind that went during the load, from the histograms' growth.
func TestDeliveriesLine(t *testing.T) {
	var ack, wait smscsim.Latency
	for range 10 {
		ack.Add(3 * time.Millisecond)
		wait.Add(time.Millisecond)
	}
	before := workReading{deliveries: map[string]smscsim.DeliveryTimes{"MO": {Ack: ack, Wait: wait}},
		answered: map[string]answerTimes{"mo": {sum: 0.05, count: 10}}}
	if got := deliveriesLine(before, before); got != "" {
		t.Fatalf("nothing went, yet %q", got)
	}
	ack.Add(40 * time.Millisecond)
	wait.Add(20 * time.Millisecond)
	var receipts smscsim.Latency
	receipts.Add(12 * time.Millisecond)
	after := workReading{deliveries: map[string]smscsim.DeliveryTimes{"MO": {Ack: ack, Wait: wait},
		"receipt": {Ack: receipts, Wait: receipts}},
		answered: map[string]answerTimes{"mo": {sum: 0.0625, count: 11}}}
	want := "deliver_sm during the load: MO acknowledged p50/p99 40.1/40.1 ms after sending (1), " +
		"waited for the window p50/p99 20.1/20.1 ms, the switch's own mean from arrival to answer 12.5 ms; receipt acknowledged p50/p99 12.1/12.1 ms after sending (1), " +
		"waited for the window p50/p99 12.1/12.1 ms"
	if got := deliveriesLine(before, after); got != want {
		t.Fatalf("got  %q\nwant %q", got, want)
	}
}
