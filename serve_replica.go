package main

import (
	"context"
	"time"

	"github.com/payswitch/payswitch/api"
	"github.com/payswitch/payswitch/replica"
)

// replicaCloseTimeout bounds the last shipment to the replicas at shutdown (each
// replica's own last round is bounded shorter, and they run at once).
const replicaCloseTimeout = 15 * time.Second

// startReplicas starts streaming the database to database.replicas, all of them
// through one replica.Replicator (one Litestream reader of the WAL). A replica that
// cannot be reached does not stop serve, nor hold the others back: it is retried,
// logged and shown in /healthz, and caught up when it is back. The Replicator is
// closed by the store's Close, after the last write and before the final checkpoint
// truncates the WAL (see store/checkpoint.go).
func (a *app) startReplicas() error {
	if len(a.cfg.Database.Replicas) == 0 {
		return nil
	}
	var cfgs []replica.Config
	for _, rc := range a.cfg.Database.Replicas {
		cfgs = append(cfgs, replica.Config{URL: rc.URL, AccessKeyID: rc.AccessKeyID,
			SecretAccessKey: rc.SecretAccessKey, SyncInterval: rc.SyncInterval})
	}
	r, err := replica.Start(a.cfg.Database.Path, cfgs, a.log, nil)
	if err != nil {
		return err
	}
	if err := r.Register(a.registry); err != nil {
		r.Close(context.Background())
		return err
	}
	a.replicas = []*replica.Replicator{r}
	for i, s := range r.Status() {
		a.log.Info().Str("replica", s.Name).Dur("sync_interval", cfgs[i].SyncInterval).Msg("replicating the database")
	}
	a.db.BeforeFinalCheckpoint(a.closeReplicas)
	return nil
}

func (a *app) closeReplicas() {
	for _, r := range a.replicas {
		ctx, cancel := context.WithTimeout(context.Background(), replicaCloseTimeout)
		if err := r.Close(ctx); err != nil {
			a.log.Error().Err(err).
				Msg("the last commits were not shipped to every replica; they are kept beside the database and sent at the next start")
		}
		cancel()
	}
}

func (a *app) replicaHealth() []api.ReplicaHealth {
	var hs []api.ReplicaHealth
	for _, r := range a.replicas {
		for _, s := range r.Status() {
			h := api.ReplicaHealth{Name: s.Name, OK: s.OK, LagSeconds: s.Lag.Seconds(),
				CaughtUpAt: s.CaughtUp.UTC().Format(time.RFC3339Nano), Error: s.Error}
			if !s.ErrorSince.IsZero() {
				h.ErrorSince = s.ErrorSince.UTC().Format(time.RFC3339Nano)
			}
			hs = append(hs, h)
		}
	}
	return hs
}
