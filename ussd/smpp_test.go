package ussd

import (
	"context"
	"encoding/hex"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/payswitch/payswitch/smpp"
	"github.com/payswitch/payswitch/tools/smscsim"
)

func TestHandleSMPP(t *testing.T) {
	h := newHarness(t, nil)
	h.Wallet(alice, 100000)
	h.merchant(till, mama)
	ctx := context.Background()
	si := []byte{0x07, 0x00}

	type step struct {
		op        uint8
		info      []byte
		text      string
		want      string // prefix of the reply; "" for no reply
		wantEnd   bool
		wantError bool
	}
	tests := []struct {
		name  string
		from  string
		steps []step
	}{
		{"menus", alice, []step{
			{OpPSSRIndication, si, "*384#", "payswitch\n1. Send money", false, false},
			{OpUSSRConfirm, []byte{0x07, 0x02}, "4", "My account", false, false},
			{OpUSSRConfirm, []byte{0x07, 0x04}, "1", "Balance KES 1,000.00.", true, false},
			// The session number is the key; after END the session answers the same.
			{OpUSSRConfirm, []byte{0x07, 0x06}, "1", "Balance KES 1,000.00.", true, false},
		}},
		{"a bad input is retried", alice, []step{
			{OpPSSRIndication, si, "*384#", "payswitch", false, false},
			{OpUSSRConfirm, si, "8", "Invalid choice.", false, false},
			{OpUSSRConfirm, si, "4", "My account", false, false},
		}},
		{"dialled with inputs", alice, []step{
			{OpPSSRIndication, si, "*384*4*1#", "Balance KES 1,000.00.", true, false},
		}},
		{"a new dial starts over", alice, []step{
			{OpPSSRIndication, si, "*384*4#", "My account", false, false},
			{OpPSSRIndication, si, "*384#", "payswitch", false, false},
		}},
		{"another service code shows the menu", alice, []step{
			{OpPSSDIndication, nil, "*999*4*1#", "payswitch", false, false},
		}},
		{"no session info", alice, []step{
			{OpPSSRIndication, nil, "*384#", "payswitch", false, false},
			{OpUSSRConfirm, nil, "4", "My account", false, false},
		}},
		{"an answer without a dial", alice, []step{
			{OpUSSRConfirm, si, "4", "This session has ended.", true, false},
		}},
		{"other operations are not answered", alice, []step{
			{0x13, si, "", "", false, false},
			{0x03, si, "hello", "", false, false},
		}},
		{"a dial with too many inputs", alice, []step{
			{OpPSSRIndication, si, "*384" + strings.Repeat("*1", 20) + "#", "", false, true},
			{OpUSSRConfirm, si, "4", "This session has ended.", true, false},
		}},
		{"a sender that is no number", "hello", []step{
			{OpPSSRIndication, si, "*384#", "", false, true},
		}},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			from := tt.from
			if from == alice {
				// A session per case: the number stays, the session number changes.
				for j := range tt.steps {
					if tt.steps[j].info != nil {
						tt.steps[j].info = []byte{byte(0x10 + i), tt.steps[j].info[1]}
					}
				}
			}
			for j, s := range tt.steps {
				reply, end, err := h.menu.HandleSMPP(ctx, "carrier-a", from, s.op, s.info, s.text)
				if (err != nil) != s.wantError {
					t.Fatalf("step %d: error %v", j, err)
				}
				if s.want == "" && reply != "" || !strings.HasPrefix(reply, s.want) || end != s.wantEnd {
					t.Fatalf("step %d: reply %q end %v, want %q end %v", j, reply, end, s.want, s.wantEnd)
				}
				if len([]rune(reply)) > MaxScreen-4 {
					t.Fatalf("step %d: reply of %d characters", j, len([]rune(reply)))
				}
			}
		})
	}
}

func TestReplyOp(t *testing.T) {
	if ReplyOp(false) != smpp.USSDUSSRRequest || ReplyOp(true) != smpp.USSDPSSRResponse {
		t.Fatalf("ReplyOp: %#x %#x", ReplyOp(false), ReplyOp(true))
	}
	for _, c := range []struct{ ours, theirs uint8 }{
		{OpPSSDIndication, smpp.USSDPSSDIndication}, {OpPSSRIndication, smpp.USSDPSSRIndication},
		{OpUSSRConfirm, smpp.USSDUSSRConfirm},
	} {
		if c.ours != c.theirs {
			t.Fatalf("op %#x differs from smpp's %#x", c.ours, c.theirs)
		}
	}
}

