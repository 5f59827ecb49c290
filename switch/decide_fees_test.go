package payswitch

import (
	"strings"
	"testing"

	"github.com/payswitch/payswitch/ledger"
)

// stepTariff prices transfers and withdrawals by two bands, as config's tariff does:
// up to KES 100 free (transfer) or KES 11 (withdrawal), then KES 7 or KES 29, and
// nothing past KES 1,000.
type stepTariff struct{}

func (stepTariff) Fee(typ string, amount int64) (int64, bool) {
	bands := map[string][2]int64{"transfer": {0, 700}, "withdrawal": {1100, 2900}, "agent_commission": {500, 1400}}
	b, ok := bands[typ]
	switch {
	case !ok:
		return 0, true
	case amount > 100000:
		return 0, false
	case amount <= 10000:
		return b[0], true
	}
	return b[1], true
}

func TestDecideFee(t *testing.T) {
	r := testRules(t)
	if fee, ok := r.fee(TransferPayment, 50000); fee != 0 || !ok {
		t.Fatalf("no tariff: %d %v", fee, ok)
	}
	r.cfg.Tariff = stepTariff{}
	for _, c := range []struct {
		typ    PaymentType
		amount int64
		fee    int64
		ok     bool
	}{
		{TransferPayment, 10000, 0, true},
		{TransferPayment, 10001, 700, true},
		{WithdrawalPayment, 100, 1100, true},
		{WithdrawalPayment, 100000, 2900, true},
		{MerchantPayment, 100000, 0, true},
		{TransferPayment, 100001, 0, false},
	} {
		if fee, ok := r.fee(c.typ, c.amount); fee != c.fee || ok != c.ok {
			t.Errorf("fee(%s, %d) = %d, %v; want %d, %v", c.typ, c.amount, fee, ok, c.fee, c.ok)
		}
	}
	if c := r.commission(50000); c != 1400 {
		t.Errorf("commission %d", c)
	}
	if c := r.commission(200000); c != 0 {
		t.Errorf("commission past the bands %d", c)
	}
}

func TestWithFeeKeys(t *testing.T) {
	free, paid := &Payment{}, &Payment{Fee: 700}
	for _, c := range []struct {
		key  string
		p    *Payment
		want string
	}{
		{"otp", free, "otp"}, {"otp", paid, "otp_fee"}, {"receipt_items", paid, "receipt_items_fee"},
		{"receipt_topup", paid, "receipt_topup"}, // no variant: the plain text
		{"otp", nil, "otp"},
	} {
		if got := withFee(c.key, c.p); got != c.want {
			t.Errorf("withFee(%q, fee %v) = %q, want %q", c.key, c.p, got, c.want)
		}
	}
}

// TestDecideRequestFees: the tariff's refusals and limits in the request decision; the
// fee itself was priced by the draft and the funds check is the hold's (holdResult).
func TestDecideRequestFees(t *testing.T) {
	r := testRules(t)
	r.cfg.Tariff = stepTariff{}
	payer := "254700000001"
	snap := func(typ PaymentType, amount, spent int64) requestSnapshot {
		d := drafted()
		d.p.Type, d.p.Amount = typ, amount
		d.p.Fee, _ = r.fee(typ, amount)
		return requestSnapshot{Now: decideNow, ReplyTo: payer, Draft: d, Spent: spent, PayerStatus: ledger.Active,
			Request: Request{Channel: ChannelSMS, Type: typ, Payer: payer, Recipient: "0700000777", Amount: amount}}
	}
	// Past the tariff's last band: refused as over the limit, nothing held.
	d := r.request(snap(TransferPayment, 100001, 0))
	if d.Outcome.Problem != ProblemAboveMax || d.Step != noStep || d.Insert {
		t.Fatalf("past the tariff: %+v", d.Outcome)
	}
	// The daily limit counts the amount, not the fee: exactly up to it passes.
	if d := r.request(snap(TransferPayment, 50000, r.cfg.DailyMax-50000)); d.Step != holdStep {
		t.Fatalf("amount up to the daily limit, fee on top: %+v", d.Outcome)
	}
	// The hold's refusal (amount + fee above what is available) is insufficient funds.
	s := snap(WithdrawalPayment, 50000, 0)
	s.Hold = holdResult{asked: true, insufficient: true, available: 51000}
	if d := r.request(s); d.Outcome.Problem != ProblemInsufficientFunds || !strings.Contains(d.Outcome.Text, "KES 510.00") {
		t.Fatalf("funds: %+v", d.Outcome)
	}
	// Made: the payment carries its fee, fixed.
	s.Hold = holdResult{asked: true}
	if d := r.request(s); !d.Insert || d.Payment.Fee != 2900 {
		t.Fatalf("started: %+v", d.Payment)
	}
}

