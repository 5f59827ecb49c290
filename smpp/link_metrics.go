package smpp

import (
	"errors"
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
)

// errorLabel names an error for the submit_errors metric.
func errorLabel(err error) string {
	var se *StatusError
	switch {
	case errors.As(err, &se):
		return fmt.Sprintf("0x%08x", se.Status)
	case errors.Is(err, ErrNotBound):
		return "not_bound"
	case errors.Is(err, ErrTimeout):
		return "timeout"
	case errors.Is(err, ErrConnLost):
		return "conn_lost"
	default:
		return "other"
	}
}

// linkMetrics are one link's Prometheus series; a nil *linkMetrics records nothing.
type linkMetrics struct {
	in, out      prometheus.Counter
	up, inflight prometheus.Gauge
	submitErrors *prometheus.CounterVec
	answered     *prometheus.HistogramVec
	link         string
}

// newLinkMetrics registers the package's collectors with reg (reusing them when another
// link registered them already) and returns this link's series.
func newLinkMetrics(reg prometheus.Registerer, link string, log zerolog.Logger) *linkMetrics {
	if reg == nil {
		return nil
	}
	messages := register(reg, log, prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "payswitch_smpp_messages_total",
		Help: "Short messages over SMPP links: in = deliver_sm received, out = submit_sm accepted.",
	}, []string{"link", "direction"}))
	up := register(reg, log, prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "payswitch_smpp_link_up",
		Help: "1 while the SMPP link is bound.",
	}, []string{"link"}))
	errs := register(reg, log, prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "payswitch_smpp_submit_errors_total",
		Help: "Failed submit_sm (deliver_sm for the SMPP server's accounts) by command status (hex) or cause.",
	}, []string{"link", "status"}))
	window := register(reg, log, prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "payswitch_smpp_window_in_flight",
		Help: "Requests awaiting their response on the SMPP link (its window in use).",
	}, []string{"link"}))
	answered := register(reg, log, prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "payswitch_smpp_deliver_seconds",
		Help:    "From a deliver_sm's arrival to the switch's answer (once what it says is durable), by kind: mo or receipt.",
		Buckets: []float64{.0005, .001, .002, .004, .008, .016, .032, .064, .128, .256, .512, 1, 2, 5},
	}, []string{"link", "kind"}))
	m := &linkMetrics{
		in:           messages.WithLabelValues(link, "in"),
		out:          messages.WithLabelValues(link, "out"),
		up:           up.WithLabelValues(link),
		inflight:     window.WithLabelValues(link),
		submitErrors: errs,
		answered:     answered,
		link:         link,
	}
	m.up.Set(0)
	m.inflight.Set(0)
	return m
}

// register registers c, or returns the equal collector registered before. Another
// conflict leaves c unregistered: the link works, its series are just not exported.
func register[C prometheus.Collector](reg prometheus.Registerer, log zerolog.Logger, c C) C {
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if existing, ok := are.ExistingCollector.(C); ok {
				return existing
			}
		}
		log.Error().Err(err).Msg("smpp metrics not registered")
	}
	return c
}

func (m *linkMetrics) message(direction string) {
	if m == nil {
		return
	}
	if direction == "in" {
		m.in.Inc()
	} else {
		m.out.Inc()
	}
}

func (m *linkMetrics) setUp(up bool) {
	if m == nil {
		return
	}
	if up {
		m.up.Set(1)
	} else {
		m.up.Set(0)
	}
}

func (m *linkMetrics) inFlight(delta float64) {
	if m == nil {
		return
	}
	m.inflight.Add(delta)
}

func (m *linkMetrics) submitError(status string) {
	if m == nil {
		return
	}
	m.submitErrors.WithLabelValues(m.link, status).Inc()
}

// deliverAnswered observes how long a deliver_sm of kind ("mo", "receipt") took from
// its arrival to its answer.
func (m *linkMetrics) deliverAnswered(kind string, took time.Duration) {
	if m == nil {
		return
	}
	m.answered.WithLabelValues(m.link, kind).Observe(took.Seconds())
}
