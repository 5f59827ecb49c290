package main

import (
	"context"
	"fmt"
	"net/http"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// writerStats are the store writer's running totals, from the switch's /metrics
// (payswitch_store_*): loadgen reports their difference over the load, because the one
// writer goroutine is what bounds the switch (README, Performance).
type writerStats struct {
	groups, ops         float64 // transactions committed, operations in them
	statements          float64 // run on the writer's connections; below 0: not exported
	pages               float64 // written to the WAL by the writer's commits; below 0: not exported
	pipelined           float64 // of them, sent in another's round trip (PostgreSQL)
	run, commit, synced float64 // seconds running operations, in COMMIT, in fsync
	writes, waited      float64 // writes answered, seconds from their calls to their answers
	// answered is payswitch_smpp_deliver_seconds' sum and count by kind, all links:
	// deliver_sm from arrival to answer, measured in the switch.
	answered map[string]answerTimes
}

// answerTimes are a histogram's running sum (seconds) and count.
type answerTimes struct{ sum, count float64 }

// writerStats reads the totals; ok is false when the switch does not export them.
func (c *client) writerStats(ctx context.Context) (s writerStats, ok bool, err error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.Base+"/metrics", nil)
	if err != nil {
		return s, false, err
	}
	req.Header.Set("Authorization", "Bearer "+c.Token)
	resp, err := c.HTTP.Do(req)
	if err != nil {
		return s, false, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return s, false, fmt.Errorf("GET /metrics: %s", resp.Status)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		return s, false, fmt.Errorf("GET /metrics: %w", err)
	}
	ok = true
	value := func(name string) float64 {
		f := fams[name]
		if f == nil || len(f.GetMetric()) == 0 {
			ok = false
			return 0
		}
		m := f.GetMetric()[0]
		if m.GetCounter() != nil {
			return m.GetCounter().GetValue()
		}
		return m.GetGauge().GetValue()
	}
	s = writerStats{
		statements: counterOr(fams, "payswitch_store_statements_total", -1),
		pages:      counterOr(fams, "payswitch_store_pages_written_total", -1),
		pipelined:  counterOr0(fams, "payswitch_store_statements_pipelined_total"),
		groups:     value("payswitch_store_groups_total"),
		ops:        value("payswitch_store_operations_total"),
		run:        value("payswitch_store_run_seconds_total"),
		commit:     value("payswitch_store_commit_seconds_total"),
		synced:     value("payswitch_store_sync_seconds_total"),
		writes:     counterOr0(fams, "payswitch_store_writes_total"),
		waited:     counterOr0(fams, "payswitch_store_write_wait_seconds_total"),
		answered:   answeredTimes(fams["payswitch_smpp_deliver_seconds"]),
	}
	return s, ok, nil
}

// answeredTimes sums f's histograms by their kind label; nil when f is nil.
func answeredTimes(f *dto.MetricFamily) map[string]answerTimes {
	if f == nil {
		return nil
	}
	out := map[string]answerTimes{}
	for _, m := range f.GetMetric() {
		for _, l := range m.GetLabel() {
			if l.GetName() == "kind" {
				t := out[l.GetValue()]
				t.sum += m.GetHistogram().GetSampleSum()
				t.count += float64(m.GetHistogram().GetSampleCount())
				out[l.GetValue()] = t
			}
		}
	}
	return out
}

// writerLine describes the writer between a and b, over elapsed.
func writerLine(a, b writerStats, elapsed time.Duration) string {
	secs := elapsed.Seconds()
	groups := b.groups - a.groups
	perGroup := 0.0
	if groups > 0 {
		perGroup = (b.ops - a.ops) / groups
	}
	run, commit := 100*(b.run-a.run)/secs, 100*(b.commit-a.commit)/secs
	line := fmt.Sprintf("store writer during the load: busy %.0f%% (operations %.0f%%, COMMIT %.0f%%), fsync %.0f%% of the time, %.0f groups/s of %.1f operations",
		run+commit, run, commit, 100*(b.synced-a.synced)/secs, groups/secs, perGroup)
	if stmts, piped := b.statements-a.statements, b.pipelined-a.pipelined; piped > 0 && stmts > 0 {
		line += fmt.Sprintf(", %.0f%% of statements sent in another's round trip", 100*piped/stmts)
	}
	if writes := b.writes - a.writes; writes > 0 {
		line += fmt.Sprintf(", a write answered %.1f ms after its call on average", 1000*(b.waited-a.waited)/writes)
	}
	return line
}

// counterOr0 is the counter name of fams, or 0 when the switch does not export it.
func counterOr0(fams map[string]*dto.MetricFamily, name string) float64 {
	return counterOr(fams, name, 0)
}

// counterOr is the counter name of fams, or missing when the switch does not export it.
func counterOr(fams map[string]*dto.MetricFamily, name string, missing float64) float64 {
	if f := fams[name]; f != nil && len(f.GetMetric()) > 0 && f.GetMetric()[0].GetCounter() != nil {
		return f.GetMetric()[0].GetCounter().GetValue()
	}
	return missing
}
