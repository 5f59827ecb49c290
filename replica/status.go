package replica

import (
	"errors"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Status is a replica's state for /healthz and /metrics.
type Status struct {
	Name string
	// OK is false while its last round failed (or the WAL cannot be read), and until
	// its first round since Start succeeded.
	OK bool
	// Lag is how long ago the last moment was by which everything committed was on
	// the replica: every commit older than Lag is on it.
	Lag time.Duration
	// CaughtUp is that moment.
	CaughtUp time.Time
	// Error is why it is not OK, and ErrorSince when its failures began.
	Error      string
	ErrorSince time.Time
	// Rounds and Failures count its successful and failed rounds since Start; Failures
	// includes the rounds that could not read the WAL.
	Rounds, Failures int64
	// Behind is how many files it lacked at its last round's start.
	Behind int
}

// Status returns each replica's state now, in the order of the Config list.
func (x *Replicator) Status() []Status {
	x.hub.mu.Lock()
	defer x.hub.mu.Unlock()
	now := x.now()
	out := make([]Status, 0, len(x.hub.targets))
	for _, t := range x.hub.targets {
		s := Status{Name: t.name, Lag: now.Sub(t.caughtUp), CaughtUp: t.caughtUp, Rounds: t.rounds,
			Failures: t.failures + x.readFailures, Behind: t.backlog}
		switch {
		case t.refused != "":
			s.Error, s.ErrorSince = t.refused, t.lastErrAt
		case t.lastErr != nil:
			s.Error, s.ErrorSince = t.lastErr.Error(), t.lastErrAt
		case x.readErr != nil:
			s.Error, s.ErrorSince = "the WAL cannot be read for the replicas: "+x.readErr.Error(), x.readErrAt
		case t.rounds == 0:
			// The first round ships a snapshot of the whole database, which takes a while
			// for a large one; until it is done, the replica holds nothing of this start.
			s.Error = "first sync since start not done yet"
		}
		s.OK = s.Error == ""
		out = append(out, s)
	}
	return out
}

// recordRead notes the outcome of a round that read the WAL into the stage, and logs
// when it starts or stops failing: then no replica receives anything.
func (x *Replicator) recordRead(err error) {
	x.hub.mu.Lock()
	defer x.hub.mu.Unlock()
	now := x.now()
	if err == nil {
		if x.readErr != nil {
			x.log.Warn().Dur("failed_for", now.Sub(x.readErrAt)).Msg("the WAL is read for the replicas again")
		}
		x.readErr = nil
		return
	}
	x.readFailures++
	if x.readErr == nil || now.Sub(x.readLoggedAt) >= failingLogEvery {
		x.log.Error().Err(err).Msg("the WAL cannot be read for the replicas: payments go on, but what they commit is not copied off this disk until it is fixed")
		x.readLoggedAt = now
	}
	if x.readErr == nil {
		x.readErrAt = now
	}
	x.readErr = err
}

// recordShip notes a replica's round: on success, it holds every commit made before
// the latest mark of the hub's version it was brought to.
func (x *Replicator) recordShip(t *target, version uint64, err error) {
	x.hub.mu.Lock()
	defer x.hub.mu.Unlock()
	now := x.now()
	if err == nil {
		if at := x.hub.caughtUpAt(version); at.After(t.caughtUp) {
			t.caughtUp = at
		}
		if t.lastErr != nil {
			t.log.Warn().Dur("failed_for", now.Sub(t.lastErrAt)).Msg("replica is being written again, and has caught up")
		}
		t.lastErr = nil
		t.rounds++
		return
	}
	if errors.Is(err, errNotReady) {
		return
	}
	t.failures++
	if t.lastErr == nil || now.Sub(t.loggedAt) >= failingLogEvery {
		t.log.Error().Err(err).Dur("lag", now.Sub(t.caughtUp)).Int("files_behind", t.backlog).
			Msg("replica cannot be written: payments go on and the other replicas are written; this one catches up by itself once it can be written again")
		t.loggedAt = now
	}
	if t.lastErr == nil {
		t.lastErrAt = now
	}
	t.lastErr = err
}

// Register adds the replicas' metrics to reg: payswitch_replica_lag_seconds,
// payswitch_replica_ok, payswitch_replica_failed_rounds_total and
// payswitch_replica_behind_files, labelled by replica, and payswitch_replica_staged_bytes.
func (x *Replicator) Register(reg prometheus.Registerer) error {
	var errs []error
	for i, t := range x.hub.targets {
		status := func() Status { return x.Status()[i] }
		labels := prometheus.Labels{"replica": t.name}
		errs = append(errs,
			reg.Register(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "payswitch_replica_lag_seconds",
				Help:        "Time since the last moment the replica held every commit: an upper bound of what losing the disk would lose.",
				ConstLabels: labels}, func() float64 { return status().Lag.Seconds() })),
			reg.Register(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "payswitch_replica_ok",
				Help: "1 while the replica is being written, 0 while its last round failed.", ConstLabels: labels},
				func() float64 {
					if status().OK {
						return 1
					}
					return 0
				})),
			reg.Register(prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "payswitch_replica_failed_rounds_total",
				Help: "Rounds that failed to bring the replica up to date.", ConstLabels: labels},
				func() float64 { return float64(status().Failures) })),
			reg.Register(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "payswitch_replica_behind_files",
				Help: "LTX files the replica lacked when its last round began.", ConstLabels: labels},
				func() float64 { return float64(status().Behind) })))
	}
	errs = append(errs, reg.Register(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "payswitch_replica_staged_bytes",
		Help: "Bytes kept beside the database for replicas that do not hold them yet; grows while a replica cannot be written."},
		func() float64 {
			x.hub.mu.Lock()
			defer x.hub.mu.Unlock()
			return float64(x.hub.stagedBytes)
		})))
	return errors.Join(errs...)
}
