package payswitch

import (
	"strings"
	"testing"
	"time"
)

func TestGrade(t *testing.T) {
	rules := Risk{LowMaxAmount: 50000, LowPaidWithin: 30 * 24 * time.Hour, HighAmount: 5000000, NewPayeeAmount: 1000000,
		NewNumberAge: 7 * 24 * time.Hour, WrongCodes: 2, LockAttempts: 1, SIMSwapUnknown: true, RequestsPerMinute: 3,
		BlockNumbers: []string{"254799999999"}, BlockMerchants: []string{"66601"}}
	now := decideNow
	known := now.Add(-24 * time.Hour)
	base := riskFacts{Payer: "254700000001", Merchant: "55501", Amount: 20000, PaidBefore: known, Now: now,
		AccountAge: 365 * 24 * time.Hour, RequestsMinute: 1}
	cases := []struct {
		name  string
		edit  func(f *riskFacts)
		rules func(r *Risk)
		grade string
		fired string
	}{
		{name: "small to a known payee", grade: RiskLow, fired: "known_payee"},
		{name: "known payee long ago", edit: func(f *riskFacts) { f.PaidBefore = now.Add(-60 * 24 * time.Hour) }, grade: RiskNormal},
		{name: "known payee, any time", edit: func(f *riskFacts) { f.PaidBefore = now.Add(-60 * 24 * time.Hour) },
			rules: func(r *Risk) { r.LowPaidWithin = 0 }, grade: RiskLow, fired: "known_payee"},
		{name: "above the low amount", edit: func(f *riskFacts) { f.Amount = 50001 }, grade: RiskNormal},
		{name: "new payee, small", edit: func(f *riskFacts) { f.PaidBefore = time.Time{} }, grade: RiskNormal},
		{name: "new payee, large", edit: func(f *riskFacts) { f.PaidBefore, f.Amount = time.Time{}, 1000000 },
			grade: RiskHigh, fired: "new_payee"},
		{name: "large", edit: func(f *riskFacts) { f.Amount = 5000000 }, grade: RiskHigh, fired: "amount"},
		{name: "new number", edit: func(f *riskFacts) { f.AccountAge = time.Hour }, grade: RiskHigh, fired: "new_number"},
		{name: "wrong codes", edit: func(f *riskFacts) { f.WrongCodes = 2 }, grade: RiskHigh, fired: "wrong_codes"},
		{name: "one wrong code", edit: func(f *riskFacts) { f.WrongCodes = 1 }, grade: RiskLow, fired: "known_payee"},
		{name: "locked lately", edit: func(f *riskFacts) { f.LockedRecently = true }, grade: RiskHigh, fired: "number_locked"},
		{name: "LOCK guesses", edit: func(f *riskFacts) { f.LockAttempts = 1 }, grade: RiskHigh, fired: "lock_attempts"},
		{name: "SIM swap unknown", edit: func(f *riskFacts) { f.SIMSwapUnknown = true }, grade: RiskHigh, fired: "sim_swap_unknown"},
		{name: "SIM swap unknown, rule off", edit: func(f *riskFacts) { f.SIMSwapUnknown = true },
			rules: func(r *Risk) { r.SIMSwapUnknown = false }, grade: RiskLow, fired: "known_payee"},
		{name: "busy minute", edit: func(f *riskFacts) { f.RequestsMinute = 4 }, grade: RiskHigh, fired: "requests_per_minute"},
		{name: "several high", edit: func(f *riskFacts) { f.Amount, f.AccountAge = 6000000, 0 }, grade: RiskHigh,
			fired: "amount,new_number"},
		{name: "blocked number", edit: func(f *riskFacts) { f.Payer = "254799999999"; f.Amount = 6000000 }, grade: RiskBlock,
			fired: "blocked_number"},
		{name: "blocked merchant", edit: func(f *riskFacts) { f.Merchant = "66601" }, grade: RiskBlock, fired: "blocked_merchant"},
		{name: "a transfer has no merchant code", edit: func(f *riskFacts) { f.Merchant = "" }, grade: RiskLow, fired: "known_payee"},
		{name: "rules off", rules: func(r *Risk) { *r = Risk{} }, edit: func(f *riskFacts) { f.Amount, f.AccountAge = 9000000, 0 },
			grade: RiskNormal},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f, r := base, rules
			r.BlockNumbers, r.BlockMerchants = append([]string(nil), rules.BlockNumbers...), append([]string(nil), rules.BlockMerchants...)
			if tc.edit != nil {
				tc.edit(&f)
			}
			if tc.rules != nil {
				tc.rules(&r)
			}
			g, fired := grade(f, r)
			if g != tc.grade || strings.Join(fired, ",") != tc.fired {
				t.Fatalf("grade %s %v, want %s %s", g, fired, tc.grade, tc.fired)
			}
		})
	}
}
