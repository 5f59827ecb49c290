package main

import (
	"context"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/payswitch/payswitch/config"
	"github.com/payswitch/payswitch/internal/switchtest"
	"github.com/payswitch/payswitch/outbox"
	"github.com/payswitch/payswitch/smpp"
	"github.com/payswitch/payswitch/store"
	payswitch "github.com/payswitch/payswitch/switch"
	"github.com/payswitch/payswitch/tools/smscsim"
	"github.com/payswitch/payswitch/ussd"
)

// TestUSSDPushWiring pushes a payment waiting for its code to the payer's phone the way
// serve wires it: the real engine, the sender with wireUSSDPush, a link with ussd_push
// to the demo SMSC whose deliver_sm reach moHandler. The phone answers 1 and the code
// from its SMS on the pushed screen, and the payment completes.
func TestUSSDPushWiring(t *testing.T) {
	const alice = "254700000001"
	rig := switchtest.New(t, switchtest.Options{Start: time.Now()})
	rig.Wallet(alice, 100000)
	rig.Merchant("55501", "Mama Mboga", "254700000900")
	log := zerolog.Nop()
	menu, err := ussd.New(rig.Engine, ussd.Config{Now: rig.Clock.Now, Log: log})
	if err != nil {
		t.Fatal(err)
	}
	sim, err := smscsim.Start(smscsim.Config{Accounts: map[string]string{"payswitch": "pw"}, Log: log})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sim.Close() })
	mo := &moHandler{engine: rig.Engine, outbox: rig.Outbox, receipts: codeDeliveries(rig.Engine), ussd: menu, log: log,
		shortcode: "22333", links: map[string]smpp.Target{}}
	link := smpp.NewLink(smpp.LinkConfig{Name: "carrier-a", Address: sim.Addr(), SystemID: "payswitch", Password: "pw",
		EnquireLink: time.Minute, USSDPush: true}, mo, log, nil)
	mo.links["carrier-a"] = link
	link.Start(context.Background())
	t.Cleanup(func() { link.Close() })
	// The sender starts once the link is bound: a message it finds no way to send waits
	// out a retry delay, longer than this test's patience on a loaded machine.
	for deadline := time.Now().Add(10 * time.Second); link.State() != "bound"; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("link never bound")
		}
	}
	sender := smpp.NewSender(rig.Outbox, []*smpp.Link{link}, log)
	wireUSSDPush(sender, menu, []config.Link{{Name: "carrier-a", USSDPush: true}}, log)
	sctx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- sender.Run(sctx) }()
	t.Cleanup(func() {
		stop()
		if err := <-done; err != nil {
			t.Errorf("sender: %v", err)
		}
	})

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	mts, unsubscribe := sim.Subscribe(alice)
	defer unsubscribe()
	// next returns the phone's next SMS (ussd false) or USSD screen (ussd true); the
	// other kind goes past.
	next := func(ussd bool) string {
		t.Helper()
		for {
			select {
			case m := <-mts:
				if (m.USSD != nil) == ussd {
					return m.Text
				}
			case <-ctx.Done():
				t.Fatalf("nothing came (USSD %v)", ussd)
			}
		}
	}
	screen := func(want string) {
		t.Helper()
		if got := next(true); !strings.Contains(got, want) {
			t.Fatalf("screen %q, want %q", got, want)
		}
	}

	out, err := rig.Engine.Request(ctx, payswitch.Request{Channel: payswitch.ChannelSMS, Type: payswitch.MerchantPayment,
		Payer: alice, Merchant: "55501", Amount: 15000})
	if err != nil || out.Payment == nil {
		t.Fatalf("request: %+v %v", out, err)
	}
	id := out.Payment.ID
	code := ""
	for code == "" { // the deposit's notice comes first
		code = regexp.MustCompile(`\b[0-9]{6}\b`).FindString(next(false))
	}
	if err := rig.DB.Write(ctx, func(tx store.Tx) error {
		_, err := rig.Outbox.Enqueue(ctx, tx, outbox.Message{Kind: outbox.KindSMS, To: alice, From: "22333",
			Purpose: outbox.PurposeRequestPush, PaymentID: id, Meta: map[string]string{outbox.MetaPushPayment: id},
			Text: "Mama Mboga (55501) asks KES 150.00, ref " + id + ".\n1. Pay\n2. Refuse", CreatedAt: time.Now()})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	rig.Outbox.Kick()
	screen("1. Pay\n2. Refuse")
	if err := sim.AnswerUSSD(ctx, alice, "1"); err != nil {
		t.Fatal(err)
	}
	screen("Enter the code we sent you by SMS.")
	if err := sim.AnswerUSSD(ctx, alice, code); err != nil {
		t.Fatal(err)
	}
	screen(id)
	if sc, _ := sim.USSDScreen(alice); sc.Open {
		t.Fatalf("the last screen %q still waits", sc.Text)
	}
	p, err := rig.Engine.Payment(ctx, id)
	if err != nil || p.State != payswitch.StateCompleted {
		t.Fatalf("payment %+v %v, want completed", p, err)
	}
}
