package payswitch

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/payswitch/payswitch/ledger"
)

// drafted is the draft of alice's request to pay KES 150 to Mama Mboga (55501).
func drafted() *draft {
	p := waitingPayment()
	p.ID, p.CreatedAt, p.ExpiresAt = "PAYCCCCCCC", time.Time{}, time.Time{}
	return &draft{payer: "254700000001",
		payerAcct: ledger.Account{ID: "ACPAYER", Type: ledger.Wallet},
		p:         p, text: "PAYCCCCCCC: pay KES 150.00 to Mama Mboga (55501)? Reply with code 123456"}
}

func TestDecideRequest(t *testing.T) {
	r := testRules(t)
	r.cfg.Fraud.SIMSwapFreeze = true
	payer := "254700000001"
	base := func() requestSnapshot {
		return requestSnapshot{Now: decideNow, ReplyTo: payer, Draft: drafted(), PayerStatus: ledger.Active,
			Request: Request{Channel: ChannelUSSD, Type: MerchantPayment, Payer: payer, Merchant: "55501", Amount: 15000}}
	}
	cases := []struct {
		name     string
		snap     func(s *requestSnapshot)
		step     decisionStep
		problem  Problem
		text     string
		messages string
		freeze   bool
	}{
		{name: "a request with everything in order asks for the hold", step: holdStep},
		{name: "the hold made starts the payment", snap: func(s *requestSnapshot) { s.Hold = holdResult{asked: true} },
			messages: "otp"},
		{name: "a closed store's till is refused before the hold", snap: func(s *requestSnapshot) { s.StoreClosed = true },
			problem: ProblemStoreClosed, text: "Mama Mboga (55501) is closed"},
		{name: "rate limited, told by SMS once",
			snap:    func(s *requestSnapshot) { s.Request.Channel, s.RateLimited, s.TellLimited = ChannelSMS, true, true },
			problem: ProblemTooManyTries, messages: "reply"},
		{name: "rate limited again, silent",
			snap:    func(s *requestSnapshot) { s.Request.Channel, s.RateLimited = ChannelSMS, true },
			problem: ProblemTooManyTries},
		{name: "SIM swapped freezes the payer", snap: func(s *requestSnapshot) { s.SIMSwap, s.Draft = ProblemSIMSwapped, nil },
			problem: ProblemSIMSwapped, text: "SIM card", freeze: true},
		{name: "SIM-swap check unavailable", snap: func(s *requestSnapshot) { s.SIMSwap, s.Draft = ProblemSIMSwapFailed, nil },
			problem: ProblemSIMSwapFailed, text: "security check"},
		{name: "no account", snap: func(s *requestSnapshot) { s.Draft.payerAcct = ledger.Account{} }, problem: ProblemNoAccount},
		{name: "a merchant does not pay by phone", snap: func(s *requestSnapshot) { s.Draft.payerAcct.Type = ledger.Merchant },
			problem: ProblemNoAccount},
		{name: "frozen payer", snap: func(s *requestSnapshot) { s.PayerStatus = ledger.Frozen },
			problem: ProblemAccountInactive},
		{name: "locked number", snap: func(s *requestSnapshot) { s.LockedUntil = decideNow.Add(time.Hour).UnixMicro() },
			problem: ProblemLocked, text: "locked until 10:00 UTC"},
		{name: "a lock that ended does not refuse", snap: func(s *requestSnapshot) { s.LockedUntil = decideNow.UnixMicro() },
			step: holdStep},
		{name: "one payment waits at a time", snap: func(s *requestSnapshot) { s.Pending = waitingPayment() },
			problem: ProblemPendingExists, text: "PAYAAAAAAA (KES 150.00 to Mama Mboga (55501)) is waiting"},
		{name: "an overdue waiting payment is expired first",
			snap: func(s *requestSnapshot) { s.Pending = waitingPayment(); s.Now = s.Pending.ExpiresAt }, step: overdueStep},
		{name: "below the minimum", snap: func(s *requestSnapshot) { s.Request.Amount = 99 }, problem: ProblemBelowMin,
			text: "KES 1.00"},
		{name: "above the maximum", snap: func(s *requestSnapshot) { s.Request.Amount = 15000001 }, problem: ProblemAboveMax},
		{name: "past the daily maximum", snap: func(s *requestSnapshot) { s.Spent = 29990000 }, problem: ProblemDailyLimit,
			text: "KES 100.00 left"},
		{name: "up to the daily maximum", snap: func(s *requestSnapshot) { s.Spent = 29985000 }, step: holdStep},
		{name: "unknown payee", snap: func(s *requestSnapshot) {
			s.Draft.payee, s.Draft.payeeVars = ProblemUnknownMerchant, map[string]string{"code": "55599"}
		}, problem: ProblemUnknownMerchant, text: "no merchant 55599"},
		{name: "the amount is refused before the payee", snap: func(s *requestSnapshot) {
			s.Request.Amount, s.Draft.payee = 1, ProblemUnknownMerchant
		}, problem: ProblemBelowMin},
		{name: "insufficient funds", snap: func(s *requestSnapshot) { s.Hold = holdResult{asked: true, insufficient: true, available: 10000} },
			problem: ProblemInsufficientFunds, text: "KES 100.00 available"},
		{name: "payer frozen since the draft", snap: func(s *requestSnapshot) { s.Hold = holdResult{asked: true, inactive: true} },
			problem: ProblemAccountInactive},
		{name: "payee frozen", snap: func(s *requestSnapshot) { s.Hold = holdResult{asked: true, inactive: true, payerActive: true} },
			problem: ProblemPayeeInactive, text: "Mama Mboga (55501) cannot receive"},
		{name: "a refusal by SMS is answered by SMS", snap: func(s *requestSnapshot) {
			s.Request.Channel, s.Pending = ChannelSMS, waitingPayment()
		}, problem: ProblemPendingExists, messages: "reply"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := base()
			if tc.snap != nil {
				tc.snap(&s)
			}
			d := r.request(s)
			if d.Step != tc.step || d.Outcome.Problem != tc.problem || !strings.Contains(d.Outcome.Text, tc.text) ||
				purposes(d.Messages) != tc.messages || (d.FreezePayer != "") != tc.freeze {
				t.Fatalf("step %v, outcome %q %q, messages %s, freeze %q", d.Step, d.Outcome.Problem, d.Outcome.Text,
					purposes(d.Messages), d.FreezePayer)
			}
			started := tc.step == noStep && tc.problem == ProblemNone
			if d.Insert != started || (d.Issue != nil) != started {
				t.Fatalf("insert %v issue %v", d.Insert, d.Issue != nil)
			}
			if started && (!d.Payment.ExpiresAt.Equal(s.Now.Add(r.ttl)) || d.Messages[0].Text != s.Draft.text ||
				d.Auth[0].Event != "issued" || s.Draft.p.ExpiresAt != (time.Time{})) {
				t.Fatalf("started %+v, auth %+v (the draft's payment must stay as drafted)", d.Payment, d.Auth)
			}
		})
	}
}

