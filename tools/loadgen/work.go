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
	pages      float64       // written to the WAL, all nodes (SQLite); below 0: unknown
	pdus       uint64        // deliver_sm acknowledged and submit_sm accepted, all simulators
	self       time.Duration // loadgen's own; below 0: unknown
	// busy, steal and total are machineCPU's; below 0: unknown.
	busy, steal, total time.Duration
	// deliveries is the simulators' DeliveryTimes, all simulators together; answered,
	// the switches' own times from a deliver_sm's arrival to its answer, all nodes.
	deliveries map[string]smscsim.DeliveryTimes
	answered   map[string]answerTimes
}

// readWork takes a reading of srvs and sims.
func readWork(ctx context.Context, srvs []*serveProc, sims []*smscsim.Sim, token string) workReading {
	r := workReading{cpu: nodesCPU(srvs), self: procCPU(os.Getpid()), answered: map[string]answerTimes{}}
	r.busy, r.steal, r.total = machineCPU()
	for _, srv := range srvs {
		w, ok, _ := newClient(srv.base, token).writerStats(ctx)
		for kind, t := range w.answered {
			sum := r.answered[kind]
			r.answered[kind] = answerTimes{sum: sum.sum + t.sum, count: sum.count + t.count}
		}
		addKnown(&r.statements, w.statements, ok)
		addKnown(&r.pages, w.pages, ok)
	}
	r.deliveries = map[string]smscsim.DeliveryTimes{}
	for _, sim := range sims {
		d, s := sim.Counts()
		r.pdus += d + s
		for kind, t := range sim.DeliveryTimes() {
			sum := r.deliveries[kind]
			r.deliveries[kind] = smscsim.DeliveryTimes{Wait: sum.Wait.Plus(t.Wait), Ack: sum.Ack.Plus(t.Ack)}
		}
	}
	return r
}

// deliveriesLine says how long the simulators' deliver_sm took between readings a and b,
// by kind: from sending until the switch acknowledged it (once durable), and how long
// deliveries waited for a slot of the window before it; "" when none went.
func deliveriesLine(a, b workReading) string {
	line := ""
	for _, kind := range []string{"MO", "USSD", "receipt"} {
		t := b.deliveries[kind]
		ack, wait := t.Ack.Since(a.deliveries[kind].Ack), t.Wait.Since(a.deliveries[kind].Wait)
		if ack.Count() == 0 {
			continue
		}
		if line != "" {
			line += "; "
		}
		line += fmt.Sprintf("%s acknowledged p50/p99 %.1f/%.1f ms after sending (%d), waited for the window p50/p99 %.1f/%.1f ms",
			kind, ms(ack.Quantile(0.5)), ms(ack.Quantile(0.99)), ack.Count(), ms(wait.Quantile(0.5)), ms(wait.Quantile(0.99)))
		// The switch counts USSD messages among its MOs: their own mean is not told apart.
		switchKind := map[string]string{"MO": "mo", "receipt": "receipt"}[kind]
		if a, b := a.answered[switchKind], b.answered[switchKind]; switchKind != "" && b.count > a.count {
			line += fmt.Sprintf(", the switch's own mean from arrival to answer %.1f ms", 1000*(b.sum-a.sum)/(b.count-a.count))
		}
	}
	if line == "" {
		return ""
	}
	return "deliver_sm during the load: " + line
}

// workFigures are the load's costs per payment and its PDU rate.
type workFigures struct {
	payments       int // completed: SMS payments and requests to pay
	elapsed        time.Duration
	cpu            time.Duration // below 0: unknown
	statements     float64       // below 0: unknown
	pages          float64       // below 0 or 0 (PostgreSQL): unknown
	pdus           uint64
	echoPDUsPerSec float64 // the echo ceiling of the same run; 0: not measured
}

func workBetween(a, b workReading, payments int, elapsed time.Duration, echo float64) workFigures {
	w := workFigures{payments: payments, elapsed: elapsed, cpu: -1, pdus: b.pdus - a.pdus, echoPDUsPerSec: echo}
	if a.cpu >= 0 && b.cpu >= 0 {
		w.cpu = b.cpu - a.cpu
	}
	w.statements, w.pages = knownDiff(a.statements, b.statements), knownDiff(a.pages, b.pages)
	return w
}

// addKnown adds a node's figure v to *sum, which becomes unknown (-1) for good once a
// node's is: unread (!ok) or not exported (below 0).
func addKnown(sum *float64, v float64, ok bool) {
	if !ok || v < 0 || *sum < 0 {
		*sum = -1
		return
	}
	*sum += v
}

// knownDiff is b - a, or -1 (unknown) when either is.
func knownDiff(a, b float64) float64 {
	if a < 0 || b < 0 {
		return -1
	}
	return b - a
}

// line is exactly load payments/s=X pdus/s=X echo_ratio=R serve_cpu_ms/payment=C
// statements/payment=S pages/payment=W, where a figure that could not be measured reads
// "unknown" (pages on PostgreSQL, whose writes the switch does not count). payments/s
// counts the requests to pay completed too.
func (w workFigures) line() string {
	rate := perSecond(w.payments, w.elapsed)
	pdus := perSecond(int(w.pdus), w.elapsed)
	unknown := "unknown"
	ratio, cpu, stmts, pages := unknown, unknown, unknown, unknown
	if w.echoPDUsPerSec > 0 {
		ratio = fmt.Sprintf("%.3f", pdus/w.echoPDUsPerSec)
	}
	if w.payments > 0 && w.cpu >= 0 {
		cpu = fmt.Sprintf("%.3f", float64(w.cpu)/float64(time.Millisecond)/float64(w.payments))
	}
	if w.payments > 0 && w.statements >= 0 {
		stmts = fmt.Sprintf("%.1f", w.statements/float64(w.payments))
	}
	if w.payments > 0 && w.pages > 0 {
		pages = fmt.Sprintf("%.1f", w.pages/float64(w.payments))
	}
	return fmt.Sprintf("load payments/s=%.1f pdus/s=%.0f echo_ratio=%s serve_cpu_ms/payment=%s statements/payment=%s pages/payment=%s",
		rate, pdus, ratio, cpu, stmts, pages)
}
