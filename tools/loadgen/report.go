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
	rate := 0.0
	if r.elapsed > 0 {
		rate = float64(r.completed) / r.elapsed.Seconds()
	}
	return fmt.Sprintf("payments=%d completed=%d failed=%d payments/s=%.1f p50_ms=%.1f p99_ms=%.1f",
		r.payments, r.completed, r.failed, rate, ms(percentile(r.latencies, 50)), ms(percentile(r.latencies, 99)))
}

// echoResult is the figures of the echo phase.
type echoResult struct {
	mo, mt    uint64 // deliver_sm acknowledged, submit_sm accepted
	elapsed   time.Duration
	latencies []time.Duration // sorted
}

func (r echoResult) line() string {
	rate := 0.0
	if r.elapsed > 0 {
		rate = float64(r.mo+r.mt) / r.elapsed.Seconds()
	}
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
