package main

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/payswitch/payswitch/store"
)

// dbWatch knows whether the database could last be written. It logs a fault once when it
// starts and once when it ends, however many writes fail in between (each component
// also reports its own failed writes), and exports it as payswitch_database_writable.
type dbWatch struct {
	db       *store.DB
	where    string // the database, for logs: its file, or its URL without a password
	log      zerolog.Logger
	writable prometheus.Gauge

	mu    sync.Mutex  // guards fault and since
	fault store.Fault // "" while writable
	since time.Time   // when fault began
}

// faultUnavailable is a failed write that store.Diagnose cannot explain.
const faultUnavailable store.Fault = "unavailable"

// dbWatchInterval is how often the database is tried when nothing asks /healthz, so
// that a fault is logged, and its end noticed, even on a quiet switch.
const dbWatchInterval = 5 * time.Second

func newDBWatch(db *store.DB, where string, log zerolog.Logger, reg prometheus.Registerer) *dbWatch {
	w := &dbWatch{db: db, where: where, log: log, since: time.Now(), writable: prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "payswitch_database_writable",
		Help: "1 when the last write to the database succeeded, 0 while it cannot be written (see /healthz).",
	})}
	w.writable.Set(1)
	reg.MustRegister(w.writable)
	registerStoreStats(db, reg)
	return w
}

// registerStoreStats exports the store writer's running totals: rate(run) + rate(commit)
// near 1 means the one writer is the bottleneck; ops/groups is the group-commit size.
func registerStoreStats(db *store.DB, reg prometheus.Registerer) {
	counter := func(name, help string, value func(store.Stats) float64) {
		reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name, Help: help},
			func() float64 { return value(db.Stats()) }))
	}
	counter("payswitch_store_groups_total", "Transactions the store's writer committed (group commits).",
		func(s store.Stats) float64 { return float64(s.Groups) })
	counter("payswitch_store_operations_total", "Write operations run in those transactions.",
		func(s store.Stats) float64 { return float64(s.Ops) })
	counter("payswitch_store_redos_total", "Groups run again, each operation in a savepoint, because one of their operations failed.",
		func(s store.Stats) float64 { return float64(s.Redos) })
	counter("payswitch_store_statements_total", "Statements run on the writer's connections (BEGIN and COMMIT left out).",
		func(s store.Stats) float64 { return float64(s.Statements) })
	counter("payswitch_store_statements_pipelined_total", "Those statements that PostgreSQL got in another's round trip (pipelined).",
		func(s store.Stats) float64 { return float64(s.Pipelined) })
	counter("payswitch_store_run_seconds_total", "Time the writer spent running operations.",
		func(s store.Stats) float64 { return s.Run.Seconds() })
	counter("payswitch_store_commit_seconds_total", "Time the writer spent in COMMIT.",
		func(s store.Stats) float64 { return s.Commit.Seconds() })
	counter("payswitch_store_syncs_total", "fsyncs of the WAL by the store (synchronous FULL).",
		func(s store.Stats) float64 { return float64(s.Syncs) })
	counter("payswitch_store_sync_seconds_total", "Time those fsyncs took.",
		func(s store.Stats) float64 { return s.Sync.Seconds() })
	counter("payswitch_store_writes_total", "Writes that reached the writer and got their answer.",
		func(s store.Stats) float64 { return float64(s.Writes) })
	counter("payswitch_store_pages_written_total", "Database pages the writer's commits wrote to the WAL (SQLite).",
		func(s store.Stats) float64 { return float64(s.Pages) })
	counter("payswitch_store_write_wait_seconds_total", "Time from those writes' calls to their answers (queue, group, COMMIT, fsync).",
		func(s store.Stats) float64 { return s.Waited.Seconds() })
}

// run checks the database every interval until ctx ends.
func (w *dbWatch) run(ctx context.Context, interval time.Duration) {
	every(ctx, interval, func() {
		cctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		w.check(cctx)
		cancel()
	})
}

