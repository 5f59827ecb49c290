package payswitch_test

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/payswitch/payswitch/internal/pgtest"
	"github.com/payswitch/payswitch/internal/switchtest"
	"github.com/payswitch/payswitch/ledger"
	"github.com/payswitch/payswitch/otp"
	"github.com/payswitch/payswitch/outbox"
	"github.com/payswitch/payswitch/store"

	. "github.com/payswitch/payswitch/switch"
)

// BenchmarkPayNodes drives complete payments (PAY by SMS, the code read from the queued
// SMS, the reply with it) from many phones at once, as BenchmarkPaymentFlow does, on
// SQLite (durable commits), on PostgreSQL with one node, and on PostgreSQL with two
// nodes (two store.DBs, each phone's payments on one of them). The PostgreSQL server is
// pgtest's (no fsync: set PAYSWITCH_PGTEST_DURABLE=1 for a durable one), on the same
// machine as the client, so the figures compare the engine's work per driver more than
// they measure a deployment.
func BenchmarkPayNodes(b *testing.B) {
	b.Run("sqlite", func(b *testing.B) {
		var statements atomic.Int64
		db, err := store.Open(filepath.Join(b.TempDir(), "bench.db"), store.Options{OnStatement: countInto(&statements)}, switchtest.Schemas...)
		if err != nil {
			b.Fatal(err)
		}
		defer db.Close()
		benchPay(b, []*store.DB{db}, 64, &statements)
	})
	for _, nodes := range []int{1, 2} {
		b.Run(fmt.Sprintf("postgres-%d", nodes), func(b *testing.B) {
			url := pgtest.URL(b)
			var statements atomic.Int64
			dbs := make([]*store.DB, nodes)
			for i := range dbs {
				db, err := store.OpenPostgres(context.Background(), url, store.Options{OnStatement: countInto(&statements)}, switchtest.Schemas...)
				if err != nil {
					b.Fatal(err)
				}
				defer db.Close()
				dbs[i] = db
			}
			benchPay(b, dbs, 64, &statements)
		})
	}
}

// countInto is an OnStatement that counts statements in n.
func countInto(n *atomic.Int64) func(string) { return func(string) { n.Add(1) } }

// benchPay runs b.N payments from phones phones, phone i's on the engine of
// dbs[i%len(dbs)], and reports payments/s and CPU-µs per payment; with statements (the
// store's OnStatement count), statements per payment too.
func benchPay(b *testing.B, dbs []*store.DB, phones int, statements *atomic.Int64) {
	ctx := context.Background()
	engines := make([]*Engine, len(dbs))
	outboxes := make([]*outbox.Outbox, len(dbs))
	for i, db := range dbs {
		iss, _ := otp.NewIssuer(testSecret, otp.Config{})
		outboxes[i], _ = outbox.NewSealed(db, nil, testSecret)
		e, err := New(Config{Currency: "KES", Shortcode: "22333", CountryCode: "254"},
			Deps{DB: db, Ledger: ledger.New(db, nil), OTP: iss, Outbox: outboxes[i], Log: zerolog.Nop()})
		if err != nil {
			b.Fatal(err)
		}
		engines[i] = e
	}
	e := engines[0]
	if _, err := e.OpenAccount(ctx, OpenAccount{Type: ledger.Merchant, Name: "Shop", Code: "55501"}); err != nil {
		b.Fatal(err)
	}
	nums := make([]string, phones)
	for i := range nums {
		nums[i] = fmt.Sprintf("2547%08d", i)
		a, err := e.OpenAccount(ctx, OpenAccount{Type: ledger.Wallet, Name: "P", MSISDN: nums[i]})
		if err != nil {
			b.Fatal(err)
		}
		if _, err := e.Deposit(ctx, Deposit{Account: a.ID, Amount: 1 << 40, Reference: "seed-" + nums[i]}); err != nil {
			b.Fatal(err)
		}
	}
	var next, done atomic.Int64
	var wg sync.WaitGroup
	b.ResetTimer()
	if statements != nil {
		statements.Store(0)
	}
	start, cpu := time.Now(), cpuTime()
	for i, n := range nums {
		e, ob := engines[i%len(engines)], outboxes[i%len(engines)]
		wg.Add(1)
		go func() {
			defer wg.Done()
			for next.Add(1) <= int64(b.N) {
				if err := e.HandleSMS(ctx, n, "PAY 55501 10"); err != nil {
					b.Error(err)
					return
				}
				ms, err := ob.List(ctx, n, 1)
				if err != nil || len(ms) == 0 || ms[0].Purpose != "otp" {
					b.Errorf("no code for %s: %v", n, err)
					return
				}
				if err := e.HandleSMS(ctx, n, sixDigits(ms[0].Text)); err != nil {
					b.Error(err)
					return
				}
				done.Add(1)
			}
		}()
	}
	wg.Wait()
	b.StopTimer()
	b.ReportMetric(float64(done.Load())/time.Since(start).Seconds(), "payments/s")
	b.ReportMetric(float64((cpuTime()-cpu).Microseconds())/float64(max(done.Load(), 1)), "cpu-µs/payment")
	if statements != nil {
		b.ReportMetric(float64(statements.Load())/float64(max(done.Load(), 1)), "statements/payment")
	}
}
