package webhook

import (
	"errors"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the webhook collectors.
type metrics struct {
	deliveries *prometheus.CounterVec // outcome: each attempt's
	duration   prometheus.Histogram   // each attempt, timeouts included
	depth      prometheus.Gauge       // pending events
	paused     prometheus.Gauge       // merchants whose deliveries are paused
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		deliveries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "payswitch_webhook_deliveries_total",
			Help: "Webhook delivery attempts by outcome: delivered, retry (failed, tried again later), gave_up (failed, retry_for ran out), stale (finished after its claim was released).",
		}, []string{"outcome"}),
		duration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "payswitch_webhook_delivery_duration_seconds",
			Help:    "Duration of each webhook delivery attempt, from sending to the merchant's answer (or the timeout).",
			Buckets: []float64{.05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}),
		depth: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "payswitch_webhook_queue_depth",
			Help: "Webhook events not yet delivered nor given up, counted every few seconds by the worker.",
		}),
		paused: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "payswitch_webhook_paused_merchants",
			Help: "Merchants whose webhook deliveries are paused after failing repeatedly.",
		}),
	}
	if reg == nil {
		return m, nil
	}
	var err error
	if m.deliveries, err = register(reg, m.deliveries); err != nil {
		return nil, err
	}
	if m.duration, err = register(reg, m.duration); err != nil {
		return nil, err
	}
	if m.depth, err = register(reg, m.depth); err != nil {
		return nil, err
	}
	if m.paused, err = register(reg, m.paused); err != nil {
		return nil, err
	}
	return m, nil
}

// register registers c, or returns the collector already registered under its name, so
// that Hooks made again on the same registry (a restart in tests) share the series.
func register[C prometheus.Collector](reg prometheus.Registerer, c C) (C, error) {
	err := reg.Register(c)
	var are prometheus.AlreadyRegisteredError
	if errors.As(err, &are) {
		if existing, ok := are.ExistingCollector.(C); ok {
			return existing, nil
		}
	}
	if err != nil {
		return c, fmt.Errorf("webhook: register metrics: %w", err)
	}
	return c, nil
}