// every runs f every interval until ctx ends.
func every(ctx context.Context, interval time.Duration, f func()) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			f()
		}
	}
}

// check tries a write and reports the fault that stops it ("" when it succeeds).
func (w *dbWatch) check(ctx context.Context) (store.Fault, error) {
	err := w.db.Ping(ctx)
	if err != nil && errors.Is(ctx.Err(), context.Canceled) {
		return faultUnavailable, err // the asker went away: that says nothing of the database
	}
	f := store.Fault("")
	if err != nil {
		f = w.db.Diagnose(err)
		if f == "" && errors.Is(err, context.DeadlineExceeded) {
			f = store.FaultBusy // the writer did not get to it in time: a held lock, a stalled disk
		}
		if f == "" {
			f = faultUnavailable
		}
	}
	w.observe(f, err)
	return f, err
}

// observe records the outcome of a write and logs when it changes the database's state.
func (w *dbWatch) observe(f store.Fault, err error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if f == w.fault {
		return
	}
	was, since := w.fault, w.since
	w.fault, w.since = f, time.Now()
	if f == "" {
		w.writable.Set(1)
		w.log.Info().Str("fault", string(was)).Dur("after", time.Since(since)).Msg("database writable again")
		return
	}
	w.writable.Set(0)
	action := faultAction(f, w.db.Dialect() == store.Postgres)
	if errors.Is(err, store.ErrSyncFailed) {
		// The store refuses every write after a failed fsync, whatever the disk does next.
		action += "; an fsync failed, so only a restart ends it"
	}
	w.log.Error().Err(err).Str("fault", string(f)).Str("database", w.where).Str("action", action).
		Msg("database cannot be written: writes fail and MO are refused for the SMSC to redeliver")
}

// faultAction tells the operator what ends fault f, on PostgreSQL (postgres) or SQLite.
func faultAction(f store.Fault, postgres bool) string {
	if postgres {
		switch f {
		case store.FaultReadOnly:
			return "the PostgreSQL server only takes reads (a standby, or default_transaction_read_only): point database.url at the primary; a multi-host URL with target_session_attrs=read-write finds it by itself"
		case store.FaultBusy:
			return "rows or locks are held longer than the lock timeout: the switch recovers by itself once they are free"
		case store.FaultFull, store.FaultIO, store.FaultCorrupt:
			return "the PostgreSQL server reports a storage fault: see its log; the switch recovers by itself once it takes writes"
		}
	}
	switch f {
	case store.FaultUnreachable:
		return "the PostgreSQL server cannot be reached: start it, or promote the standby (a multi-host database.url with target_session_attrs=read-write follows it); the switch reconnects by itself"
	case store.FaultBusy:
		return "another process holds the database's write lock, or the disk stalls: the switch recovers by itself once it is free"
	case store.FaultFull:
		return "the disk is full: free space; the switch recovers by itself"
	case store.FaultReadOnly:
		return "the filesystem is read-only (the kernel remounts a disk read-only after errors): repair it, remount it read-write and restart payswitch"
	case store.FaultIO:
		return "the disk reports I/O errors: repair or replace it and restart payswitch"
	case store.FaultCorrupt:
		return "the database file is damaged: stop payswitch, move the database and its -wal and -shm aside, and rebuild it with payswitch restore -from the replica (database.replicas) or the last backup"
	}
	return "see the error"
}

// dbStartError says what to do when the database cannot be opened because of its disk.
// Serve does not start degraded on a read-only filesystem: nothing it does could be kept.
func dbStartError(path string, err error) error {
	switch store.Diagnose(path, err) {
	case store.FaultReadOnly:
		return fmt.Errorf("database %s is on a read-only filesystem; serve must write there: remount it read-write (after fsck if the kernel made it read-only after errors): %w", path, err)
	case store.FaultFull:
		return fmt.Errorf("database %s: the disk is full; free space and start again: %w", path, err)
	case store.FaultIO:
		return fmt.Errorf("database %s: the disk reports I/O errors; repair it and start again: %w", path, err)
	}
	return err
}
