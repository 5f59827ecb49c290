package payswitch_test

import (
	"context"
	"testing"
	"time"

	"github.com/payswitch/payswitch/internal/pgtest"
	"github.com/payswitch/payswitch/internal/switchtest"
	payswitch "github.com/payswitch/payswitch/switch"
)

// The expiry sweeper runs on the engine's clock: it expires a payment when the test
// moves the clock past its deadline, and never by the wall clock.
func TestRunExpiresOnTheEnginesClock(t *testing.T) {
	pgtest.Both(t, func(t *testing.T) {
		r := switchtest.New(t, switchtest.Options{Start: time.Date(2026, 11, 21, 9, 0, 0, 0, time.UTC)})
		w := r.Wallet("254700000001", 100000)
		r.Merchant("55501", "Mama Mboga", "")
		ctx, cancel := context.WithCancel(context.Background())
		out, err := r.Engine.Request(ctx, payswitch.Request{Channel: payswitch.ChannelUSSD, Type: payswitch.MerchantPayment,
			Payer: "254700000001", Merchant: "55501", Amount: 15000})
		if err != nil || !out.OK() {
			t.Fatalf("request: %+v %v", out, err)
		}
		done := make(chan error, 1)
		go func() { done <- r.Engine.Run(ctx) }()
		defer func() {
			cancel()
			if err := <-done; err != nil {
				t.Error(err)
			}
		}()

		r.Clock.BlockUntilTimers(1) // the first sweep found nothing due
		if p, _ := r.Engine.Payment(ctx, out.Payment.ID); p.State != payswitch.StatePendingOTP {
			t.Fatalf("before its deadline the payment is %s", p.State)
		}
		r.Clock.Advance(4 * time.Minute)
		r.Clock.BlockUntilTimers(1)
		if p, _ := r.Engine.Payment(ctx, out.Payment.ID); p.State != payswitch.StatePendingOTP {
			t.Fatalf("a minute before its deadline the payment is %s", p.State)
		}
		r.Clock.Advance(time.Minute) // its deadline
		r.Clock.BlockUntilTimers(1)  // the sweep that fired has ended
		if p, _ := r.Engine.Payment(ctx, out.Payment.ID); p.State != payswitch.StateExpired {
			t.Fatalf("after its deadline the payment is %s", p.State)
		}
		if b := r.Balance(w.ID); b.Held != 0 || b.Posted != 100000 {
			t.Fatalf("balance %+v", b)
		}
	})
}
