package main

import (
	"crypto/hmac"
	"crypto/sha256"

	"github.com/payswitch/payswitch/config"
	payswitch "github.com/payswitch/payswitch/switch"
)

// engineTiers is config's tier table (contract section 14) as the engine takes it, each
// tier with the global limits filled in where it leaves them.
func engineTiers(cfg *config.Config) [3]payswitch.Tier {
	var out [3]payswitch.Tier
	for i := range out {
		t, _ := cfg.TierOf(i)
		out[i] = payswitch.Tier{MaxBalance: t.MaxBalance, MaxPayment: t.MaxPayment, DailyMax: t.DailyMax}
	}
	return out
}

// engineTariff is config's tariff, or nil when it prices nothing.
func engineTariff(cfg *config.Config) payswitch.Tariff {
	if len(cfg.Tariff) == 0 {
		return nil
	}
	return cfg
}

// idNumberKey derives the key of id numbers' digests from the switch's secret, under a
// label of its own, so that one secret never serves two purposes.
func idNumberKey(secret []byte) []byte {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte("payswitch id number digest v1"))
	return m.Sum(nil)
}