func TestDecideRequestInvalidType(t *testing.T) {
	r := testRules(t)
	d := drafted()
	d.invalid = ErrInvalid
	got := r.request(requestSnapshot{Now: decideNow, Draft: d, PayerStatus: ledger.Active, Request: Request{Type: "bogus", Amount: 15000}})
	if !errors.Is(got.Err, ErrInvalid) || got.Insert || len(got.Messages) > 0 {
		t.Fatalf("%+v", got)
	}
}

// The overdue payment's expiry gives its amount back to its day, so the request is
// measured against what is left.
func TestDecideRequestOverdueFreesItsDay(t *testing.T) {
	r := testRules(t)
	r.cfg.DailyMax = 20000
	old := waitingPayment()
	s := requestSnapshot{Now: old.ExpiresAt, Draft: drafted(), Pending: old, Spent: 15000, PayerStatus: ledger.Active,
		Request: Request{Channel: ChannelUSSD, Type: MerchantPayment, Amount: 15000}}
	expiry, next := r.overdue(s)
	if expiry.Move != EvExpire || expiry.Payment != old || next.Pending != nil || next.Spent != 0 {
		t.Fatalf("expiry %+v, next pending %v spent %d", expiry, next.Pending, next.Spent)
	}
	if d := r.request(next); d.Step != holdStep {
		t.Fatalf("after the expiry: step %v, %q", d.Step, d.Outcome.Problem)
	}
	// A payment of yesterday counts against yesterday only.
	old.CreatedAt = decideNow.Add(-24 * time.Hour)
	if _, next := r.overdue(s); next.Spent != 15000 {
		t.Fatalf("yesterday's payment changed today's total to %d", next.Spent)
	}
}