func TestDecideWithdrawalPayee(t *testing.T) {
	r := testRules(t)
	req := Request{Type: WithdrawalPayment, Payer: "254700000001", Recipient: "0700000777", Amount: 50000}
	agent := ledger.Account{ID: "ACAGENT", Type: ledger.Agent, Name: "Kamau", MSISDN: "254700000777"}
	for _, c := range []struct {
		name  string
		acct  ledger.Account
		want  Problem
		payee string
	}{
		{"an agent", agent, ProblemNone, "ACAGENT"},
		{"a wallet is not an agent", ledger.Account{ID: "ACW", Type: ledger.Wallet, MSISDN: "254700000777"}, ProblemNotAgent, ""},
		{"no account", ledger.Account{}, ProblemNotAgent, ""},
	} {
		p := &Payment{}
		got, vars, _ := r.payee(req, payeeFacts{to: "254700000777", account: c.acct}, p)
		if got != c.want || p.PayeeAccount != c.payee {
			t.Errorf("%s: %q %q", c.name, got, p.PayeeAccount)
		}
		if got == ProblemNotAgent && vars["number"] != "2547****777" {
			t.Errorf("%s: vars %v", c.name, vars)
		}
	}
	if _, problem := r.recipient(Request{Type: WithdrawalPayment, Recipient: "0700000001"}, "254700000001"); problem != ProblemSelfPayment {
		t.Errorf("a withdrawal at one's own number: %q", problem)
	}
}

// TestDecideRequestedFee: a merchant's request confirmed checks amount + fee against
// what is available, and completes with the fee on the payment (the applier books it).
func TestDecideRequestedFee(t *testing.T) {
	r := testRules(t)
	p := waitingPayment()
	p.State, p.Fee = StateRequested, 300
	funds := func(available int64) requestFunds {
		return requestFunds{Payer: ledger.Account{Status: ledger.Active, Balance: ledger.Balance{Available: available}},
			Payee: ledger.Account{Status: ledger.Active}}
	}
	if d := r.completeRequest(p, ChannelSMS, nil, funds(15299), decideNow); d.Outcome.Problem != ProblemInsufficientFunds || d.Transfer != nil {
		t.Fatalf("one cent short of amount + fee: %+v", d.Outcome)
	}
	d := r.completeRequest(p, ChannelSMS, nil, funds(15300), decideNow)
	if d.Outcome.Problem != ProblemNone || d.Transfer == nil || d.Transfer.Amount != 15000 {
		t.Fatalf("amount + fee available: %+v %+v", d.Outcome, d.Transfer)
	}
	if d.Messages[0].Key != "receipt_fee" {
		t.Fatalf("receipt key %q", d.Messages[0].Key)
	}
}

func TestParseWithdraw(t *testing.T) {
	for in, want := range map[string]Command{
		"WITHDRAW 0712345678 500":   {Kind: CmdWithdraw, MSISDN: "0712345678", Amount: 50000},
		"withdraw  0712345678 1.5 ": {Kind: CmdWithdraw, MSISDN: "0712345678", Amount: 150},
		"WITHDRAW 0712345678":       {Kind: CmdWithdraw, Problem: ProblemUsageWithdraw},
		"WITHDRAW 0712345678 abc":   {Kind: CmdWithdraw, Problem: ProblemBadAmount},
		"HELP withdraw":             {Kind: CmdHelp, Problem: ProblemUsageWithdraw},
	} {
		if got := ParseCommand(in, 6); got != want {
			t.Errorf("ParseCommand(%q) = %+v, want %+v", in, got, want)
		}
	}
}
