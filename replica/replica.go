package replica

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"path/filepath"
	"sync"
	"time"

	"github.com/benbjohnson/litestream"
	"github.com/benbjohnson/litestream/file"
	"github.com/benbjohnson/litestream/s3"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
)

// Config is one replica (config: database.replicas[i]).
type Config struct {
	// URL is file:///folder or s3://bucket/path[?endpoint=...&region=...].
	URL string
	// AccessKeyID and SecretAccessKey are an S3 replica's credentials; empty: the
	// AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY variables.
	AccessKeyID, SecretAccessKey string
	// SyncInterval is how often commits are shipped (default 1s).
	SyncInterval time.Duration
}

// Name is the replica's URL for logs, /healthz and /metrics: scheme, host and path,
// without user information or query (the query can carry keys, such as an S3
// customer key).
func (c Config) Name() string {
	u, err := url.Parse(c.URL)
	if err != nil {
		return "(unparsable replica URL)"
	}
	return u.Scheme + "://" + u.Host + u.Path
}

// client builds Litestream's client for the replica's URL, with the configured
// credentials.
func (c Config) client() (litestream.ReplicaClient, error) {
	client, err := litestream.NewReplicaClientFromURL(c.URL)
	if err != nil {
		return nil, fmt.Errorf("replica %s: %w", c.Name(), err)
	}
	if sc, ok := client.(*s3.ReplicaClient); ok {
		if c.AccessKeyID != "" {
			sc.AccessKeyID = c.AccessKeyID
		}
		if c.SecretAccessKey != "" {
			sc.SecretAccessKey = c.SecretAccessKey
		}
	}
	return client, nil
}

// shutdownSync bounds Close's last shipment: a replica that cannot be reached must not
// hold a shutdown for Litestream's default of 30 s.
const shutdownSync = 10 * time.Second

// failingLogEvery is how often a replica that keeps failing is logged again.
const failingLogEvery = time.Minute

// Replicator streams one database to one replica until Close.
type Replicator struct {
	cfg  Config
	log  zerolog.Logger
	now  func() time.Time
	ls   *litestream.Store
	db   *litestream.DB
	rep  *litestream.Replica
	stop chan struct{}
	done chan struct{}

	mu sync.Mutex // guards the fields below
	// caughtUp is when the last successful round started: everything committed before
	// it is on the replica. Start's time until the first such round.
	caughtUp  time.Time
	opened    bool // the Litestream store is open (only run's goroutine writes it)
	lastErr   error
	lastErrAt time.Time
	loggedAt  time.Time // when a failure was last logged
	rounds    int64     // successful rounds
	failures  int64     // failed rounds
	closed    bool
}

// Start begins streaming the SQLite database at dbPath (already open by the store, in
// WAL mode) to the replica. It returns at once: a replica that cannot be reached is
// retried every SyncInterval and reported by Status, never an error that stops the
// switch. Only a URL that cannot work at all is an error. now is the clock (nil:
// time.Now).
func Start(dbPath string, cfg Config, log zerolog.Logger, now func() time.Time) (*Replicator, error) {
	if now == nil {
		now = time.Now
	}
	if cfg.SyncInterval <= 0 {
		cfg.SyncInterval = time.Second
	}
	client, err := cfg.client()
	if err != nil {
		return nil, err
	}
	log = log.With().Str("replica", cfg.Name()).Logger()
	slogger := newSlog(log)
	db := litestream.NewDB(dbPath)
	db.MonitorInterval = 0 // run syncs, so that each round's outcome is known
	rep := litestream.NewReplicaWithClient(db, client)
	rep.SyncInterval = cfg.SyncInterval
	rep.MonitorEnabled = false
	db.Replica = rep
	if fc, ok := client.(*file.ReplicaClient); ok {
		fc.Replica = rep
		fc.SetLogger(slogger)
	}
	ls := litestream.NewStore([]*litestream.DB{db}, litestream.DefaultCompactionLevels)
	ls.Logger = slogger
	db.SetLogger(slogger.With("db", filepath.Base(dbPath))) // NewStore gave it slog's default
	ls.SetShutdownSyncTimeout(shutdownSync)
	x := &Replicator{cfg: cfg, log: log, now: now, ls: ls, db: db, rep: rep,
		stop: make(chan struct{}), done: make(chan struct{}), caughtUp: now()}
	go x.run()
	return x, nil
}

func (x *Replicator) run() {
	defer close(x.done)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		select {
		case <-x.stop:
			cancel()
		case <-ctx.Done():
		}
	}()
	t := time.NewTicker(x.cfg.SyncInterval)
	defer t.Stop()
	for {
		x.round(ctx)
		select {
		case <-x.stop:
			return
		case <-t.C:
		}
	}
}

