package main

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/payswitch/payswitch/internal/pgtest"
)

// startPostgres starts the throwaway PostgreSQL of -db postgres, durable (fsync and
// synchronous_commit on: a kill must lose nothing acknowledged), and makes the switch's
// database on it. close stops it.
func (h *harness) startPostgres(ctx context.Context) (url string, err error) {
	if err := os.Setenv(pgtest.DurableEnv, "1"); err != nil {
		return "", err
	}
	if h.o.failover {
		return h.startPair(ctx)
	}
	if h.pg, err = pgtest.Start(); err != nil {
		return "", fmt.Errorf("-db postgres: %w", err)
	}
	url, err = h.pg.CreateDatabase(ctx, "crashtest")
	if err != nil {
		return "", fmt.Errorf("-db postgres: %w", err)
	}
	fmt.Fprintf(h.errw, "crashtest: PostgreSQL in %s (log.txt)\n", h.pg.Dir())
	return url, nil
}

// startPair starts the primary and its synchronous standby of -failover and makes the
// switch's database on them; the nodes get the multi-host URL, which follows the
// standby once it is promoted.
func (h *harness) startPair(ctx context.Context) (string, error) {
	pair, err := pgtest.StartPair(pgtest.PairOptions{})
	if err != nil {
		return "", fmt.Errorf("-db postgres -failover: %w", err)
	}
	h.pair = pair
	url, err := pair.CreateDatabase(ctx, "crashtest")
	if err != nil {
		return "", fmt.Errorf("-failover: %w", err)
	}
	fmt.Fprintf(h.errw, "crashtest: PostgreSQL primary %s with synchronous standby %s\n", pair.Primary(), pair.StandbyAddr())
	return url, nil
}

// failover kills the primary with SIGKILL (as a lost machine), leaves the nodes without
// a primary for down, promotes the standby and waits until every node is healthy again by itself
// (the nodes are not restarted: their multi-host URL finds the new primary).
func (h *harness) failover(ctx context.Context, down time.Duration) error {
	killed := time.Now()
	if err := h.pair.KillPrimary(); err != nil {
		return violated(invSwitchUp, "kill the primary: %v", err)
	}
	time.Sleep(down)
	if err := h.pair.Promote(ctx); err != nil {
		return violated(invSwitchUp, "promote the standby: %v", err)
	}
	deadline := time.Now().Add(healthWait)
	for i, n := range h.nodes {
		for {
			err := n.srv.waitHealthy(ctx, time.Until(deadline))
			if err == nil {
				break
			}
			// A node the kills started during the outage exited, as it must (see
			// waitBack), and the kills' supervisor starts it again: wait for that.
			if !n.srv.refusedStart() || time.Now().After(deadline) {
				return violated(invSwitchUp, "node %d after the failover to %s: %v", i+1, h.pair.Primary(), err)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	h.outages = append(h.outages, outage{killed, time.Now()})
	fmt.Fprintf(h.errw, "crashtest: failover: primary killed, standby %s promoted after %s, every node healthy %s after the kill\n",
		h.pair.Primary(), down, time.Since(killed).Round(time.Millisecond))
	return nil
}