func TestDecidePayee(t *testing.T) {
	r := testRules(t)
	payer := "254700000001"
	wallet := ledger.Account{ID: "ACBOB", Type: ledger.Wallet, Name: "Bob", MSISDN: "254700000002"}
	for _, tc := range []struct {
		name     string
		req      Request
		f        payeeFacts
		want     Problem
		clearing bool
	}{
		{"merchant", Request{Type: MerchantPayment, Merchant: "55501"},
			payeeFacts{account: ledger.Account{ID: "ACSHOP", Type: ledger.Merchant, Name: "Shop", Code: "55501"}}, ProblemNone, false},
		{"no such merchant", Request{Type: MerchantPayment, Merchant: "55599"}, payeeFacts{}, ProblemUnknownMerchant, false},
		{"a wallet's number is not a merchant", Request{Type: MerchantPayment, Merchant: "555"}, payeeFacts{account: wallet},
			ProblemUnknownMerchant, false},
		{"transfer", Request{Type: TransferPayment}, payeeFacts{to: wallet.MSISDN, account: wallet}, ProblemNone, false},
		{"no such recipient", Request{Type: TransferPayment}, payeeFacts{to: wallet.MSISDN}, ProblemUnknownRecipient, false},
		{"airtime", Request{Type: AirtimePayment}, payeeFacts{to: payer, carrier: "tel",
			clearing: ledger.Account{ID: "airtime_clearing:tel", Currency: "KES"}}, ProblemNone, false},
		{"airtime through a new carrier", Request{Type: AirtimePayment}, payeeFacts{to: payer, carrier: "tel"}, ProblemNone, true},
		{"airtime nobody sells", Request{Type: AirtimePayment}, payeeFacts{to: payer}, ProblemAirtimeUnavailable, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := &Payment{}
			got, _, clearing := r.payee(tc.req, tc.f, p)
			if got != tc.want || clearing != tc.clearing || (got == ProblemNone) != (p.PayeeAccount != "") {
				t.Fatalf("payee %q clearing %v, payment %+v", got, clearing, p)
			}
		})
	}
	for _, tc := range []struct {
		name string
		req  Request
		to   string
		want Problem
	}{
		{"transfer", Request{Type: TransferPayment, Recipient: "0700000002"}, "254700000002", ProblemNone},
		{"to oneself", Request{Type: TransferPayment, Recipient: "0700000001"}, "", ProblemSelfPayment},
		{"not a number", Request{Type: TransferPayment, Recipient: "07x"}, "", ProblemBadNumber},
		{"airtime for oneself", Request{Type: AirtimePayment}, payer, ProblemNone},
		{"airtime for oneself, named", Request{Type: AirtimePayment, Recipient: "0700000001"}, payer, ProblemNone},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if to, got := r.recipient(tc.req, payer); to != tc.to || got != tc.want {
				t.Fatalf("recipient %q %q", to, got)
			}
		})
	}
}
