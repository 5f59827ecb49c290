package payswitch

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
)

// The types of contract section 14 (tiers, fees, withdrawals, locks, risk) that several
// parts of the engine share.

// WithdrawalPayment is a cash-out at an agent (WITHDRAW <agent number> <amount>): the
// wallet pays amount + fee, the agent's float is credited the amount.
const WithdrawalPayment PaymentType = "withdrawal"

// The KYC tiers of contract section 14. A wallet without a row in wallet_kyc is at
// DefaultTier.
const (
	TierUnregistered = 0
	TierBasic        = 1
	TierFull         = 2
	DefaultTier      = TierBasic
)

// Tier is one tier's limits in minor units; 0 MaxBalance is no cap. The engine's
// Config.Tiers has them with the global limits already filled in (config.TierOf).
type Tier struct {
	MaxBalance int64
	MaxPayment int64
	DailyMax   int64
}

// Tariff prices a payment: the fee its payer pays on top of amount, by payment type
// (transfer, withdrawal, merchant_payment) and, as "agent_commission", what an agent
// earns per withdrawal. ok is false for an amount past the last band. *config.Config
// has it.
type Tariff interface {
	Fee(typ string, amount int64) (fee int64, ok bool)
}

// The risk grades of a payment request (contract section 14's risk grading).
const (
	RiskLow    = "low"    // may complete without a code, only where frictionless is on
	RiskNormal = "normal" // today's code step
	RiskHigh   = "high"   // stepped up
	RiskBlock  = "block"  // refused with a neutral SMS
)

// Errors of contract section 14, each a clear 4xx or SMS.
var (
	// ErrBalanceCap: the credit would take a wallet past its tier's max_balance.
	ErrBalanceCap = errors.New("payswitch: the wallet would pass its tier's maximum balance")
	// ErrNotAgent: a withdrawal names a number that is not an agent.
	ErrNotAgent = errors.New("payswitch: not an agent")
	// ErrBadIDNumber: an id number that is not 5 to 20 digits.
	ErrBadIDNumber = errors.New("payswitch: an id number is 5 to 20 digits")
	// ErrBadTier: a tier that is not 0, 1 or 2.
	ErrBadTier = errors.New("payswitch: a tier is 0, 1 or 2")
)

// ValidIDNumber reports whether id can be a national id number: 5 to 20 digits, no
// spaces or letters (a phone's keypad and the IVR's DTMF send digits only).
func ValidIDNumber(id string) bool {
	return len(id) >= 5 && len(id) <= 20 && allDigits(id)
}

// idNumberDigest is what the switch keeps of an id number: an HMAC-SHA256 under the
// deployment's id key (Config.IDNumberKey), so that a copy of the database does not
// give the numbers, nor lets them be tested offline without the key. Compare digests
// with hmac.Equal.
func idNumberDigest(key []byte, id string) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte("payswitch id number v1\x00"))
	m.Write([]byte(id))
	return hex.EncodeToString(m.Sum(nil))
}
