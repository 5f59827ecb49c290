package main

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/payswitch/payswitch/tools/smscsim"
)

// workReading is what the switch has done so far, read before and after the load:
// serve's CPU, its writers' statements, the request PDUs through the simulators, and the
// CPU of loadgen and of the whole machine.
type workReading struct {
	cpu        time.Duration // all nodes; below 0: unknown
	statements float64       // all nodes; below 0: unknown
	pdus       uint64        // deliver_sm acknowledged and submit_sm accepted, all simulators
	self       time.Duration // loadgen's own; below 0: unknown
	// busy, steal and total are machineCPU's; below 0: unknown.
	busy, steal, total time.Duration
}

// readWork takes a reading of srvs and sims.
func readWork(ctx context.Context, srvs []*serveProc, sims []*smscsim.Sim, token string) workReading {
	r := workReading{cpu: nodesCPU(srvs), self: procCPU(os.Getpid())}
	r.busy, r.steal, r.total = machineCPU()
	for _, srv := range srvs {
		w, ok, _ := newClient(srv.base, token).writerStats(ctx)
		if !ok || w.statements < 0 || r.statements < 0 {
			r.statements = -1
			continue
		}
		r.statements += w.statements
	}
	for _, sim := range sims {
		d, s := sim.Counts()
		r.pdus += d + s
	}
	return r
}

// workFigures are the load's costs per payment and its PDU rate.
type workFigures struct {
	payments       int // completed: SMS payments and requests to pay
	elapsed        time.Duration
	cpu            time.Duration // below 0: unknown
	statements     float64       // below 0: unknown
	pdus           uint64
	echoPDUsPerSec float64 // the echo ceiling of the same run; 0: not measured
}

func workBetween(a, b workReading, payments int, elapsed time.Duration, echo float64) workFigures {
	w := workFigures{payments: payments, elapsed: elapsed, cpu: -1, statements: -1, pdus: b.pdus - a.pdus, echoPDUsPerSec: echo}
	if a.cpu >= 0 && b.cpu >= 0 {
		w.cpu = b.cpu - a.cpu
	}
	if a.statements >= 0 && b.statements >= 0 {
		w.statements = b.statements - a.statements
	}
	return w
}

// line is exactly load payments/s=X pdus/s=X echo_ratio=R serve_cpu_ms/payment=C
// statements/payment=S, where a figure that could not be measured reads "unknown".
// payments/s counts the requests to pay completed too.
func (w workFigures) line() string {
	rate := perSecond(w.payments, w.elapsed)
	pdus := perSecond(int(w.pdus), w.elapsed)
	unknown := "unknown"
	ratio, cpu, stmts := unknown, unknown, unknown
	if w.echoPDUsPerSec > 0 {
		ratio = fmt.Sprintf("%.3f", pdus/w.echoPDUsPerSec)
	}
	if w.payments > 0 && w.cpu >= 0 {
		cpu = fmt.Sprintf("%.3f", float64(w.cpu)/float64(time.Millisecond)/float64(w.payments))
	}
	if w.payments > 0 && w.statements >= 0 {
		stmts = fmt.Sprintf("%.1f", w.statements/float64(w.payments))
	}
	return fmt.Sprintf("load payments/s=%.1f pdus/s=%.0f echo_ratio=%s serve_cpu_ms/payment=%s statements/payment=%s",
		rate, pdus, ratio, cpu, stmts)
}
