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
	"github.com/rs/zerolog"
)

// Config is one replica (config: database.replicas[i]).
type Config struct {
	// URL is file:///folder or s3://bucket/path[?endpoint=...&region=...].
	URL string
	// AccessKeyID and SecretAccessKey are an S3 replica's credentials; empty: the
	// AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY variables.
	AccessKeyID, SecretAccessKey string
	// SyncInterval is how often commits are shipped to it (default 1s). The database's
	// WAL is read at the shortest of the replicas' intervals.
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

// shutdownSync bounds Close's last round for each replica: one that cannot be reached
// must not hold a shutdown long. What it misses is in the stage, and is sent at the
// next start.
const shutdownSync = 10 * time.Second

// failingLogEvery is how often a replica that keeps failing is logged again.
const failingLogEvery = time.Minute

// Replicator streams one database to its replicas until Close.
type Replicator struct {
	log      zerolog.Logger
	now      func() time.Time
	hub      *hub
	ls       *litestream.Store
	db       *litestream.DB
	rep      *litestream.Replica
	interval time.Duration // the shortest SyncInterval: how often the WAL is read
	stop     chan struct{}
	done     chan struct{}
	// shipCtx ends the replicas' loops (shipping counts them) at Close.
	shipCtx    context.Context
	shipCancel context.CancelFunc
	shipping   sync.WaitGroup

	// Guarded by hub.mu: the reading of the WAL into the stage.
	opened       bool // the Litestream store is open
	closed       bool
	readErr      error
	readErrAt    time.Time
	readLoggedAt time.Time
	readFailures int64
}

// tuning is Litestream's schedule of compactions, snapshots and retention, a hook on
// the replicas' clients and how often they are listed again: tests shorten the
// schedules to see compaction, retention and relisting happen, and use the hook to
// make a replica fail or stall.
type tuning struct {
	levels            litestream.CompactionLevels
	snapshotInterval  time.Duration
	snapshotRetention time.Duration
	l0Retention       time.Duration
	l0RetentionCheck  time.Duration
	wrap              func(Config, litestream.ReplicaClient) litestream.ReplicaClient
	relistEvery       time.Duration
}

// Start begins streaming the SQLite database at dbPath (already open by the store, in
// WAL mode) to every replica in cfgs. It returns at once: a replica that cannot be
// reached is retried and reported by Status, never an error that stops the switch,
// and never holds the others back. Only a list that cannot work at all is an error
// (none, a URL that cannot work, the same replica twice). now is the clock (nil:
// time.Now).
func Start(dbPath string, cfgs []Config, log zerolog.Logger, now func() time.Time) (*Replicator, error) {
	return start(dbPath, cfgs, log, now, tuning{})
}

func start(dbPath string, cfgs []Config, log zerolog.Logger, now func() time.Time, tun tuning) (*Replicator, error) {
	if len(cfgs) == 0 {
		return nil, errors.New("replica: no replica to stream to")
	}
	if now == nil {
		now = time.Now
	}
	slogger := newSlog(log)
	h := &hub{stage: stage{dir: stageDir(dbPath)}, log: log, relistEvery: relistEvery}
	if tun.relistEvery > 0 {
		h.relistEvery = tun.relistEvery
	}
	var interval time.Duration
	for _, cfg := range cfgs {
		if cfg.SyncInterval <= 0 {
			cfg.SyncInterval = time.Second
		}
		client, err := cfg.client()
		if err != nil {
			return nil, err
		}
		name := cfg.Name()
		for _, t := range h.targets {
			if t.name == name {
				return nil, fmt.Errorf("replica %s is listed twice", name)
			}
		}
		client.SetLogger(slogger.With("replica", name))
		if tun.wrap != nil {
			client = tun.wrap(cfg, client)
		}
		h.targets = append(h.targets, &target{cfg: cfg, name: name, client: client,
			log: log.With().Str("replica", name).Logger(), wake: make(chan struct{}, 1), caughtUp: now()})
		if interval == 0 || cfg.SyncInterval < interval {
			interval = cfg.SyncInterval
		}
	}
	db := litestream.NewDB(dbPath)
	db.MonitorInterval = 0 // run syncs, so that each round's outcome is known
	rep := litestream.NewReplicaWithClient(db, h)
	rep.SyncInterval = interval
	rep.MonitorEnabled = false
	db.Replica = rep
	h.resetLocal = func() error { return db.ResetLocalState(context.Background()) }
	for _, t := range h.targets {
		if fc, ok := t.client.(*file.ReplicaClient); ok {
			fc.Replica = rep // its files and folders then take the database's modes
		}
	}
	levels := litestream.DefaultCompactionLevels
	if tun.levels != nil {
		levels = tun.levels
	}
	ls := litestream.NewStore([]*litestream.DB{db}, levels)
	ls.Logger = slogger
	if tun.snapshotInterval > 0 {
		ls.SnapshotInterval, ls.SnapshotRetention = tun.snapshotInterval, tun.snapshotRetention
	}
	if tun.l0Retention > 0 {
		ls.SetL0Retention(tun.l0Retention)
		ls.L0RetentionCheckInterval = tun.l0RetentionCheck
	}
	db.SetLogger(slogger.With("db", filepath.Base(dbPath))) // NewStore gave it slog's default
	ls.SetShutdownSyncTimeout(shutdownSync)
	x := &Replicator{log: log, now: now, hub: h, ls: ls, db: db, rep: rep, interval: interval,
		stop: make(chan struct{}), done: make(chan struct{})}
	x.shipCtx, x.shipCancel = context.WithCancel(context.Background())
	for _, t := range h.targets {
		x.shipping.Add(1)
		go x.shipLoop(t)
	}
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
	t := time.NewTicker(x.interval)
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

// round opens Litestream's store if it is not open yet, has it turn the WAL into LTX
// files and put them in the stage, and when both succeed, marks that everything
// committed before the round began is in the stage. Either way it wakes the replicas'
// loops: what the stage holds for a replica that is behind does not wait on the WAL.
func (x *Replicator) round(ctx context.Context) {
	start := x.now()
	x.hub.mu.Lock()
	opened := x.opened
	x.hub.mu.Unlock()
	var err error
	if !opened {
		if err = x.ls.Open(ctx); err == nil {
			x.hub.mu.Lock()
			x.opened = true
			x.hub.mu.Unlock()
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
	x.recordRead(err)
	if err == nil {
		x.hub.mark(start)
	}
	x.wakeAll()
}

func (x *Replicator) wakeAll() {
	for _, t := range x.hub.targets {
		select {
		case t.wake <- struct{}{}:
		default: // its loop is busy, and will look again when done
		}
	}
}

// Close stops reading the WAL, has Litestream put what is left in the stage and let go
// of the database, so that the store's final checkpoint can truncate the WAL, then
// gives every replica one last round at once (each bounded by shutdownSync). Call it
// after the last write and before the store closes (store.DB.BeforeFinalCheckpoint).
// Its error names each replica that was not brought up to date; what it lacks stays
// in the stage and is sent at the next start.
func (x *Replicator) Close(ctx context.Context) error {
	x.hub.mu.Lock()
	if x.closed {
		x.hub.mu.Unlock()
		return nil
	}
	x.closed = true
	x.hub.mu.Unlock()
	close(x.stop)
	<-x.done
	x.shipCancel()
	x.shipping.Wait()
	x.hub.mu.Lock()
	opened, ready := x.opened, x.hub.files != nil
	x.hub.mu.Unlock()
	var errs []error
	if opened {
		start := x.now()
		if err := x.ls.Close(ctx); err != nil {
			errs = append(errs, fmt.Errorf("replicas: last read of the WAL: %w", err))
		} else {
			x.hub.mark(start)
		}
	}
	if !ready {
		return errors.Join(errs...)
	}
	shipErrs := make([]error, len(x.hub.targets))
	var wg sync.WaitGroup
	for i, t := range x.hub.targets {
		x.hub.mu.Lock()
		refused := t.refused != ""
		x.hub.mu.Unlock()
		if refused { // its status says why; it is not to be written
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			sctx, cancel := context.WithTimeout(ctx, shutdownSync)
			defer cancel()
			if err := x.ship(sctx, t); err != nil {
				shipErrs[i] = fmt.Errorf("replica %s: last sync: %w", t.name, err)
			}
		}()
	}
	wg.Wait()
	return errors.Join(append(errs, shipErrs...)...)
}
