package payswitch

import "errors"

// Refusals of a merchant's request to pay (contract section 10) that the API answers
// with their own status: 403 payer_stopped and 429 rate_limited.
var (
	// ErrPayerStopped: the number asked not to get requests from this merchant.
	ErrPayerStopped = errors.New("payswitch: the number refused requests from this merchant")
	// ErrRateLimited: the merchant or the number has had too many requests lately.
	ErrRateLimited = errors.New("payswitch: too many requests")
)
