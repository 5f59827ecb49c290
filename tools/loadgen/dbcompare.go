package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
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
//
// With -rounds R above 1 the PostgreSQL runs are made R times, one node first in odd
// rounds and N nodes first in even ones (a host that speeds up or slows down during the
// rounds favours neither); SQLite runs once, in the first. Each round ends with its
// db_compare line, and the last line sums them up (dbRoundsLine).
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
	pgRuns := []run{{name: "postgres_1node", tg: target{nodes: 1}}}
	if o.nodes > 1 {
		pgRuns = append(pgRuns, run{name: fmt.Sprintf("postgres_%dnodes", o.nodes), tg: target{nodes: o.nodes}})
	}
	var (
		errs   []error
		rounds []dbRound
		made   int // databases created, for their names
	)
	for round := 1; round <= o.rounds; round++ {
		runs := slices.Clone(pgRuns)
		if round%2 == 0 {
			slices.Reverse(runs)
		}
		if round == 1 {
			runs = append([]run{{name: "sqlite"}}, runs...)
		}
		results := map[string]*phaseResult{}
		for i, r := range runs {
			if r.name != "sqlite" {
				made++
				url, err := srv.CreateDatabase(ctx, fmt.Sprintf("loadgen_%d", made))
				if err != nil {
					return errors.Join(append(errs, err)...)
				}
				r.tg.url = url
			}
			if o.rounds > 1 {
				lg.printf("db compare, round %d of %d, run %d of %d: %s", round, o.rounds, i+1, len(runs), r.name)
			} else {
				lg.printf("db compare, run %d of %d: %s", i+1, len(runs), r.name)
			}
			pr, err := runSwitch(ctx, o, bin, lg, o.requests > 0, r.tg)
			printPhase(stdout, pr, r.name+": ")
			errs = append(errs, err)
			if pr == nil || ctx.Err() != nil {
				return errors.Join(append(errs, ctx.Err())...)
			}
			results[r.name] = pr
		}
		// The same order in every round, whichever ran first.
		var summary []string
		for _, r := range append([]run{{name: "sqlite"}}, pgRuns...) {
			if pr, ok := results[r.name]; ok {
				summary = append(summary, fmt.Sprintf("%s_payments/s=%.1f %s_p99_ms=%.1f", r.name, pr.payments.rate(),
					r.name, ms(percentile(pr.payments.latencies, 99))))
			}
		}
		fmt.Fprintln(stdout, "db_compare "+strings.Join(summary, " "))
		if len(pgRuns) > 1 {
			rounds = append(rounds, dbRound{one: results[pgRuns[0].name].payments.rate(), many: results[pgRuns[1].name].payments.rate()})
		}
	}
	if o.rounds > 1 && len(rounds) > 0 {
		fmt.Fprintln(stdout, dbRoundsLine(o.nodes, rounds))
	}
	return errors.Join(errs...)
}

// dbRound is one round's payments/s of one node and of N nodes on PostgreSQL.
type dbRound struct{ one, many float64 }

// dbRoundsLine is exactly db_compare_rounds=R postgres_1node_median=X
// postgres_Nnodes_median=Y nodes_ahead=K, where K is how many rounds the N nodes took
// more payments/s than one node in.
func dbRoundsLine(nodes int, rounds []dbRound) string {
	ones, manys := make([]float64, len(rounds)), make([]float64, len(rounds))
	ahead := 0
	for i, r := range rounds {
		ones[i], manys[i] = r.one, r.many
		if r.many > r.one {
			ahead++
		}
	}
	slices.Sort(ones)
	slices.Sort(manys)
	return fmt.Sprintf("db_compare_rounds=%d postgres_1node_median=%.1f postgres_%dnodes_median=%.1f nodes_ahead=%d",
		len(rounds), median(ones), nodes, median(manys), ahead)
}
