package main

import (
	"context"
	"errors"
	"fmt"
	"io"
)

// runCompare runs o.rounds pairs of runs on bin, each on a fresh switch: SMS payments
// only, and SMS payments with o.requests requests to pay per second; the second of the
// pair goes first in even rounds, so that a host that gets slower or faster during the
// rounds favours neither. It prints each run's lines, each pair's comparison and, with
// more than one round, their summary.
func runCompare(ctx context.Context, o options, bin string, lg *logger, stdout io.Writer) error {
	var (
		errs []error
		cs   []comparison
	)
	for round := 1; round <= o.rounds; round++ {
		order := []bool{false, true} // with requests?
		if round%2 == 0 {
			order = []bool{true, false}
		}
		var pair [2]*phaseResult // SMS only, with requests
		for i, withRequests := range order {
			name, prefix, slot := "SMS payments only", "sms_only: ", 0
			if withRequests {
				name, prefix, slot = fmt.Sprintf("SMS payments with %.1f requests to pay/s", o.requests), "with_requests: ", 1
			}
			lg.printf("compare, round %d of %d, run %d of 2: %s", round, o.rounds, i+1, name)
			pr, err := runSwitch(ctx, o, bin, lg, withRequests, target{})
			printPhase(stdout, pr, prefix)
			errs = append(errs, err)
			if pr == nil || ctx.Err() != nil {
				return errors.Join(append(errs, ctx.Err())...)
			}
			pair[slot] = pr
		}
		c := compare(*pair[0], *pair[1])
		cs = append(cs, c)
		fmt.Fprintln(stdout, c.line())
	}
	if len(cs) > 1 {
		fmt.Fprintln(stdout, comparisonsLine(cs))
	}
	return errors.Join(errs...)
}
