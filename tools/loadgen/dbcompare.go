package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/payswitch/payswitch/internal/pgtest"
)

// runDBCompare (-db postgres) runs the same load on fresh switches of bin: one node on
// SQLite, one node on PostgreSQL and, with -nodes N above 1, N nodes sharing one
// PostgreSQL database, each node with its own SMSC and the phones spread over them. The
// PostgreSQL server is a throwaway durable one (fsync and synchronous_commit on, as
// SQLite's synchronous FULL), started by loadgen on loopback with pgtest, a new database
// per run. It prints each run's lines with a prefix (sqlite:, postgres_1node:,
// postgres_Nnodes:) and then
//
//	db_compare sqlite_payments/s=X sqlite_p99_ms=Y postgres_1node_payments/s=X ...
func runDBCompare(ctx context.Context, o options, bin string, lg *logger, stdout io.Writer) error {
	// The throwaway server reads this when it starts: durable, as the switch would run.
	if err := os.Setenv(pgtest.DurableEnv, "1"); err != nil {
		return err
	}
	lg.printf("starting a throwaway PostgreSQL (durable)")
	srv, err := pgtest.Start()
	if err != nil {
		return fmt.Errorf("-db postgres: %w", err)
	}
	defer srv.Stop()

	type run struct {
		name string
		tg   target
	}
	runs := []run{{name: "sqlite"}, {name: "postgres_1node", tg: target{nodes: 1}}}
	if o.nodes > 1 {
		runs = append(runs, run{name: fmt.Sprintf("postgres_%dnodes", o.nodes), tg: target{nodes: o.nodes}})
	}
	var (
		errs    []error
		summary []string
	)
	for i, r := range runs {
		if r.name != "sqlite" {
			url, err := srv.CreateDatabase(ctx, fmt.Sprintf("loadgen_%d", i))
			if err != nil {
				return errors.Join(append(errs, err)...)
			}
			r.tg.url = url
		}
		lg.printf("db compare, run %d of %d: %s", i+1, len(runs), r.name)
		pr, err := runSwitch(ctx, o, bin, lg, o.requests > 0, r.tg)
		printPhase(stdout, pr, r.name+": ")
		errs = append(errs, err)
		if pr == nil || ctx.Err() != nil {
			return errors.Join(append(errs, ctx.Err())...)
		}
		summary = append(summary, fmt.Sprintf("%s_payments/s=%.1f %s_p99_ms=%.1f", r.name, pr.payments.rate(),
			r.name, ms(percentile(pr.payments.latencies, 99))))
	}
	fmt.Fprintln(stdout, "db_compare "+strings.Join(summary, " "))
	return errors.Join(errs...)
}
