package main

import (
	"github.com/payswitch/payswitch/config"
	payswitch "github.com/payswitch/payswitch/switch"
)

// engineRisk is config's risk rules as the engine takes them, or nil when none is set
// (nothing is graded).
func engineRisk(r config.Risk) *payswitch.Risk {
	if !r.On() {
		return nil
	}
	return &payswitch.Risk{Frictionless: r.Frictionless, HighTTL: r.HighTTL,
		LowMaxAmount: r.LowMaxAmount, LowPaidWithin: r.LowPaidWithin,
		HighAmount: r.HighAmount, NewPayeeAmount: r.NewPayeeAmount, NewNumberAge: r.NewNumberAge,
		WrongCodes: r.WrongCodes, LockAttempts: r.LockAttempts, SIMSwapUnknown: r.SIMSwapUnknown,
		RequestsPerMinute: r.RequestsPerMinute, BlockNumbers: r.BlockNumbers, BlockMerchants: r.BlockMerchants}
}
