package config

import (
	"strings"
	"testing"
)

const businessConfig = minimal + `
limits: {min_amount: 1000, max_amount: 15000000, daily_max: 30000000}
tiers:
  "0": {max_balance: 500000, max_payment: 100000, daily_max: 200000}
  "1": {max_balance: 10000000, max_payment: 7000000, daily_max: 14000000}
  "2": {}
tariff:
  transfer: [{up_to: 10000, fee: 0}, {up_to: 100000, fee: 700}, {up_to: 15000000, fee: 1500}]
  withdrawal: [{up_to: 250000, fee: 2900}, {up_to: 15000000, fee: 11000}]
  agent_commission: [{up_to: 250000, fee: 1000}, {up_to: 15000000, fee: 4000}]
`

func TestTiersAndTariff(t *testing.T) {
	c := mustParse(t, businessConfig, nil)
	for _, tc := range []struct {
		tier int
		want Tier
	}{
		{0, Tier{MaxBalance: 500000, MaxPayment: 100000, DailyMax: 200000}},
		{1, Tier{MaxBalance: 10000000, MaxPayment: 7000000, DailyMax: 14000000}},
		{2, Tier{MaxPayment: 15000000, DailyMax: 30000000}}, // the global limits, no balance cap
	} {
		if got, ok := c.TierOf(tc.tier); !ok || got != tc.want {
			t.Errorf("TierOf(%d) = %+v, %v; want %+v", tc.tier, got, ok, tc.want)
		}
	}
	if _, ok := c.TierOf(3); ok {
		t.Error("TierOf(3) exists")
	}
	for _, tc := range []struct {
		typ    string
		amount int64
		fee    int64
		ok     bool
	}{
		{"transfer", 1000, 0, true},
		{"transfer", 10000, 0, true}, // up_to is inclusive
		{"transfer", 10001, 700, true},
		{"transfer", 15000000, 1500, true},
		{"transfer", 15000001, 0, false}, // past the last band
		{"withdrawal", 250000, 2900, true},
		{"withdrawal", 250001, 11000, true},
		{"agent_commission", 5000, 1000, true},
		{"merchant_payment", 5000, 0, true}, // not priced: free
	} {
		fee, ok := c.Fee(tc.typ, tc.amount)
		if fee != tc.fee || ok != tc.ok {
			t.Errorf("Fee(%s, %d) = %d, %v; want %d, %v", tc.typ, tc.amount, fee, ok, tc.fee, tc.ok)
		}
	}
}

func TestTiersAndTariffRefused(t *testing.T) {
	for _, tc := range []struct {
		name, yaml, key, msg string
	}{
		{"unknown tier", `tiers: {"3": {max_payment: 100}}`, "tiers.3", "tiers are"},
		{"tier written oddly", `tiers: {"01": {max_payment: 100}}`, "tiers.01", "tiers are"},
		{"negative limit", `tiers: {"1": {max_balance: -1}}`, "tiers.1.max_balance", "0 (the global limit) or more"},
		{"max payment above the daily max", `tiers: {"1": {max_payment: 300000, daily_max: 200000}}`, "tiers.1.max_payment", "more than the tier's daily_max"},
		{"balance cap below any payment", `tiers: {"0": {max_balance: 10}}`, "tiers.0.max_balance", "below limits.min_amount"},
		{"unknown type", `tariff: {airtime: [{up_to: 15000000, fee: 5}]}`, "tariff.airtime", "must be one of"},
		{"no bands", `tariff: {transfer: []}`, "tariff.transfer", "no bands"},
		{"overlapping bands", `tariff: {transfer: [{up_to: 100000, fee: 5}, {up_to: 50000, fee: 9}, {up_to: 15000000, fee: 10}]}`, "tariff.transfer[1].up_to", "bands overlap"},
		{"same edge twice", `tariff: {transfer: [{up_to: 100000, fee: 5}, {up_to: 100000, fee: 9}, {up_to: 15000000, fee: 10}]}`, "tariff.transfer[1].up_to", "bands overlap"},
		{"gap at the top", `tariff: {transfer: [{up_to: 100000, fee: 5}]}`, "tariff.transfer", "a gap"},
		{"negative fee", `tariff: {transfer: [{up_to: 15000000, fee: -5}]}`, "tariff.transfer[0].fee", "0 or more"},
		{"fee above the band", `tariff: {transfer: [{up_to: 1000, fee: 2000}, {up_to: 15000000, fee: 10}]}`, "tariff.transfer[0].fee", "more than the band's largest amount"},
		{"zero edge", `tariff: {transfer: [{up_to: 0, fee: 0}, {up_to: 15000000, fee: 10}]}`, "tariff.transfer[0].up_to", "more than 0"},
		{"commission above the fee", `tariff: {withdrawal: [{up_to: 15000000, fee: 100}], agent_commission: [{up_to: 15000000, fee: 200}]}`, "tariff.agent_commission", "more than its withdrawal fee"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(minimal+tc.yaml+"\n"), nil)
			if err == nil {
				t.Fatal("accepted")
			}
			if !strings.Contains(err.Error(), tc.key) || !strings.Contains(err.Error(), tc.msg) {
				t.Fatalf("error %q: want key %s and %q", err, tc.key, tc.msg)
			}
		})
	}
}
