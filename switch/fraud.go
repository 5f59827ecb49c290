package payswitch

import (
	"context"
	"errors"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/payswitch/payswitch/ledger"
)

// Fraud sets the controls against the usual attacks on SMS-code payments.
type Fraud struct {
	// WrongCodesLock wrong codes from one number within LockWindow, across payments, lock
	// the number for LockDuration: no new payments, no code attempts. 0 turns it off.
	// The per-payment limit (otp.max_attempts) stops guessing one code; this stops
	// guessing through many payments.
	WrongCodesLock int
	LockWindow     time.Duration
	LockDuration   time.Duration
	// WrongCodesPerOrigin caps the wrong codes that one origin (a callback source, see
	// WithOrigin) counts against a number within LockWindow; its further codes for that
	// number are refused unchecked. 0 means WrongCodesLock - 1: one origin alone never
	// locks a number. No limit while the lock is off.
	WrongCodesPerOrigin int
	// RequestsPerMinute caps the payments one number may start per minute (all
	// channels). 0 turns it off.
	RequestsPerMinute int
	// SIMSwapThreshold: a payment of at least this amount first asks the carrier whether
	// the payer's SIM changed recently (Deps.SIMSwap). 0 with a checker checks every one.
	SIMSwapThreshold int64
	// SIMSwapFreeze, when set, also freezes the payer's account after a recent SIM swap
	// (the step-up: an operator unfreezes it once the owner proved who they are).
	// Otherwise only the payment is refused.
	SIMSwapFreeze bool
	// SIMSwapFailOpen lets payments through when the SIM-swap check cannot be made.
	SIMSwapFailOpen bool
}

// SIMSwap asks a carrier whether a number's SIM card changed recently.
type SIMSwap interface {
	Swapped(ctx context.Context, msisdn string) (bool, error)
}

// More refusals.
const (
	ProblemLocked        Problem = "locked"
	ProblemTooManyTries  Problem = "rate_limited"
	ProblemSIMSwapped    Problem = "sim_swapped"
	ProblemSIMSwapFailed Problem = "sim_swap_unavailable"
)

func init() {
	DefaultTexts["locked"] = "Too many wrong codes from this number. Payments are locked until {until}. " +
		"If you did not try these codes, call customer care."
	DefaultTexts["rate_limited"] = "Too many requests from this number. Please wait a minute and try again."
	DefaultTexts["sim_swapped"] = "For your safety this payment was refused: the SIM card of this number " +
		"changed recently. Visit an agent with your ID."
	DefaultTexts["sim_swap_unavailable"] = "We could not make a security check for this payment. " +
		"Please try again later. Nothing was paid."
}

// limiter hands out per-number request budgets. It lives in memory: losing it in a
// restart only forgives a minute of requests. With several nodes on PostgreSQL each has
// its own, so a number that reaches more than one node gets each node's budget.
type limiter struct {
	perMinute int
	mu        sync.Mutex // guards numbers and swept
	numbers   map[string]*numberBudget
	swept     time.Time
}

type numberBudget struct {
	lim  *rate.Limiter
	seen time.Time
	told bool // refused once this minute already: further refusals are silent
}

// allow reports whether msisdn may start another payment, and whether it should be told
// it may not (once per burst, so that a flood of requests does not become a flood of SMS).
func (l *limiter) allow(msisdn string, now time.Time) (ok, tell bool) {
	if l == nil || l.perMinute <= 0 {
		return true, false
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if now.Sub(l.swept) > time.Minute {
		for n, b := range l.numbers {
			if now.Sub(b.seen) > 2*time.Minute {
				delete(l.numbers, n)
			}
		}
		l.swept = now
	}
	b := l.numbers[msisdn]
	if b == nil {
		b = &numberBudget{lim: rate.NewLimiter(rate.Limit(float64(l.perMinute)/60), l.perMinute)}
		l.numbers[msisdn] = b
	}
	b.seen = now
	if b.lim.AllowN(now, 1) {
		b.told = false
		return true, false
	}
	tell = !b.told
	b.told = true
	return false, tell
}

// checkSIMSwap asks the carrier, outside any transaction, whether payer's SIM changed
// recently, for payments at or above the threshold. It returns the refusal to give, if any.
// unknown reports a check that failed and let the payment go on (fail open), which risk
// grading may step up.
func (e *Engine) checkSIMSwap(ctx context.Context, payer string, amount int64) (refusal Problem, unknown bool) {
	if e.simSwap == nil || amount < e.cfg.Fraud.SIMSwapThreshold {
		return ProblemNone, false
	}
	n, err := e.Normalize(payer)
	if err != nil {
		return ProblemNone, false // no such number: the request is refused for that anyway
	}
	swapped, err := e.simSwap.Swapped(ctx, n)
	switch {
	case err != nil && e.cfg.Fraud.SIMSwapFailOpen:
		e.log.Warn().Err(err).Str("msisdn", Mask(n)).Msg("SIM-swap check failed; allowing the payment (fail open)")
		return ProblemNone, true
	case err != nil:
		e.log.Warn().Err(err).Str("msisdn", Mask(n)).Msg("SIM-swap check failed; refusing the payment")
		return ProblemSIMSwapFailed, false
	case swapped:
		e.simSwaps.Inc()
		e.log.Warn().Str("msisdn", Mask(n)).Str("event", "sim_swapped").Msg("payment refused after a recent SIM swap")
		return ProblemSIMSwapped, false
	}
	return ProblemNone, false
}

// used is how many requests msisdn made in the last minute by its budget (0 when the
// limit is off): what risk grading reads as its requests per minute.
func (l *limiter) used(msisdn string, now time.Time) int {
	if l == nil || l.perMinute <= 0 {
		return 0
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.numbers[msisdn]
	if b == nil {
		return 0
	}
	return max(l.perMinute-int(b.lim.TokensAt(now)), 0)
}

// freezeAfterSwap freezes the account of payer, if it has one (the policy's step-up
// after a recent SIM swap, see Fraud.SIMSwapFreeze).
func (o *op) freezeAfterSwap(payer string) error {
	a, err := o.lt.AccountByMSISDN(o.ctx, payer)
	if errors.Is(err, ledger.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	return o.lt.SetStatus(o.ctx, a.ID, ledger.Frozen)
}
