package config

import "time"

// Escrow shapes guaranteed payments (contract section 11): a payment to a merchant with
// escrow on, or a request to pay with "escrow": true, waits in the escrow account once
// confirmed, until the payer texts RELEASE or DISPUTE, or ReleaseAfter has passed since
// its confirmation.
type Escrow struct {
	// ReleaseAfter is how long after its confirmation a guaranteed payment that nobody
	// released or disputed is released to the merchant; default 168h, at most a year.
	ReleaseAfter time.Duration `yaml:"release_after"`
}

// Bounds of escrow.release_after.
const (
	DefaultEscrowReleaseAfter = 168 * time.Hour
	MaxEscrowReleaseAfter     = 365 * 24 * time.Hour
)

// validateEscrow checks escrow: release_after more than 0 and at most a year.
func (c *Config) validateEscrow(k *checker) {
	if d := c.Escrow.ReleaseAfter; d <= 0 || d > MaxEscrowReleaseAfter {
		k.add("escrow.release_after", "%v: must be more than 0 and at most %v (a year)", d, MaxEscrowReleaseAfter)
	}
}
