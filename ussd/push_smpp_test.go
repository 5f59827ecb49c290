package ussd

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/payswitch/payswitch/outbox"
	"github.com/payswitch/payswitch/smpp"
	"github.com/payswitch/payswitch/store"
	"github.com/payswitch/payswitch/tools/smscsim"
)

// TestPushOverLoopbackSMPP plays the whole push on the demo SMSC: the engine's push
// message in the outbox, the sender opening the session in the menus and submitting
// the screen over a link with ussd_push, the phone answering it on the SMSC, its
// answers reaching the menus through the link's handler as serve wires it, and the
// engine hearing of the code and of the refusal with the pushed payment's ID.
func TestPushOverLoopbackSMPP(t *testing.T) {
	p := newPushMenu(t)
	sim, err := smscsim.Start(smscsim.Config{Accounts: map[string]string{"payswitch": "pw"}, Log: zerolog.Nop()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sim.Close() })

	var link *smpp.Link
	handler := smpp.HandlerFuncs{MO: func(ctx context.Context, m smpp.MO) error {
		if m.USSD == nil {
			return nil
		}
		reply, end, err := p.HandleSMPP(ctx, m.Link, m.From, m.USSD.ServiceOp, m.USSD.SessionInfo, m.Text)
		if err != nil {
			t.Errorf("ussd: %v", err)
		}
		if reply == "" {
			return nil
		}
		_, err = link.Submit(ctx, smpp.MT{To: m.From, From: m.To, Text: reply,
			USSD: &smpp.USSDInfo{ServiceOp: ReplyOp(end), SessionInfo: m.USSD.SessionInfo}})
		return err
	}}
	link = smpp.NewLink(smpp.LinkConfig{Name: "carrier-a", Address: sim.Addr(), SystemID: "payswitch",
		Password: "pw", EnquireLink: time.Minute, USSDPush: true}, handler, zerolog.Nop(), nil)
	link.Start(context.Background())
	t.Cleanup(func() { link.Close() })

	sender := smpp.NewSender(p.h.Outbox, []*smpp.Link{link}, zerolog.Nop())
	sender.SetPush(p.Menu)
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
	if err := sim.WaitBound(ctx); err != nil {
		t.Fatal(err)
	}
	mts, unsubscribe := sim.Subscribe(alice)
	defer unsubscribe()
	// next is the phone's next USSD screen; SMS (the deposit notices of the wallets)
	// go past.
	next := func(want, op string) smscsim.MT {
		t.Helper()
		for {
			select {
			case m := <-mts:
				if m.USSD == nil {
					continue
				}
				if !strings.HasPrefix(m.Text, want) || m.USSD["ussd_service_op"] != op {
					t.Fatalf("screen %q op %s, want %q op %s", m.Text, m.USSD["ussd_service_op"], want, op)
				}
				return m
			case <-ctx.Done():
				t.Fatalf("no screen, want %q", want)
				return smscsim.MT{}
			}
		}
	}
	answer := func(text string) {
		t.Helper()
		if err := sim.AnswerUSSD(ctx, alice, text); err != nil {
			t.Fatalf("answer %q: %v", text, err)
		}
	}
	queuePush := func(paymentID string) int64 {
		t.Helper()
		var id int64
		if err := p.h.DB.Write(ctx, func(tx store.Tx) error {
			var err error
			id, err = p.h.Outbox.Enqueue(ctx, tx, outbox.Message{Kind: outbox.KindSMS, To: alice, From: "22333",
				Purpose: outbox.PurposeRequestPush, PaymentID: paymentID, Text: pushText,
				Meta:      map[string]string{outbox.MetaPushPayment: paymentID},
				CreatedAt: time.Now()}) // the sender's clock, which judges a push's age
			return err
		}); err != nil {
			t.Fatal(err)
		}
		p.h.Outbox.Kick()
		return id
	}

	id := queuePush(pushID)
	pushed := next(pushText, "02")
	if len(pushed.USSD["its_session_info"]) != 4 || pushed.From != "22333" {
		t.Fatalf("pushed MT %+v", pushed)
	}
	answer("1")
	next("Enter the code we sent you by SMS.", "02")
	answer("000000")
	next("Wrong code. 2 tries left.\nEnter the code we sent you by SMS.", "02")
	answer(rightCode)
	if m := next(pushID+" confirmed.", "11"); m.USSD["its_session_info"][:2] != pushed.USSD["its_session_info"][:2] {
		t.Fatalf("the receipt went in session %s, the push in %s", m.USSD["its_session_info"], pushed.USSD["its_session_info"])
	}
	wantCalls(t, p.engine.called(), "confirm ussd "+alice+" "+pushID+" 000000", "confirm ussd "+alice+" "+pushID+" "+rightCode)
	for {
		m, err := p.h.Outbox.Get(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if m.State == outbox.StateSent {
			if m.Link != "carrier-a" || len(m.MessageIDs) != 1 {
				t.Fatalf("push recorded %+v", m)
			}
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("push never recorded as sent: %+v", m)
		}
		time.Sleep(5 * time.Millisecond)
	}

	queuePush("EFGH123456")
	next(pushText, "02")
	answer("2")
	next("EFGH123456 declined.", "11")
	wantCalls(t, p.engine.called()[2:], "decline ussd "+alice+" EFGH123456")
}
