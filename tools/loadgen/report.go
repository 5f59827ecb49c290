package main

import (
	"fmt"
	"maps"
	"math"
	"slices"
	"sort"
	"time"
)

// result is the figures of the switch run.
type result struct {
	payments, completed, failed int
	elapsed                     time.Duration
	latencies                   []time.Duration // sorted
}

// line is the final line: exactly
// payments=N completed=N failed=N payments/s=X p50_ms=Y p99_ms=Z.
func (r result) line() string {
	return fmt.Sprintf("payments=%d completed=%d failed=%d payments/s=%.1f p50_ms=%.1f p99_ms=%.1f",
		r.payments, r.completed, r.failed, r.rate(), ms(percentile(r.latencies, 50)), ms(percentile(r.latencies, 99)))
}

// requestResult is the figures of the requests to pay.
type requestResult struct {
	requests, completed, failed int
	elapsed                     time.Duration
	latencies                   []time.Duration // sorted
	webhooks                    int64           // distinct events received, signatures verified
	badSignatures, duplicates   int64
}

// requestFigures joins the requests made with the webhooks received: a request is
// completed once its payment.completed event has arrived; its latency runs from just
// before the API call to that arrival, minus the phone's own time between the request's
// SMS and its reply.
func requestFigures(st *requestStats, recv *hookReceiver, elapsed time.Duration) requestResult {
	r := requestResult{requests: st.requests, elapsed: elapsed, webhooks: recv.valid.Load(),
		badSignatures: recv.bad.Load(), duplicates: recv.duplicates.Load()}
	for _, rec := range st.records {
		if a, ok := recv.completedArrival(rec.id); ok {
			r.completed++
			r.latencies = append(r.latencies, a.at.Sub(rec.start)-rec.thought)
		}
	}
	r.failed = r.requests - r.completed
	sortDurations(r.latencies)
	return r
}

// latencySteps describes where the requests' time went, p50/p99 of each step of the
// requests that completed with every step seen: the API's answer, the request's SMS,
// the receipt after the code, the webhook after the receipt.
func latencySteps(records []requestRecord, recv *hookReceiver) string {
	var api, sms, receipt, hook []time.Duration
	for _, rec := range records {
		a, ok := recv.completedArrival(rec.id)
		if !ok || rec.receipt.IsZero() {
			continue
		}
		api = append(api, rec.answered.Sub(rec.start))
		sms = append(sms, rec.gotSMS.Sub(rec.answered))
		receipt = append(receipt, rec.receipt.Sub(rec.replied))
		hook = append(hook, a.at.Sub(rec.receipt))
	}
	step := func(name string, d []time.Duration) string {
		sortDurations(d)
		return fmt.Sprintf("%s %.1f/%.1f ms", name, ms(percentile(d, 50)), ms(percentile(d, 99)))
	}
	return fmt.Sprintf("%s, %s, %s, %s (%d requests)", step("API answer", api), step("then request SMS", sms),
		step("code to receipt", receipt), step("receipt to webhook (below 0: the webhook came first)", hook), len(api))
}

// line is exactly requests=N completed=N failed=N requests/s=X p50_ms=Y p99_ms=Z
// webhooks=N bad_signatures=N duplicates=N.
func (r requestResult) line() string {
	return fmt.Sprintf("requests=%d completed=%d failed=%d requests/s=%.1f p50_ms=%.1f p99_ms=%.1f webhooks=%d bad_signatures=%d duplicates=%d",
		r.requests, r.completed, r.failed, r.rate(), ms(percentile(r.latencies, 50)), ms(percentile(r.latencies, 99)),
		r.webhooks, r.badSignatures, r.duplicates)
}

// rate is completed payments per second of load.
func (r result) rate() float64 { return perSecond(r.completed, r.elapsed) }

// rate is completed requests per second of load.
func (r requestResult) rate() float64 { return perSecond(r.completed, r.elapsed) }

func perSecond(n int, d time.Duration) float64 {
	if d <= 0 {
		return 0
	}
	return float64(n) / d.Seconds()
}

// phaseResult is what one run against serve measured.
type phaseResult struct {
	payments result
	requests *requestResult // nil: no requests in this run
	rssMB    float64        // peak; below 0: unknown
	work     *workFigures   // nil: not measured
}

