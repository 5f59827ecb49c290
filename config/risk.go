package config

import (
	"fmt"
	"time"
)

// Risk is risk grading (contract section 14): the rules that grade each payment request
// low, normal, high or block. A zero threshold turns its rule off; with every rule off
// nothing is graded. The engine's payswitch.Risk says what each rule looks at.
type Risk struct {
	// Frictionless lets a low payment complete without a code; off by default.
	Frictionless bool `yaml:"frictionless"`
	// HighTTL is a high payment's code life (one attempt); 0: 2m; at most otp.ttl.
	HighTTL time.Duration `yaml:"high_ttl"`
	// Low: at most LowMaxAmount to a payee paid within LowPaidWithin.
	LowMaxAmount  int64         `yaml:"low_max_amount"`
	LowPaidWithin time.Duration `yaml:"low_paid_within"`
	// High rules.
	HighAmount        int64         `yaml:"high_amount"`
	NewPayeeAmount    int64         `yaml:"new_payee_amount"`
	NewNumberAge      time.Duration `yaml:"new_number_age"`
	WrongCodes        int           `yaml:"wrong_codes"`
	LockAttempts      int           `yaml:"lock_attempts"`
	SIMSwapUnknown    bool          `yaml:"sim_swap_unknown"`
	RequestsPerMinute int           `yaml:"requests_per_minute"`
	// Block rules: payers' numbers in international form, merchant codes.
	BlockNumbers   []string `yaml:"block_numbers"`
	BlockMerchants []string `yaml:"block_merchants"`
}

// On reports whether any rule is set.
func (r Risk) On() bool {
	return r.Frictionless || r.LowMaxAmount > 0 || r.HighAmount > 0 || r.NewPayeeAmount > 0 || r.NewNumberAge > 0 ||
		r.WrongCodes > 0 || r.LockAttempts > 0 || r.SIMSwapUnknown || r.RequestsPerMinute > 0 ||
		len(r.BlockNumbers) > 0 || len(r.BlockMerchants) > 0
}

// validateRisk checks risk: no negative threshold, a high_ttl within the code's life,
// numbers and merchant codes that can match, and a low rule below the high amount.
func (c *Config) validateRisk(k *checker) {
	r := c.Risk
	for key, n := range map[string]int64{"risk.low_max_amount": r.LowMaxAmount, "risk.high_amount": r.HighAmount,
		"risk.new_payee_amount": r.NewPayeeAmount, "risk.wrong_codes": int64(r.WrongCodes),
		"risk.lock_attempts": int64(r.LockAttempts), "risk.requests_per_minute": int64(r.RequestsPerMinute)} {
		if n < 0 {
			k.add(key, "%d: must be 0 (off) or more", n)
		}
	}
	for key, d := range map[string]time.Duration{"risk.low_paid_within": r.LowPaidWithin, "risk.new_number_age": r.NewNumberAge} {
		if d < 0 {
			k.add(key, "%v: must be 0 (off) or more", d)
		}
	}
	if r.HighTTL < 0 || r.HighTTL > 0 && r.HighTTL < 30*time.Second || r.HighTTL > c.OTP.TTL {
		k.add("risk.high_ttl", "%v: must be 0 (2m) or from 30s to otp.ttl (%v)", r.HighTTL, c.OTP.TTL)
	}
	if r.HighAmount > 0 && r.LowMaxAmount >= r.HighAmount {
		k.add("risk.low_max_amount", "%d: must be below risk.high_amount (%d)", r.LowMaxAmount, r.HighAmount)
	}
	if r.Frictionless && r.LowMaxAmount <= 0 {
		k.add("risk.frictionless", "true without risk.low_max_amount: no payment is ever low")
	}
	for i, n := range r.BlockNumbers {
		k.digits(fmt.Sprintf("risk.block_numbers[%d]", i), n)
	}
	for i, m := range r.BlockMerchants {
		k.digits(fmt.Sprintf("risk.block_merchants[%d]", i), m)
	}
}
