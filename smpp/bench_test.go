package smpp_test

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"testing"
	"time"

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
	err := db.Write(context.Background(), func(tx *sql.Tx) error {
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
// time, through the gateway (pin lookup included) to the handler and back.
func BenchmarkGatewayMO(b *testing.B) {
	db, _ := benchStore(b)
	g := startGateway(b, db, smpp.HandlerFuncs{}, nil)
	agg := mustBind(b, g.Addr(), "agg-x", "secret-x")
	b.ResetTimer()
	for range b.N {
		if _, err := agg.submit("254700000001", shortcode, "BAL"); err != nil {
			b.Fatal(err)
		}
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
