package payswitch

import (
	"strings"
	"testing"
	"time"

	"github.com/payswitch/payswitch/ledger"
	"github.com/payswitch/payswitch/otp"
)

// TestDecideRequestToPayRisk: a merchant's request to pay graded by the risk rules.
func TestDecideRequestToPayRisk(t *testing.T) {
	r := requestRules(t)
	r.cfg.Risk = &Risk{LowMaxAmount: 50000, HighAmount: 1000000, HighTTL: 2 * time.Minute,
		BlockNumbers: []string{"254700000666"}, BlockMerchants: []string{"66601"}}
	base := func() payRequestSnapshot {
		return payRequestSnapshot{Now: decideNow, Draft: payDrafted(),
			Req: payRequest{Type: MerchantPayment, Merchant: "ACSHOP", Payer: "254700000001", Amount: 15000,
				Reference: "INV-7", Key: "request:ACSHOP:INV-7", TTL: 10 * time.Minute},
			Payer:    &ledger.Account{ID: "ACPAYER", Type: ledger.Wallet, Status: ledger.Active},
			Merchant: &ledger.Account{ID: "ACSHOP", Type: ledger.Merchant, Status: ledger.Active},
			Risk: &riskFacts{Payer: "254700000001", Merchant: "55501", Amount: 15000, Now: decideNow,
				AccountAge: 365 * 24 * time.Hour}}
	}
	cases := []struct {
		name    string
		snap    func(s *payRequestSnapshot)
		blocked bool
		risk    string
		rules   string
		expires time.Duration // from now
		valid   string        // in the SMS
		detail  string        // the history's
	}{
		{name: "not graded when risk is off", snap: func(s *payRequestSnapshot) { s.Risk = nil }, risk: "",
			expires: 10 * time.Minute, valid: "10 min", detail: "request to pay"},
		{name: "normal", risk: RiskNormal, expires: 10 * time.Minute, valid: "10 min", detail: "request to pay, risk normal"},
		{name: "low keeps its code", snap: func(s *payRequestSnapshot) { s.Risk.PaidBefore = decideNow.Add(-time.Hour) },
			risk: RiskLow, rules: "known_payee", expires: 10 * time.Minute, valid: "10 min",
			detail: "request to pay, risk low: known_payee"},
		{name: "high: a shorter code", snap: func(s *payRequestSnapshot) { s.Risk.Amount = 2000000 },
			risk: RiskHigh, rules: "amount", expires: 2 * time.Minute, valid: "2 min", detail: "request to pay, risk high: amount"},
		{name: "high with a ttl shorter than high_ttl keeps it", snap: func(s *payRequestSnapshot) {
			s.Risk.Amount, s.Req.TTL = 2000000, time.Minute
		}, risk: RiskHigh, rules: "amount", expires: time.Minute, valid: "10 min", detail: "request to pay, risk high: amount"},
		{name: "a blocked number", snap: func(s *payRequestSnapshot) { s.Risk.Payer = "254700000666" }, blocked: true,
			rules: "blocked_number"},
		{name: "a blocked merchant", snap: func(s *payRequestSnapshot) { s.Risk.Merchant = "66601" }, blocked: true,
			rules: "blocked_merchant"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := base()
			if c.snap != nil {
				c.snap(&s)
			}
			d := r.requestToPay(s)
			if d.Err != nil {
				t.Fatalf("refused: %v", d.Err)
			}
			if c.blocked {
				if d.Outcome.Problem != ProblemRiskBlocked || d.Insert || d.Issue != nil || len(d.Messages) > 0 ||
					len(d.Counts) > 0 || len(d.Auth) != 1 {
					t.Fatalf("decision %+v, want blocked with nothing written but the history", d)
				}
				a := d.Auth[0]
				if a.Event != otp.EventBlocked || a.PaymentID != "PAYRRRRRRR" || a.MSISDN != "254700000001" ||
					a.Channel != ChannelAPI || a.Detail != "request to pay, risk block: "+c.rules {
					t.Fatalf("history %+v", a)
				}
				return
			}
			p := d.Payment
			if !d.Insert || d.Issue == nil || p.Risk != c.risk || p.RiskRules != c.rules ||
				!p.ExpiresAt.Equal(decideNow.Add(c.expires)) {
				t.Fatalf("payment %+v", p)
			}
			if len(d.Auth) != 1 || d.Auth[0].Detail != c.detail {
				t.Fatalf("history %+v, want %q", d.Auth, c.detail)
			}
			if len(d.Messages) != 1 || !strings.Contains(d.Messages[0].Text, "within "+c.valid) {
				t.Fatalf("messages %+v, want valid %s", d.Messages, c.valid)
			}
		})
	}
}
