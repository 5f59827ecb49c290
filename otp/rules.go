package otp

import "time"

// The rules of a code, as pure functions over its stored state: what a check, a resend
// or a reissue decides, with no database, clock or randomness. Issuer's methods read the
// state in the caller's transaction, ask these, and write what they decided.

// CodeState is what the rules look at of a payment's code. A payment without a code
// (never issued, or its row gone) has Exists false.
type CodeState struct {
	Exists     bool
	State      string // "active", "used" or "dead"
	DeadReason string // for a dead code: "exhausted", "expired" or "killed"
	IssuedAt   time.Time
	ExpiresAt  time.Time
	Attempts   int // wrong codes given for the payment so far
	Resends    int // new codes sent after the first
}

// Action is the write a check decided.
type Action int

// The writes of a check.
const (
	NoWrite     Action = iota // the result follows from the state alone
	MarkExpired               // the code's time ran out: it dies, as expired
	MarkUsed                  // the code was right: it is used
	CountWrong                // a wrong code: one more attempt, and dead once they reach the limit
)

// Judge decides a check of a code against s at now. right reports whether the code
// given is the one issued; it is asked only of a live code within its time, so a dead or
// expired code is judged without comparing (and so reveals nothing of the code). For
// CountWrong the Result is what follows if the stored attempts are s.Attempts; the
// Issuer counts from what is stored (AfterWrong), which is the same on the store's
// single writer.
func (c Config) Judge(s CodeState, now time.Time, right func() bool) (Result, Action) {
	switch {
	case !s.Exists:
		return Result{Missing: true}, NoWrite
	case s.State == "used":
		return Result{Used: true}, NoWrite
	case s.State == "dead" && s.DeadReason == "exhausted":
		return Result{Exhausted: true}, NoWrite
	case s.State == "dead" && s.DeadReason == "expired":
		return Result{Expired: true}, NoWrite
	case s.State != "active":
		return Result{Missing: true}, NoWrite // killed: the payment was cancelled or expired
	case !now.Before(s.ExpiresAt):
		return Result{Expired: true}, MarkExpired
	case right():
		return Result{OK: true, AttemptsLeft: c.MaxAttempts - s.Attempts}, MarkUsed
	}
	return c.AfterWrong(s.Attempts + 1), CountWrong
}

// AfterWrong is the result of a wrong code that brought the payment's wrong codes to
// attempts: exhausted at MaxAttempts, otherwise the tries left.
func (c Config) AfterWrong(attempts int) Result {
	if attempts >= c.MaxAttempts {
		return Result{Exhausted: true}
	}
	return Result{AttemptsLeft: c.MaxAttempts - attempts}
}

// MayResend says whether a new code may replace s at now: nil, or ErrNoCode (no live
// code: none issued, used or dead; one that merely timed out is still live until
// checked), ErrResendLimit after MaxResends, or ErrResendTooSoon within ResendInterval
// of the last code. undeliverable is a reissue because the SMSC could not deliver the
// last code: the user never saw it, so the interval does not apply, but the limit does,
// so that a lying carrier cannot make codes without end.
func (c Config) MayResend(s CodeState, now time.Time, undeliverable bool) error {
	switch {
	case !s.Exists || s.State != "active":
		return ErrNoCode
	case s.Resends >= c.MaxResends:
		return ErrResendLimit
	case !undeliverable && now.Before(s.IssuedAt.Add(c.ResendInterval)):
		return ErrResendTooSoon
	}
	return nil
}
