package config

import (
	"strings"
	"testing"
	"time"
)

func TestRiskConfig(t *testing.T) {
	if c := mustParse(t, minimal, nil); c.Risk.On() {
		t.Fatalf("left out: %+v, want no rule", c.Risk)
	}
	c, err := Load("../config.yaml")
	if err != nil {
		t.Fatal(err)
	}
	r := c.Risk
	if !r.On() || r.Frictionless || r.HighTTL != 2*time.Minute || r.LowMaxAmount != 50000 || r.HighAmount != 5000000 ||
		r.NewNumberAge != 0 || r.RequestsPerMinute != 3 {
		t.Fatalf("config.yaml's risk: %+v", r)
	}
	c = mustParse(t, minimal+"risk: {block_numbers: ['254700000001'], block_merchants: ['55501'], frictionless: true, low_max_amount: 100}\n", nil)
	if len(c.Risk.BlockNumbers) != 1 || c.Risk.BlockMerchants[0] != "55501" || !c.Risk.Frictionless {
		t.Fatalf("set: %+v", c.Risk)
	}
	for _, tc := range []struct{ name, yaml, msg string }{
		{"negative amount", "risk: {high_amount: -1}\n", "0 (off) or more"},
		{"negative age", "risk: {new_number_age: -1h}\n", "0 (off) or more"},
		{"high ttl past the code's", "risk: {high_ttl: 6m}\n", "otp.ttl"},
		{"high ttl too short", "risk: {high_ttl: 5s}\n", "from 30s"},
		{"low above high", "risk: {low_max_amount: 500, high_amount: 500}\n", "below risk.high_amount"},
		{"frictionless without low", "risk: {frictionless: true}\n", "no payment is ever low"},
		{"bad number", "risk: {block_numbers: ['+2547 00']}\n", "digits only"},
		{"bad merchant", "risk: {block_merchants: ['shop']}\n", "digits only"},
		{"unknown key", "risk: {high_amout: 1}\n", "unknown key"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(minimal+tc.yaml), nil)
			if err == nil || !strings.Contains(err.Error(), "config: risk.") || !strings.Contains(err.Error(), tc.msg) {
				t.Fatalf("err = %v, want risk.… %s", err, tc.msg)
			}
		})
	}
}