// lines are the run's output lines, each after prefix: payments, requests (if any),
// serve_rss_mb, and the load's costs (if measured).
func (r phaseResult) lines(prefix string) []string {
	out := []string{prefix + r.payments.line()}
	if r.requests != nil {
		out = append(out, prefix+r.requests.line())
	}
	if r.rssMB >= 0 {
		out = append(out, fmt.Sprintf("%sserve_rss_mb=%.1f", prefix, r.rssMB))
	} else {
		out = append(out, prefix+"serve_rss_mb=unknown")
	}
	if r.work != nil {
		out = append(out, prefix+r.work.line())
	}
	return out
}

// comparison sets the SMS payments of a run with requests beside those of a run
// without.
type comparison struct {
	smsOnly, withRequests float64 // SMS payments/s
	requests              float64 // completed requests/s
	requestsP99           time.Duration
	// ratio is the SMS payments' alone; allPayments counts the completed requests too,
	// which are payments the same writer books.
	ratio, allPayments float64
}

func compare(smsOnly, withRequests phaseResult) comparison {
	rq := requestResult{}
	if withRequests.requests != nil {
		rq = *withRequests.requests
	}
	c := comparison{smsOnly: smsOnly.payments.rate(), withRequests: withRequests.payments.rate(),
		requests: rq.rate(), requestsP99: percentile(rq.latencies, 99)}
	if c.smsOnly > 0 {
		c.ratio = c.withRequests / c.smsOnly
		c.allPayments = (c.withRequests + c.requests) / c.smsOnly
	}
	return c
}

// line is exactly compare sms_only_payments/s=X with_requests_payments/s=Y ratio=R
// requests/s=X requests_p99_ms=Z all_payments_ratio=T.
func (c comparison) line() string {
	return fmt.Sprintf("compare sms_only_payments/s=%.1f with_requests_payments/s=%.1f ratio=%.3f requests/s=%.1f requests_p99_ms=%.1f all_payments_ratio=%.3f",
		c.smsOnly, c.withRequests, c.ratio, c.requests, ms(c.requestsP99), c.allPayments)
}

// comparisonsLine sums up several rounds: exactly compare_rounds=N ratio_median=R
// ratio_min=A ratio_max=B all_payments_ratio_median=T.
func comparisonsLine(cs []comparison) string {
	ratios, all := make([]float64, len(cs)), make([]float64, len(cs))
	for i, c := range cs {
		ratios[i], all[i] = c.ratio, c.allPayments
	}
	slices.Sort(ratios)
	slices.Sort(all)
	return fmt.Sprintf("compare_rounds=%d ratio_median=%.3f ratio_min=%.3f ratio_max=%.3f all_payments_ratio_median=%.3f",
		len(cs), median(ratios), ratios[0], ratios[len(ratios)-1], median(all))
}

// median of sorted, which is not empty: the mean of the middle two of an even count.
func median(sorted []float64) float64 {
	n := len(sorted)
	if n%2 == 1 {
		return sorted[n/2]
	}
	return (sorted[n/2-1] + sorted[n/2]) / 2
}

// echoResult is the figures of the echo phase.
type echoResult struct {
	mo, mt    uint64 // deliver_sm acknowledged, submit_sm accepted
	elapsed   time.Duration
	latencies []time.Duration // sorted
}

// rate is the echo ceiling: PDUs per second.
func (r echoResult) rate() float64 {
	if r.elapsed <= 0 {
		return 0
	}
	return float64(r.mo+r.mt) / r.elapsed.Seconds()
}

func (r echoResult) line() string {
	rate := r.rate()
	return fmt.Sprintf("echo_pdus/s=%.0f mo=%d mt=%d seconds=%.1f p50_ms=%.2f p99_ms=%.2f",
		rate, r.mo, r.mt, r.elapsed.Seconds(), ms(percentile(r.latencies, 50)), ms(percentile(r.latencies, 99)))
}

// percentile returns the nearest-rank p-th percentile of sorted, or 0 when empty.
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	// Nearest rank: the smallest value with at least p% of the values at or below it.
	rank := int(math.Ceil(float64(len(sorted))*p/100)) - 1
	return sorted[min(max(rank, 0), len(sorted)-1)]
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func sortDurations(d []time.Duration) { slices.Sort(d) }

// reasonsSummary lists failure reasons, most frequent first.
func reasonsSummary(reasons map[string]int) []string {
	keys := slices.Collect(maps.Keys(reasons))
	sort.Slice(keys, func(i, j int) bool {
		if reasons[keys[i]] != reasons[keys[j]] {
			return reasons[keys[i]] > reasons[keys[j]]
		}
		return keys[i] < keys[j]
	})
	out := make([]string, len(keys))
	for i, k := range keys {
		out[i] = fmt.Sprintf("%d× %s", reasons[k], k)
	}
	return out
}
