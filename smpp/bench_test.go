package smpp_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime/pprof"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/fiorix/go-smpp/smpp/pdu/pdufield"
	"github.com/payswitch/payswitch/outbox"
	"github.com/payswitch/payswitch/smpp"
	"github.com/payswitch/payswitch/store"
	"github.com/rs/zerolog"
)

// benchStore opens a durable (synchronous FULL) store, as serve does by default.
func benchStore(b *testing.B) (*store.DB, *outbox.Outbox) {
	b.Helper()
	db, err := store.Open(filepath.Join(b.TempDir(), "payswitch.db"), store.Options{}, outbox.Schema, smpp.GatewaySchema)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { db.Close() })
	return db, outbox.New(db, nil)
}

// fill enqueues n SMS to to in one transaction, without waking anyone.
func fill(b *testing.B, db *store.DB, n int, to string) {
	b.Helper()
	err := db.Write(context.Background(), func(tx store.Tx) error {
		for i := range n {
			_, err := outbox.Enqueue(context.Background(), tx, outbox.Message{Kind: outbox.KindSMS, To: to, From: shortcode,
				Text: fmt.Sprintf("Your balance is KES 1,500.00 (%d)", i)})
			if err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
}

// drain runs a sender until every one of n messages is sent and reports MT/s.
func drain(b *testing.B, o *outbox.Outbox, n int, links []*smpp.Link, affinity ...smpp.Affinity) {
	b.Helper()
	s := smpp.NewSender(o, links, zerolog.Nop())
	for _, a := range affinity {
		s.AddAffinity(a)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	start := time.Now()
	go func() { done <- s.Run(ctx) }()
	for {
		st, err := o.Stats(context.Background())
		if err != nil {
			b.Fatal(err)
		}
		if st[outbox.StateSent] == int64(n) {
			break
		}
		time.Sleep(time.Millisecond)
	}
	elapsed := time.Since(start)
	b.StopTimer()
	cancel()
	<-done
	b.ReportMetric(float64(n)/elapsed.Seconds(), "MT/s")
}

// BenchmarkSenderWindow measures outbox-to-SMSC throughput over one link to the demo
// SMSC, by window and by the SMSC's response latency (loopback, and 5 ms as a busy
// carrier answers). b.N messages are queued first, then sent and recorded as sent.
func BenchmarkSenderWindow(b *testing.B) {
	for _, latency := range []time.Duration{0, 5 * time.Millisecond} {
		for _, window := range []int{1, 10, 50} {
			b.Run(fmt.Sprintf("latency=%v/window=%d", latency, window), func(b *testing.B) {
				db, o := benchStore(b)
				sim := startSim(b, "carrier-a")
				if latency > 0 {
					sim.SetResponseDelay(1<<30, latency)
				}
				l := startLink(b, sim, smpp.LinkConfig{Name: "carrier-a", Window: window}, nil, nil)
				waitState(b, smpp.StateBound, l)
				fill(b, db, b.N, "254700000001")
				b.ResetTimer()
				drain(b, o, b.N, []*smpp.Link{l})
			})
		}
	}
}

// BenchmarkGatewayMO measures an aggregator's submit_sm to the shortcode, one at a
// time, through the gateway (pin lookup included) to a handler that commits one write,
// as the engine does, and back; "receipt" asks for a delivery receipt, whose row is
// written beside the handler's and which is sent and deleted meanwhile.
func BenchmarkGatewayMO(b *testing.B) {
	for _, rd := range []pdufield.DeliverySetting{pdufield.NoDeliveryReceipt, pdufield.FinalDeliveryReceipt} {
		name := "plain"
		if rd != pdufield.NoDeliveryReceipt {
			name = "receipt"
		}
		b.Run(name, func(b *testing.B) {
			db, _ := benchStore(b)
			h := smpp.HandlerFuncs{MO: func(ctx context.Context, m smpp.MO) error {
				return db.Write(ctx, func(tx store.Tx) error {
					_, err := tx.ExecContext(ctx, `INSERT INTO bench_mo (text) VALUES (?)`, m.Text)
					return err
				})
			}}
			if err := db.Write(context.Background(), func(tx store.Tx) error {
				_, err := tx.ExecContext(context.Background(), `CREATE TABLE bench_mo (text TEXT)`)
				return err
			}); err != nil {
				b.Fatal(err)
			}
			g := startGateway(b, db, h, nil)
			agg := mustBind(b, g.Addr(), "agg-x", "secret-x")
			done := make(chan struct{})
			b.Cleanup(func() { close(done) })
			go func() { // the receipts: the client stops reading while they are not taken
				for {
					select {
					case <-agg.dl:
					case <-done:
						return
					}
				}
			}()
			b.ResetTimer()
			for range b.N {
				if _, err := submitRD(b, &agg.trx.Transmitter, "254700000001", "BAL", rd); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkGatewayMT measures outbox-to-aggregator throughput: b.N answers to a pinned
// number, sent as deliver_sm to a go-smpp client (window 10).
func BenchmarkGatewayMT(b *testing.B) {
	db, o := benchStore(b)
	g := startGateway(b, db, smpp.HandlerFuncs{}, nil)
	agg := mustBind(b, g.Addr(), "agg-x", "secret-x")
	go func() {
		for range agg.dl {
		}
	}()
	if _, err := agg.submit("254700000001", shortcode, "BAL"); err != nil {
		b.Fatal(err)
	}
	sim := startSim(b, "carrier-a")
	l := startLink(b, sim, smpp.LinkConfig{Name: "carrier-a"}, nil, nil)
	waitState(b, smpp.StateBound, l)
	fill(b, db, b.N, "254700000001")
	b.ResetTimer()
	drain(b, o, b.N, []*smpp.Link{l}, g)
}

// flowMeter counts what the sender's flow costs: statements on the writer connection,
// store operations (one SAVEPOINT each) and the process's CPU time.
type flowMeter struct {
	stmts, ops atomic.Int64
	cpu        time.Duration
}

// profile starts a CPU profile of what follows, when OUTBOX_BENCH_PROFILE names a file,
// and returns the function that ends it: the store writer's time per message can be
// read from it (go tool pprof -top -cum FILE | grep 'store.(\*DB).loop').
func profile() (stop func()) {
	name := os.Getenv("OUTBOX_BENCH_PROFILE")
	if name == "" {
		return func() {}
	}
	f, err := os.Create(name)
	if err != nil {
		return func() {}
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return func() {}
	}
	return func() {
		pprof.StopCPUProfile()
		f.Close()
	}
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// waitDelivered polls the outbox until n messages are delivered.
func waitDelivered(b *testing.B, o *outbox.Outbox, n int) {
	deadline := time.Now().Add(time.Minute)
	for {
		st, err := o.Stats(context.Background())
		if err != nil {
			b.Fatal(err)
		}
		if st[outbox.StateDelivered] == int64(n) {
			return
		}
		if time.Now().After(deadline) {
			b.Fatalf("%d of %d delivered after a minute: %v", st[outbox.StateDelivered], n, st)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// BenchmarkSenderFlow measures the whole life of b.N SMS that ask for a delivery
// receipt, as the switch sends them: 8 producers enqueue them one per store operation
// and Kick (as the engine does), the sender claims and submits them over one link
// (window 64) to the demo SMSC, records the submits, and the link records the receipts
// (1 ms after each submit, so that some overtake their submit's record). It ends when
// every message is delivered (to within the 10 ms the wait polls). Per message: the
// process's CPU, the statements and the store operations (1 of which is the enqueue),
// and the time from the end of the enqueue to the submit's arrival at the SMSC.
// rate=max enqueues as fast as the store takes them; rate=500 paces the producers at
// 500 messages/s in all, to see the latency of a sender that is not saturated.
func BenchmarkSenderFlow(b *testing.B) {
	for _, rate := range []int{0, 500} {
		name := "rate=max"
		if rate > 0 {
			name = fmt.Sprintf("rate=%d", rate)
		}
		b.Run(name, func(b *testing.B) {
			m := &flowMeter{}
			db, err := store.Open(filepath.Join(b.TempDir(), "payswitch.db"), store.Options{OnStatement: func(q string) {
				m.stmts.Add(1)
				if q == "SAVEPOINT op" {
					m.ops.Add(1)
				}
			}}, outbox.Schema, smpp.GatewaySchema)
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { db.Close() })
			o := outbox.New(db, nil)
			sim := startSim(b, "carrier-a")
			l := startLink(b, sim, smpp.LinkConfig{Name: "carrier-a", Window: 64},
				smpp.HandlerFuncs{Receipt: smpp.ReceiptRecorder(o)}, nil)
			waitState(b, smpp.StateBound, l)
			mts, stop := sim.Subscribe("")
			defer stop()
			arrived := make([]time.Time, b.N)
			collected := make(chan struct{})
			go func() {
				defer close(collected)
				for n := 0; n < b.N; n++ {
					mt, ok := <-mts
					if !ok {
						return
					}
					var i int
					fmt.Sscanf(mt.Text, "Confirmed. %d", &i)
					arrived[i] = mt.Time
				}
			}()
			s := smpp.NewSender(o, []*smpp.Link{l}, zerolog.Nop())
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			done := make(chan error, 1)
			go func() { done <- s.Run(ctx) }()

			enqueued := make([]time.Time, b.N)
			var next atomic.Int64
			const producers = 8
			var interval time.Duration
			if rate > 0 {
				interval = time.Duration(producers) * time.Second / time.Duration(rate)
			}
			m.stmts.Store(0)
			m.ops.Store(0)
			stopProfile := profile()
			m.cpu = cpuTime()
			b.ResetTimer()
			start := time.Now()
			var wg sync.WaitGroup
			for p := range producers {
				wg.Go(func() {
					due := start.Add(time.Duration(p) * interval / producers)
					for i := int(next.Add(1) - 1); i < b.N; i = int(next.Add(1) - 1) {
						if interval > 0 {
							time.Sleep(time.Until(due))
							due = due.Add(interval)
						}
						err := db.Write(context.Background(), func(tx store.Tx) error {
							_, err := o.Enqueue(context.Background(), tx, outbox.Message{Kind: outbox.KindSMS,
								To: fmt.Sprintf("2547%08d", i), From: shortcode, RequestReceipt: true,
								Text: fmt.Sprintf("Confirmed. %d PAYAAAAAAA KES 1,500.00 paid to Mama Mboga.", i)})
							return err
						})
						if err != nil {
							b.Error(err)
							return
						}
						enqueued[i] = time.Now()
						o.Kick()
					}
				})
			}
			wg.Wait()
			waitDelivered(b, o, b.N)
			elapsed := time.Since(start)
			b.StopTimer()
			cpu := cpuTime() - m.cpu
			stopProfile()
			stmts, ops := m.stmts.Load(), m.ops.Load()
			<-collected
			cancel()
			<-done
			lat := make([]time.Duration, 0, b.N)
			for i := range b.N {
				if !arrived[i].IsZero() {
					lat = append(lat, max(arrived[i].Sub(enqueued[i]), 0))
				}
			}
			slices.Sort(lat)
			n := float64(b.N)
			b.ReportMetric(n/elapsed.Seconds(), "msg/s")
			b.ReportMetric(float64(cpu.Microseconds())/n, "cpu-µs/msg")
			b.ReportMetric(float64(stmts)/n, "stmts/msg")
			b.ReportMetric(float64(ops)/n, "ops/msg")
			if len(lat) > 0 {
				b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
				b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
			}
		})
	}
}
