package outbox

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"runtime/pprof"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/payswitch/payswitch/internal/dbtest"
	"github.com/payswitch/payswitch/store"
)

// meter counts what a benchmark costs: statements on the writer connection, store
// operations (one SAVEPOINT each), the store writer's time inside operations (the
// switch's bottleneck; store.Stats.Run) and the process's CPU time. With OUTBOX_BENCH_PROFILE
// set to a file name it also writes a CPU profile of the measured part alone (setup
// left out), from which the store writer's time per message can be read:
// go tool pprof -top -cum FILE | grep 'store.(\*DB).loop'.
type meter struct {
	db       *store.DB
	stmts    atomic.Int64
	ops0     int64 // the store's operations when start was called
	cpu, run time.Duration
	prof     *os.File
}

// ops is the number of store operations run since start (or since the store opened).
func (m *meter) ops() int64 { return m.db.Stats().Ops - m.ops0 }

// openMetered opens a durable store (synchronous FULL, as serve runs), on the driver of
// the pgtest.Both subtest tb runs in, whose writer statements m counts.
func openMetered(tb testing.TB) (*store.DB, *meter) {
	tb.Helper()
	m := &meter{}
	// One group loop on PostgreSQL, so that a held Write holds the writer as on SQLite.
	db := dbtest.Open(tb, store.Options{Groups: 1, OnStatement: func(q string) {
		m.stmts.Add(1)
	}}, Schema)
	m.db = db
	return db, m
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// start zeroes the counters; call it with the benchmark's timer.
func (m *meter) start() {
	m.stmts.Store(0)
	m.ops0 = m.db.Stats().Ops
	if name := os.Getenv("OUTBOX_BENCH_PROFILE"); name != "" && m.prof == nil {
		if f, err := os.Create(name); err == nil && pprof.StartCPUProfile(f) == nil {
			m.prof = f
		}
	}
	m.cpu = cpuTime()
	m.run = m.db.Stats().Run
}

// report adds per-message figures for n messages.
func (m *meter) report(b *testing.B, n int) {
	cpu := cpuTime() - m.cpu
	run := m.db.Stats().Run - m.run
	if m.prof != nil {
		pprof.StopCPUProfile()
		m.prof.Close()
		m.prof = nil
	}
	b.ReportMetric(float64(cpu.Microseconds())/float64(n), "cpu-µs/msg")
	b.ReportMetric(float64(run.Nanoseconds())/1e3/float64(n), "writer-µs/msg")
	b.ReportMetric(float64(m.stmts.Load())/float64(n), "stmts/msg")
	b.ReportMetric(float64(m.ops())/float64(n), "ops/msg")
}

// history writes n delivered messages, as a switch that has been running a while has.
func history(tb testing.TB, db *store.DB, n int) {
	tb.Helper()
	err := db.Write(ctx, func(tx store.Tx) error {
		for i := range n {
			id, err := Enqueue(ctx, tx, sms(fmt.Sprintf("2547%08d", i), "Confirmed. PAYAAAAAAA KES 1,500.00 paid."))
			if err != nil {
				return err
			}
			if _, err := tx.ExecContext(context.Background(), `UPDATE messages SET state = 'delivered', link = 'carrier-a', message_ids = ?
				WHERE id = ?`, fmt.Sprintf(`["h%d"]`, id), id); err != nil {
				return err
			}
			if _, err := tx.ExecContext(context.Background(), `INSERT INTO message_parts (link, message_id, outbox_id, part, status)
				VALUES ('carrier-a', ?, ?, 0, 'DELIVRD')`, fmt.Sprintf("h%d", id), id); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		tb.Fatal(err)
	}
}

// queue writes n SMS, one transaction, and returns their IDs.
func queue(tb testing.TB, db *store.DB, n int, receipt bool) []int64 {
	tb.Helper()
	ms := make([]Message, n)
	for i := range ms {
		ms[i] = sms(fmt.Sprintf("2547%08d", i), "Confirmed. PAYAAAAAAA KES 1,500.00 paid to Mama Mboga.")
		ms[i].RequestReceipt = receipt
	}
	return put(tb, db, Enqueue, ms...)
}

// parallel runs fn(i) for every i in [0, n) on c goroutines.
func parallel(n, c int, fn func(i int)) {
	var next atomic.Int64
	var wg sync.WaitGroup
	for range c {
		wg.Go(func() {
			for i := int(next.Add(1) - 1); i < n; i = int(next.Add(1) - 1) {
				fn(i)
			}
		})
	}
	wg.Wait()
}

// BenchmarkClaim measures one Claim of 16 from a queue of backlog due messages over a
// table with 20,000 delivered ones. Every claimed message is due again at the next
// iteration (its lease ran out), so the backlog stays as it is.
func BenchmarkClaim(b *testing.B) {
	for _, backlog := range []int{16, 256, 2048} {
		b.Run(fmt.Sprintf("backlog=%d", backlog), func(b *testing.B) {
			db, m := openMetered(b)
			c := newClock()
			o := New(db, c.Now)
			history(b, db, 20000)
			queue(b, db, backlog, true)
			m.start()
			for b.Loop() {
				if got := claim(b, o, 16, time.Second); len(got) != 16 {
					b.Fatalf("claimed %d, want 16", len(got))
				}
				c.Advance(time.Second)
			}
			m.report(b, 16*b.N)
		})
	}
}

// BenchmarkMarkSent measures recording b.N submits, one part each, from c workers at
// once, as the sender's workers on a link of window c do: of SMS that asked for delivery
// receipts (their parts are recorded) and of SMS that did not.
func BenchmarkMarkSent(b *testing.B) {
	for _, receipt := range []bool{true, false} {
		for _, c := range []int{1, 64} {
			b.Run(fmt.Sprintf("receipt=%v/workers=%d", receipt, c), func(b *testing.B) {
				db, m := openMetered(b)
				o := New(db, nil)
				history(b, db, 20000)
				ids := queue(b, db, b.N, receipt)
				claim(b, o, b.N, time.Hour)
				m.start()
				b.ResetTimer()
				parallel(b.N, c, func(i int) {
					msg := Message{ID: ids[i], Kind: KindSMS, RequestReceipt: receipt}
					if err := o.MarkSent(ctx, msg, "carrier-a", []string{fmt.Sprintf("m%d", ids[i])}); err != nil {
						b.Error(err)
					}
				})
				b.StopTimer()
				m.report(b, b.N)
			})
		}
	}
}

// BenchmarkReceipt measures recording b.N receipts for sent one-part messages from c
// deliver_sm handlers at once, through Receipt and through ReceiptWith (as the SMPP
// links and serve apply them): DELIVRD ones, which settle their message, and ENROUTE
// ones, which change nothing but the part.
func BenchmarkReceipt(b *testing.B) {
	for _, bc := range []struct {
		name, status, want string
		with               bool
	}{
		{"Receipt/DELIVRD", "DELIVRD", StateDelivered, false},
		{"ReceiptWith/DELIVRD", "DELIVRD", StateDelivered, true},
		{"ReceiptWith/ENROUTE", "ENROUTE", StateSent, true},
	} {
		for _, c := range []int{1, 64} {
			b.Run(fmt.Sprintf("%s/handlers=%d", bc.name, c), func(b *testing.B) {
				db, m := openMetered(b)
				o := New(db, nil)
				history(b, db, 20000)
				ids := queue(b, db, b.N, true)
				claim(b, o, b.N, time.Hour)
				parallel(b.N, 64, func(i int) {
					if err := o.MarkSent(ctx, askedReceipts(ids[i]), "carrier-a", []string{fmt.Sprintf("m%d", ids[i])}); err != nil {
						b.Error(err)
					}
				})
				m.start()
				b.ResetTimer()
				parallel(b.N, c, func(i int) {
					var (
						id    int64
						state string
						ok    bool
						err   error
					)
					if bc.with {
						var r Receipted
						r, ok, err = o.ReceiptWith(context.Background(), "carrier-a", fmt.Sprintf("m%d", ids[i]), bc.status, nil)
						id, state = r.ID, r.State
					} else {
						var got Message
						got, ok, err = o.Receipt(context.Background(), "carrier-a", fmt.Sprintf("m%d", ids[i]), bc.status)
						id, state = got.ID, got.State
					}
					if err != nil || !ok || id != ids[i] || state != bc.want {
						b.Errorf("receipt of %d: %d %s %v %v", ids[i], id, state, ok, err)
					}
				})
				b.StopTimer()
				m.report(b, b.N)
			})
		}
	}
}

// BenchmarkReceiptWriter measures what a delivery receipt costs the store's writer, the
// switch's bottleneck: its CPU time on the writer's thread (not wall time, which on a
// busy machine counts other processes' turns; the median of 64-receipt batches) and its
// statements, with the receipts applied 64 to a store operation as concurrent ones are
// combined. Receipts go to sent
// messages over a table of 20,000 delivered ones; "parts=3" ones to the three parts of
// messages in turn, so one in three settles its message.
func BenchmarkReceiptWriter(b *testing.B) {
	for _, bc := range []struct {
		name, status string
		parts        int // per message; 0: receipts for unknown parts
		want         string
	}{
		{"DELIVRD", "DELIVRD", 1, StateDelivered},
		{"UNDELIV", "UNDELIV", 1, StateUndeliverable},
		{"ENROUTE", "ENROUTE", 1, StateSent},
		{"parts=3/DELIVRD", "DELIVRD", 3, StateDelivered},
	} {
		b.Run(bc.name, func(b *testing.B) {
			db, m := openMetered(b)
			o := New(db, nil)
			history(b, db, 20000)
			type part struct {
				id  int64 // message; 0 for an unknown part
				mid string
			}
			parts := make([]part, b.N)
			if bc.parts == 0 {
				for i := range parts {
					parts[i].mid = fmt.Sprintf("u%d", i)
				}
			} else {
				ids := queue(b, db, (b.N+bc.parts-1)/bc.parts, true)
				claim(b, o, len(ids), time.Hour)
				parallel(len(ids), 64, func(i int) {
					mids := make([]string, bc.parts)
					for j := range mids {
						mids[j] = fmt.Sprintf("m%d.%d", ids[i], j)
						if k := i*bc.parts + j; k < len(parts) {
							parts[k] = part{ids[i], mids[j]}
						}
					}
					if err := o.MarkSent(ctx, askedReceipts(ids[i]), "carrier-a", mids); err != nil {
						b.Error(err)
					}
				})
			}
			const per = 64
			var cpu []time.Duration // per receipt, each batch's
			m.start()
			b.ResetTimer()
			for start := 0; start < len(parts); start += per {
				err := db.Write(ctx, func(tx store.Tx) error {
					runtime.LockOSThread()
					defer runtime.UnlockOSThread()
					t0 := threadCPU()
					batch := parts[start:min(start+per, len(parts))]
					for _, p := range batch {
						r, ok, err := receiptTx(ctx, tx, false, "carrier-a", p.mid, bc.status, 1, nil)
						if err != nil {
							return err
						}
						if ok != (p.id != 0) || r.ID != p.id {
							return fmt.Errorf("receipt for %s: message %d, found %v; want %d", p.mid, r.ID, ok, p.id)
						}
					}
					cpu = append(cpu, (threadCPU()-t0)/time.Duration(len(batch)))
					return nil
				})
				if err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			n := float64(b.N)
			// The median batch's: a busy machine's other work (a vCPU taken away, caches
			// emptied) still lands on some batches' CPU time.
			slices.Sort(cpu)
			b.ReportMetric(float64(cpu[len(cpu)/2].Nanoseconds())/1e3, "writer-cpu-µs/receipt")
			b.ReportMetric(float64(m.stmts.Load())/n, "stmts/receipt")
			if bc.want != "" {
				if got := get(b, o, parts[len(parts)-1].id); got.State != bc.want &&
					(bc.parts == 1 || len(parts)%bc.parts == 0) {
					b.Errorf("last message is %s, want %s", got.State, bc.want)
				}
			}
		})
	}
}

// BenchmarkMarkSentWriter measures what recording a submit costs the store's writer, as
// BenchmarkReceiptWriter does for a receipt: its CPU time on the writer's thread (the
// median of 64-submit batches) and its statements, for one-part SMS that asked for a
// delivery receipt and ones that did not, over a table of 20,000 delivered messages.
func BenchmarkMarkSentWriter(b *testing.B) {
	for _, receipt := range []bool{true, false} {
		b.Run(fmt.Sprintf("receipt=%v", receipt), func(b *testing.B) {
			db, m := openMetered(b)
			o := New(db, nil)
			history(b, db, 20000)
			ids := queue(b, db, b.N, receipt)
			claim(b, o, b.N, time.Hour)
			// Each submit's IDs as MarkSent has them before it writes (partIDs).
			parts := make([][]string, len(ids))
			for i, id := range ids {
				parts[i] = []string{fmt.Sprintf("m%d", id)}
			}
			const per = 64
			var cpu []time.Duration // per submit, each batch's
			m.start()
			b.ResetTimer()
			for start := 0; start < len(ids); start += per {
				err := db.Write(ctx, func(tx store.Tx) error {
					runtime.LockOSThread()
					defer runtime.UnlockOSThread()
					t0 := threadCPU()
					batch := parts[start:min(start+per, len(parts))]
					for i, p := range batch {
						if err := markSent(ctx, tx, false, ids[start+i], "carrier-a", p, idsText(p), receipt, 1, noHook); err != nil {
							return err
						}
					}
					cpu = append(cpu, (threadCPU()-t0)/time.Duration(len(batch)))
					return nil
				})
				if err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			slices.Sort(cpu)
			b.ReportMetric(float64(cpu[len(cpu)/2].Nanoseconds())/1e3, "writer-cpu-µs/submit")
			b.ReportMetric(float64(m.stmts.Load())/float64(b.N), "stmts/submit")
			if got := get(b, o, ids[len(ids)-1]); got.State != StateSent {
				b.Errorf("last message is %s, want sent", got.State)
			}
		})
	}
}

// noHook is markSent's applied for benchmarks: nobody listens.
func noHook(Receipted) error { return nil }
