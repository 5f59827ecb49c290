package config

import (
	"fmt"
	"slices"
	"strconv"
)

// Contract section 14: wallets' tiers and the tariff.

// Tier is the limits of one KYC tier, in minor units. 0 leaves that limit to Limits
// (max_payment, daily_max) or unbounded (max_balance).
type Tier struct {
	MaxBalance int64 `yaml:"max_balance"`
	MaxPayment int64 `yaml:"max_payment"`
	DailyMax   int64 `yaml:"daily_max"`
}

// The tiers of the contract: 0 unregistered, 1 basic, 2 full KYC.
const (
	TierUnregistered = 0
	TierBasic        = 1
	TierFull         = 2
)

// Band is one fee band: an amount up to UpTo (inclusive) pays Fee.
type Band struct {
	UpTo int64 `yaml:"up_to"`
	Fee  int64 `yaml:"fee"`
}

// TariffTypes are the payment types a tariff may price (contract section 14), and
// agent_commission: what an agent earns per withdrawal, paid from the fees account.
var TariffTypes = []string{"transfer", "withdrawal", "merchant_payment", "agent_commission"}

// TierOf returns tier t's limits with the global Limits filled in where the tier leaves
// them at 0; ok is false for a tier that does not exist.
func (c *Config) TierOf(t int) (Tier, bool) {
	if t < TierUnregistered || t > TierFull {
		return Tier{}, false
	}
	tier := c.Tiers[strconv.Itoa(t)]
	if tier.MaxPayment == 0 || tier.MaxPayment > c.Limits.MaxAmount {
		tier.MaxPayment = c.Limits.MaxAmount
	}
	if tier.DailyMax == 0 || tier.DailyMax > c.Limits.DailyMax {
		tier.DailyMax = c.Limits.DailyMax
	}
	return tier, true
}

// Fee is what a payment of typ and amount costs its payer under the tariff (for
// agent_commission: what the agent earns): the fee of the first band whose up_to the
// amount does not pass. A type without bands costs nothing; ok is false for an amount
// past the last band (Validate makes sure that no payment the limits allow is).
func (c *Config) Fee(typ string, amount int64) (fee int64, ok bool) {
	bands, priced := c.Tariff[typ]
	if !priced {
		return 0, true
	}
	i, _ := slices.BinarySearchFunc(bands, amount, func(b Band, a int64) int {
		switch {
		case b.UpTo < a:
			return -1
		case b.UpTo > a:
			return 1
		}
		return 0
	})
	if i == len(bands) {
		return 0, false
	}
	return bands[i].Fee, true
}

// validateTiers checks the tier table: only tiers 0, 1 and 2, no negative limit, a
// max_payment within its daily_max, and a max_balance that holds at least one payment.
func (c *Config) validateTiers(k *checker) {
	for name, t := range c.Tiers {
		key := "tiers." + name
		n, err := strconv.Atoi(name)
		if err != nil || n < TierUnregistered || n > TierFull || strconv.Itoa(n) != name {
			k.add(key, "%q: tiers are \"0\" (unregistered), \"1\" (basic) and \"2\" (full KYC)", name)
			continue
		}
		for _, f := range []struct {
			key string
			v   int64
		}{{"max_balance", t.MaxBalance}, {"max_payment", t.MaxPayment}, {"daily_max", t.DailyMax}} {
			if f.v < 0 {
				k.add(key+"."+f.key, "%d: must be 0 (the global limit) or more", f.v)
			}
		}
		if t.MaxPayment > 0 && t.DailyMax > 0 && t.MaxPayment > t.DailyMax {
			k.add(key+".max_payment", "%d: more than the tier's daily_max (%d)", t.MaxPayment, t.DailyMax)
		}
		if t.MaxBalance > 0 && t.MaxBalance < c.Limits.MinAmount {
			k.add(key+".max_balance", "%d: below limits.min_amount (%d): no payment could ever arrive", t.MaxBalance, c.Limits.MinAmount)
		}
	}
}

// validateTariff checks each type's bands: a known type, up_to strictly ascending (an
// up_to that does not rise would make two bands overlap), no negative fee, no fee above
// its band's amounts, and a last band that reaches limits.max_amount, so that no
// payment the limits allow falls past the tariff (a gap). An agent's commission is
// checked against the withdrawal fee at every band edge of either: the fees account
// must not pay an agent more than the customer paid.
func (c *Config) validateTariff(k *checker) {
	for typ, bands := range c.Tariff {
		key := "tariff." + typ
		if !slices.Contains(TariffTypes, typ) {
			k.add(key, "%q: must be one of %v", typ, TariffTypes)
			continue
		}
		if len(bands) == 0 {
			k.add(key, "no bands: leave the type out to charge nothing")
			continue
		}
		for i, b := range bands {
			bk := fmt.Sprintf("%s[%d]", key, i)
			switch {
			case b.UpTo <= 0:
				k.add(bk+".up_to", "%d: must be more than 0", b.UpTo)
			case i > 0 && b.UpTo <= bands[i-1].UpTo:
				k.add(bk+".up_to", "%d: not above the band before (%d): bands overlap; list them in ascending order", b.UpTo, bands[i-1].UpTo)
			}
			switch {
			case b.Fee < 0:
				k.add(bk+".fee", "%d: must be 0 or more", b.Fee)
			case b.Fee > b.UpTo:
				k.add(bk+".fee", "%d: more than the band's largest amount (%d)", b.Fee, b.UpTo)
			}
		}
		if last := bands[len(bands)-1].UpTo; last < c.Limits.MaxAmount {
			k.add(key, "the last band ends at %d, below limits.max_amount (%d): amounts above it would have no fee (a gap)", last, c.Limits.MaxAmount)
		}
	}
	com, ok := c.Tariff["agent_commission"]
	if !ok {
		return
	}
	var edges []int64
	for _, b := range append(slices.Clone(com), c.Tariff["withdrawal"]...) {
		edges = append(edges, b.UpTo)
	}
	for _, a := range edges {
		commission, ok1 := c.Fee("agent_commission", a)
		fee, ok2 := c.Fee("withdrawal", a)
		if ok1 && ok2 && commission > fee {
			k.add("tariff.agent_commission", "%d on a withdrawal of %d: more than its withdrawal fee (%d)", commission, a, fee)
			return
		}
	}
}
