package airtime

import (
	"errors"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the airtime collectors, shared by every carrier of a Router.
type metrics struct {
	requests    *prometheus.CounterVec   // carrier, outcome: results of Credit and Resolve
	duration    *prometheus.HistogramVec // carrier: each HTTP exchange
	circuitOpen *prometheus.GaugeVec     // carrier: 1 while the breaker is not closed
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "payswitch_airtime_requests_total",
			Help: "Airtime top-up results (Credit and Resolve calls) by carrier and outcome: success, failed or unknown.",
		}, []string{"carrier", "outcome"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "payswitch_airtime_request_duration_seconds",
			Help:    "Duration of each HTTP request to a carrier's airtime API (POST or lookup), timeouts included.",
			Buckets: []float64{.05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}, []string{"carrier"}),
		circuitOpen: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "payswitch_airtime_circuit_open",
			Help: "1 while the carrier's circuit breaker is open or half-open (top-ups are not sent), 0 when closed.",
		}, []string{"carrier"}),
	}
	if reg == nil {
		return m, nil
	}
	var err error
	if m.requests, err = register(reg, m.requests); err != nil {
		return nil, err
	}
	if m.duration, err = register(reg, m.duration); err != nil {
		return nil, err
	}
	if m.circuitOpen, err = register(reg, m.circuitOpen); err != nil {
		return nil, err
	}
	return m, nil
}

// register registers c, or returns the collector already registered under its name, so
// that a second Router on the same registry (a restart in tests) shares the series.
func register[C prometheus.Collector](reg prometheus.Registerer, c C) (C, error) {
	err := reg.Register(c)
	var are prometheus.AlreadyRegisteredError
	if errors.As(err, &are) {
		if existing, ok := are.ExistingCollector.(C); ok {
			return existing, nil
		}
	}
	if err != nil {
		return c, fmt.Errorf("airtime: register metrics: %w", err)
	}
	return c, nil
}