// TestPaymentOverLoopbackSMPP plays a phone on the demo SMSC: its USSD arrives at an
// smpp.Link as deliver_sm with ussd_service_op, the link's handler passes it to
// HandleSMPP and submits the answer with ussd_service_op and the same its_session_info,
// as serve wires it.
func TestPaymentOverLoopbackSMPP(t *testing.T) {
	h := newHarness(t, nil)
	a := h.Wallet(alice, 100000)
	h.Wallet(bob, 0)
	h.merchant(till, mama)

	sim, err := smscsim.Start(smscsim.Config{Accounts: map[string]string{"payswitch": "pw"}, Log: zerolog.Nop()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sim.Close() })

	var link *smpp.Link
	handler := smpp.HandlerFuncs{MO: func(ctx context.Context, m smpp.MO) error {
		if m.USSD == nil {
			return h.Engine.HandleSMS(ctx, m.From, m.Text)
		}
		reply, end, err := h.menu.HandleSMPP(ctx, m.Link, m.From, m.USSD.ServiceOp, m.USSD.SessionInfo, m.Text)
		if err != nil {
			t.Logf("ussd: %v", err)
		}
		if reply == "" {
			return nil
		}
		_, err = link.Submit(ctx, smpp.MT{To: m.From, From: m.To, Text: reply,
			USSD: &smpp.USSDInfo{ServiceOp: ReplyOp(end), SessionInfo: m.USSD.SessionInfo}})
		return err
	}}
	link = smpp.NewLink(smpp.LinkConfig{Name: "carrier-a", Address: sim.Addr(), SystemID: "payswitch",
		Password: "pw", EnquireLink: time.Minute}, handler, zerolog.Nop(), nil)
	link.Start(context.Background())
	t.Cleanup(func() { link.Close() })

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := sim.WaitBound(ctx); err != nil {
		t.Fatal(err)
	}
	mts, stop := sim.Subscribe(alice)
	defer stop()
	next := func(want string) smscsim.MT {
		t.Helper()
		select {
		case m := <-mts:
			if !strings.HasPrefix(m.Text, want) {
				t.Fatalf("screen %q, want %q", m.Text, want)
			}
			return m
		case <-ctx.Done():
			t.Fatalf("no screen, want %q", want)
		}
		return smscsim.MT{}
	}
	send := func(text string, op uint8, seq byte) {
		t.Helper()
		if err := sim.SendUSSD(ctx, alice, "*384#", text, op, []byte{0x2a, seq}); err != nil {
			t.Fatal(err)
		}
	}

	send("*384#", OpPSSRIndication, 0)
	m := next("payswitch\n1. Send money\n2. Pay merchant\n3. Buy airtime\n4. My account\n5. Withdraw cash")
	if m.USSD["ussd_service_op"] != "02" || m.USSD["its_session_info"] != "2a00" || m.From != "*384#" {
		t.Fatalf("menu MT %+v", m)
	}
	send("2", OpUSSRConfirm, 2)
	next("Enter the merchant code")
	send("55501", OpUSSRConfirm, 4)
	next("Enter the amount in KES")
	send("150", OpUSSRConfirm, 6)
	m = next("")
	if !strings.Contains(m.Text, "KES 150.00 to Mama Mboga (55501)") || m.USSD["ussd_service_op"] != "02" {
		t.Fatalf("code prompt %+v", m)
	}
	send(h.code(alice), OpUSSRConfirm, 8)
	m = next("")
	if !strings.Contains(m.Text, "confirmed. KES 150.00 paid") || m.USSD["ussd_service_op"] != hex.EncodeToString([]byte{OpPSSRResponse}) ||
		m.USSD["its_session_info"] != "2a08" {
		t.Fatalf("receipt MT %+v", m)
	}
	if bal := h.Balance(a.ID); bal.Posted != 85000 || bal.Held != 0 {
		t.Fatalf("balance %+v", bal)
	}

	// A payment started over USSD and confirmed by an SMS reply: the next USSD input
	// finds it settled.
	send("*384*1*0700000002*20#", OpPSSRIndication, 0)
	m = next("")
	if !strings.Contains(m.Text, "KES 20.00") {
		t.Fatalf("dialled payment %+v", m)
	}
	if err := sim.SendMO(ctx, alice, "22333", h.code(alice)); err != nil {
		t.Fatal(err)
	}
	for h.Balance(a.ID).Held != 0 { // the SMS goes its own way: wait for it to land
		if ctx.Err() != nil {
			t.Fatal("the SMS with the code did not confirm the payment")
		}
		time.Sleep(10 * time.Millisecond)
	}
	send("0", OpUSSRConfirm, 2)
	m = next("")
	if !strings.Contains(m.Text, "already confirmed") || m.USSD["ussd_service_op"] != "11" {
		t.Fatalf("after the SMS %+v", m)
	}
}
