package main

import (
	"context"
	"time"

	"github.com/payswitch/payswitch/api"
	"github.com/payswitch/payswitch/replica"
)

// replicaCloseTimeout bounds the last shipment to a replica at shutdown.
const replicaCloseTimeout = 15 * time.Second

// startReplicas starts streaming the database to database.replicas. A replica that
// cannot be reached does not stop serve: it is retried, logged and shown in /healthz.
// Each is closed by the store's Close, after the last write and before the final
// checkpoint truncates the WAL (see store/checkpoint.go).
func (a *app) startReplicas() error {
	for _, rc := range a.cfg.Database.Replicas {
		r, err := replica.Start(a.cfg.Database.Path, replica.Config{URL: rc.URL, AccessKeyID: rc.AccessKeyID,
			SecretAccessKey: rc.SecretAccessKey, SyncInterval: rc.SyncInterval}, a.log, nil)
		if err != nil {
			return err
		}
		if err := r.Register(a.registry); err != nil {
			r.Close(context.Background())
			return err
		}
		a.replicas = append(a.replicas, r)
		a.log.Info().Str("replica", r.Status().Name).Dur("sync_interval", rc.SyncInterval).Msg("replicating the database")
	}
	if len(a.replicas) > 0 {
		a.db.BeforeFinalCheckpoint(a.closeReplicas)
	}
	return nil
}

func (a *app) closeReplicas() {
	for _, r := range a.replicas {
		ctx, cancel := context.WithTimeout(context.Background(), replicaCloseTimeout)
		if err := r.Close(ctx); err != nil {
			a.log.Error().Err(err).Str("replica", r.Status().Name).
				Msg("the last commits were not shipped to the replica; it will catch up at the next start")
		}
		cancel()
	}
}

func (a *app) replicaHealth() []api.ReplicaHealth {
	var hs []api.ReplicaHealth
	for _, r := range a.replicas {
		s := r.Status()
		h := api.ReplicaHealth{Name: s.Name, OK: s.OK, LagSeconds: s.Lag.Seconds(),
			CaughtUpAt: s.CaughtUp.UTC().Format(time.RFC3339Nano), Error: s.Error}
		if !s.ErrorSince.IsZero() {
			h.ErrorSince = s.ErrorSince.UTC().Format(time.RFC3339Nano)
		}
		hs = append(hs, h)
	}
	return hs
}
