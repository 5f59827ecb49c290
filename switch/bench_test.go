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

	"github.com/payswitch/payswitch/ledger"
	"github.com/payswitch/payswitch/otp"
	"github.com/payswitch/payswitch/outbox"
	"github.com/payswitch/payswitch/store"

	. "github.com/payswitch/payswitch/switch"
)

// BenchmarkPaymentFlow drives complete payments (PAY by SMS, read the code from the
// queued SMS, reply with it) through the engine and the ledger with durable commits
// (synchronous=FULL), from many phones at once as a live switch sees them. No SMPP.
// statements/payment counts what the store's one writer runs for a payment (SAVEPOINT and
// RELEASE included), and cpu-µs/payment the process's CPU time (phones included): on a
// shared machine both say more than payments/s.
func BenchmarkPaymentFlow(b *testing.B) {
	const phones = 256
	var statements atomic.Int64
	count := func(string) { statements.Add(1) }
	db, err := store.Open(filepath.Join(b.TempDir(), "bench.db"), store.Options{OnStatement: count}, ledger.Schema, otp.Schema, outbox.Schema, Schema)
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	iss, _ := otp.NewIssuer(testSecret, otp.Config{})
	ob, _ := outbox.NewSealed(db, nil, testSecret)
	e, err := New(Config{Currency: "KES", Shortcode: "22333", CountryCode: "254"},
		Deps{DB: db, Ledger: ledger.New(db, nil), OTP: iss, Outbox: ob, Log: zerolog.Nop()})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
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
	statements.Store(0)
	start, cpu := time.Now(), cpuTime()
	for _, n := range nums {
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
				code := sixDigits(ms[0].Text)
				if err := e.HandleSMS(ctx, n, code); err != nil {
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
	b.ReportMetric(float64(statements.Load())/float64(max(done.Load(), 1)), "statements/payment")
}

func sixDigits(s string) string {
	m := codeRun.FindStringSubmatch(s)
	if m == nil {
		return ""
	}
	return m[2]
}
