package payswitch

import (
	"strings"
	"testing"

	"github.com/payswitch/payswitch/ledger"
)

func TestDecideStop(t *testing.T) {
	r := testRules(t)
	base := func() stopSnapshot {
		return stopSnapshot{Channel: ChannelSMS, ReplyTo: "254700000001", Number: "254700000001", Code: "55501", Stop: true,
			Payer:    &ledger.Account{ID: "ACPAYER", Type: ledger.Wallet},
			Merchant: &ledger.Account{ID: "ACSHOP", Type: ledger.Merchant, Name: "Mama Mboga", Code: "55501"}}
	}
	cases := []struct {
		name    string
		snap    func(s *stopSnapshot)
		problem Problem
		text    string
		stop    string // the change stored: "stop", "start" or ""
		reply   bool
	}{
		{name: "STOP records the refusal", text: "Mama Mboga (55501) can no longer send you requests to pay. Reply START 55501",
			stop: "stop", reply: true},
		{name: "STOP again changes nothing and says the same", snap: func(s *stopSnapshot) { s.Stopped, s.Stops = true, 1 },
			text: "can no longer send you requests", reply: true},
		{name: "START ends it", snap: func(s *stopSnapshot) { s.Stop, s.Stopped, s.Stops = false, true, 1 },
			text: "can send you requests to pay again", stop: "start", reply: true},
		{name: "START without a STOP changes nothing", snap: func(s *stopSnapshot) { s.Stop = false },
			text: "can send you requests to pay again", reply: true},
		{name: "a number without an account", snap: func(s *stopSnapshot) { s.Payer = nil }, problem: ProblemNoAccount, reply: true},
		{name: "an unknown merchant", snap: func(s *stopSnapshot) { s.Merchant, s.Code = nil, "55599" },
			problem: ProblemUnknownMerchant, text: "no merchant 55599", reply: true},
		{name: "a code that is no merchant's", snap: func(s *stopSnapshot) { s.Merchant.Type = ledger.Agent },
			problem: ProblemUnknownMerchant, reply: true},
		{name: "the cap", snap: func(s *stopSnapshot) { s.Stops = maxStopsPerNumber }, problem: ProblemStopLimit,
			text: "100 merchants", reply: true},
		{name: "at the cap, a STOP already made is answered", snap: func(s *stopSnapshot) { s.Stopped, s.Stops = true, maxStopsPerNumber },
			text: "can no longer send you requests", reply: true},
		{name: "at the cap, START still works", snap: func(s *stopSnapshot) { s.Stop, s.Stopped, s.Stops = false, true, maxStopsPerNumber },
			stop: "start", text: "again", reply: true},
		{name: "by USSD no SMS", snap: func(s *stopSnapshot) { s.Channel = ChannelUSSD }, stop: "stop", text: "no longer"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := base()
			if c.snap != nil {
				c.snap(&s)
			}
			d := r.stopRequests(s)
			if d.Outcome.Problem != c.problem || !strings.Contains(d.Outcome.Text, c.text) {
				t.Fatalf("outcome %q %q; want %q with %q", d.Outcome.Problem, d.Outcome.Text, c.problem, c.text)
			}
			stop := ""
			if d.Stop != nil {
				stop = "start"
				if d.Stop.Stopped {
					stop = "stop"
				}
				if d.Stop.MSISDN != "254700000001" || d.Stop.Merchant != "ACSHOP" {
					t.Errorf("stored %+v", d.Stop)
				}
			}
			if stop != c.stop {
				t.Errorf("stored %q, want %q", stop, c.stop)
			}
			if got := len(d.Messages) == 1 && d.Messages[0].Text == d.Outcome.Text; got != c.reply || len(d.Messages) > 1 {
				t.Errorf("messages %+v, want the answer by SMS: %v", d.Messages, c.reply)
			}
		})
	}
}