// round opens Litestream's store if it is not open yet, then ships what the WAL holds.
func (x *Replicator) round(ctx context.Context) {
	start := x.now()
	x.mu.Lock()
	opened := x.opened
	x.mu.Unlock()
	var err error
	if !opened {
		if err = x.ls.Open(ctx); err == nil {
			x.mu.Lock()
			x.opened = true
			x.mu.Unlock()
		}
	}
	if err == nil {
		err = x.db.Sync(ctx)
	}
	if err == nil {
		err = x.rep.Sync(ctx)
	}
	if ctx.Err() != nil {
		return // stopping: Close ships the rest
	}
	x.record(start, err)
}

// record notes a round's outcome and logs a replica that starts or stops failing.
func (x *Replicator) record(start time.Time, err error) {
	x.mu.Lock()
	defer x.mu.Unlock()
	now := x.now()
	if err == nil {
		if x.lastErr != nil {
			x.log.Warn().Dur("failed_for", now.Sub(x.lastErrAt)).Msg("replica is being written again")
		}
		x.caughtUp, x.lastErr = start, nil
		x.rounds++
		return
	}
	x.failures++
	if x.lastErr == nil || now.Sub(x.loggedAt) >= failingLogEvery {
		x.log.Error().Err(err).Dur("lag", now.Sub(x.caughtUp)).
			Msg("replica cannot be written: payments go on, but what they commit is not copied off this disk until it is fixed")
		x.loggedAt = now
	}
	if x.lastErr == nil {
		x.lastErrAt = now
	}
	x.lastErr = err
}

// Status is a replica's state for /healthz and /metrics.
type Status struct {
	Name string
	// OK is false while the last round failed, and until the first one succeeded.
	OK bool
	// Lag is how long ago the last round that shipped everything began: every commit
	// older than Lag is on the replica.
	Lag time.Duration
	// CaughtUp is that moment.
	CaughtUp time.Time
	// Error is the last round's error while failing, and ErrorSince when the
	// failures began.
	Error      string
	ErrorSince time.Time
	// Rounds and Failures count successful and failed rounds since Start.
	Rounds, Failures int64
}

// Status returns the replica's state now.
func (x *Replicator) Status() Status {
	x.mu.Lock()
	defer x.mu.Unlock()
	s := Status{Name: x.cfg.Name(), OK: x.lastErr == nil && x.rounds > 0, Lag: x.now().Sub(x.caughtUp), CaughtUp: x.caughtUp,
		Rounds: x.rounds, Failures: x.failures}
	switch {
	case x.lastErr != nil:
		s.Error, s.ErrorSince = x.lastErr.Error(), x.lastErrAt
	case x.rounds == 0:
		// The first round ships a snapshot of the whole database, which takes a while
		// for a large one; until it is done, the replica holds nothing of this start.
		s.Error = "first sync since start not done yet"
	}
	return s
}

// Register adds the replica's metrics to reg: payswitch_replica_lag_seconds,
// payswitch_replica_ok and payswitch_replica_failed_rounds_total, labelled by replica.
func (x *Replicator) Register(reg prometheus.Registerer) error {
	labels := prometheus.Labels{"replica": x.cfg.Name()}
	return errors.Join(
		reg.Register(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "payswitch_replica_lag_seconds",
			Help:        "Time since the last moment the replica held every commit: an upper bound of what losing the disk would lose.",
			ConstLabels: labels}, func() float64 { return x.Status().Lag.Seconds() })),
		reg.Register(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "payswitch_replica_ok",
			Help: "1 while the replica is being written, 0 while its last sync failed.", ConstLabels: labels},
			func() float64 {
				if x.Status().OK {
					return 1
				}
				return 0
			})),
		reg.Register(prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "payswitch_replica_failed_rounds_total",
			Help: "Sync rounds that failed to ship to the replica.", ConstLabels: labels},
			func() float64 { return float64(x.Status().Failures) })),
	)
}

// Close stops the sync loop, ships what is left (bounded by shutdownSync) and lets go of
// the database, so that the store's final checkpoint can truncate the WAL. Call it after
// the last write and before the store closes (store.DB.BeforeFinalCheckpoint).
func (x *Replicator) Close(ctx context.Context) error {
	x.mu.Lock()
	if x.closed {
		x.mu.Unlock()
		return nil
	}
	x.closed = true
	x.mu.Unlock()
	close(x.stop)
	<-x.done
	x.mu.Lock()
	opened := x.opened
	x.mu.Unlock()
	if !opened {
		return nil
	}
	if err := x.ls.Close(ctx); err != nil {
		return fmt.Errorf("replica %s: last sync: %w", x.cfg.Name(), err)
	}
	return nil
}
