package payswitch

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/payswitch/payswitch/otp"
)

// Risk grading (contract section 14): each payment request a payer starts is graded
// low, normal, high or block by a small rule set (config risk), from facts the switch
// has, read in the request's write with one statement (riskFactsQuery). normal is the
// code step; high steps it up: the code lives HighTTL and takes one attempt (its first
// wrong one fails the payment), which keeps every payment on the one SMS channel the
// tests and the audit trail already cover, where a voice call would add a second channel
// that can fail; block refuses with a neutral SMS and holds nothing; low completes
// without a code, but only where Frictionless is on. The grade and the rules that fired
// are kept on the payment (risk, risk_rules) and in the authentication history.

// Risk is the rule set. A zero threshold turns its rule off; a nil *Risk grades nothing
// (every payment normal, nothing recorded).
type Risk struct {
	// Frictionless lets a low payment complete without a code; off, low is normal.
	Frictionless bool
	// HighTTL is how long a high payment's code lives; 0: two minutes (never more than
	// the code's usual life).
	HighTTL time.Duration

	// Low: an amount of at most LowMaxAmount to a payee the payer paid within
	// LowPaidWithin, when nothing else fired.
	LowMaxAmount  int64
	LowPaidWithin time.Duration

	// High: an amount of at least HighAmount; a first payment to a payee (none in the
	// payer's last riskHistory) of at least NewPayeeAmount; a payer's wallet younger
	// than NewNumberAge; WrongCodes wrong codes in the number's current window, or a
	// wrong-code lock within LockWindow; LockAttempts wrong id numbers given by LOCKs
	// for its wallet today; a SIM-swap check that could not be made (fail open); more
	// than RequestsPerMinute payment requests from the number this minute.
	HighAmount        int64
	NewPayeeAmount    int64
	NewNumberAge      time.Duration
	WrongCodes        int
	LockAttempts      int
	SIMSwapUnknown    bool
	RequestsPerMinute int

	// Block: payers' numbers (international form) and merchant codes refused.
	BlockNumbers   []string
	BlockMerchants []string
}

// defaultHighTTL is a high payment's code life when HighTTL is 0.
const defaultHighTTL = 2 * time.Minute

// riskHistory is how many of the payer's latest payments "paid before" looks through,
// so that the fact costs the same for a payer with a long history.
const riskHistory = 200

// The rules that can fire, as recorded on the payment and in the history.
const (
	RuleBlockedNumber   = "blocked_number"
	RuleBlockedMerchant = "blocked_merchant"
	RuleAmount          = "amount"
	RuleNewPayee        = "new_payee"
	RuleNewNumber       = "new_number"
	RuleWrongCodes      = "wrong_codes"
	RuleNumberLocked    = "number_locked"
	RuleLockAttempts    = "lock_attempts"
	RuleSIMSwapUnknown  = "sim_swap_unknown"
	RuleRequestRate     = "requests_per_minute"
	RuleKnownPayee      = "known_payee"
)

// ProblemRiskBlocked refuses a request graded block; its text names no reason.
const ProblemRiskBlocked Problem = "risk_blocked"

func init() {
	DefaultTexts["risk_blocked"] = "Sorry, this payment cannot be made. Nothing was paid. " +
		"For help, call customer care."
}

// riskFacts are what a request is graded on.
type riskFacts struct {
	Payer    string // international form
	Merchant string // the payee's merchant code, or ""
	Amount   int64
	// PaidBefore is when the payer last paid this payee (a completed payment among its
	// last riskHistory); zero: not there.
	PaidBefore time.Time
	Now        time.Time
	// AccountAge is how long the payer's wallet has existed.
	AccountAge time.Duration
	// WrongCodes are the number's wrong codes in its current window; LockedRecently: a
	// wrong-code lock is on or ended within the window.
	WrongCodes     int
	LockedRecently bool
	LockAttempts   int  // wrong id numbers in LOCKs for its wallet in the LOCK window
	SIMSwapUnknown bool // the SIM-swap check failed and the request went on (fail open)
	RequestsMinute int  // the number's payment requests this minute, this one included
}

// grade grades f by rules: block when a block rule fired, high when a high rule did,
// low when only the low rule did, normal otherwise; fired names the rules in the order
// above.
func grade(f riskFacts, rules Risk) (grade string, fired []string) {
	fire := func(on bool, rule string) {
		if on {
			fired = append(fired, rule)
		}
	}
	fire(slices.Contains(rules.BlockNumbers, f.Payer), RuleBlockedNumber)
	fire(f.Merchant != "" && slices.Contains(rules.BlockMerchants, f.Merchant), RuleBlockedMerchant)
	if len(fired) > 0 {
		return RiskBlock, fired
	}
	fire(rules.HighAmount > 0 && f.Amount >= rules.HighAmount, RuleAmount)
	fire(rules.NewPayeeAmount > 0 && f.PaidBefore.IsZero() && f.Amount >= rules.NewPayeeAmount, RuleNewPayee)
	fire(rules.NewNumberAge > 0 && f.AccountAge < rules.NewNumberAge, RuleNewNumber)
	fire(rules.WrongCodes > 0 && f.WrongCodes >= rules.WrongCodes, RuleWrongCodes)
	fire(rules.WrongCodes > 0 && f.LockedRecently, RuleNumberLocked)
	fire(rules.LockAttempts > 0 && f.LockAttempts >= rules.LockAttempts, RuleLockAttempts)
	fire(rules.SIMSwapUnknown && f.SIMSwapUnknown, RuleSIMSwapUnknown)
	fire(rules.RequestsPerMinute > 0 && f.RequestsMinute > rules.RequestsPerMinute, RuleRequestRate)
	if len(fired) > 0 {
		return RiskHigh, fired
	}
	if rules.LowMaxAmount > 0 && f.Amount <= rules.LowMaxAmount && !f.PaidBefore.IsZero() &&
		(rules.LowPaidWithin <= 0 || f.Now.Sub(f.PaidBefore) <= rules.LowPaidWithin) {
		return RiskLow, []string{RuleKnownPayee}
	}
	return RiskNormal, nil
}

// highTTL is the life of a high payment's code: Risk.HighTTL, never more than ttl.
func (r *rules) highTTL() time.Duration {
	d := defaultHighTTL
	if r.cfg.Risk != nil && r.cfg.Risk.HighTTL > 0 {
		d = r.cfg.Risk.HighTTL
	}
	return min(d, r.ttl)
}

// riskFactsQuery reads, for payer ?1 and payee account ?2, in one statement: when the
// payer last completed a payment to the payee among its last riskHistory payments
// (through payments_by_payer), its wrong codes and lock (number_locks) and the wrong id
// numbers LOCKs gave for its wallet (lock_attempts ?3): point look-ups and one bounded
// range.
var riskFactsQuery = fmt.Sprintf(`SELECT
	COALESCE((SELECT max(created_at) FROM (SELECT created_at, payee_account, state FROM payments
		WHERE payer_msisdn = ?1 ORDER BY created_at DESC LIMIT %d) AS recent
		WHERE payee_account = ?2 AND state IN ('completed', 'topup_pending', 'in_escrow')), 0),
	COALESCE(l.window_start, 0), COALESCE(l.wrong_codes, 0), COALESCE(l.locked_until, 0),
	COALESCE(a.window_start, 0), COALESCE(a.count, 0)
	FROM (SELECT 1 AS one) AS facts
		LEFT JOIN number_locks AS l ON l.msisdn = ?1
		LEFT JOIN lock_attempts AS a ON a.subject = ?3`, riskHistory)

// riskFacts reads the facts of the drafted request d inside the write; nil when risk
// grading is off or the request is refused before it is graded anyway.
func (o *op) riskFacts(s requestSnapshot) (*riskFacts, error) {
	d, rk := s.Draft, o.e.cfg.Risk
	if rk == nil || d == nil || d.p == nil || d.payerAcct.ID == "" {
		return nil, nil
	}
	f := &riskFacts{Payer: d.payer, Merchant: d.p.PayeeCode, Amount: d.p.Amount, Now: o.now,
		AccountAge: o.now.Sub(d.payerAcct.CreatedAt), SIMSwapUnknown: s.SIMSwapUnknown, RequestsMinute: s.RequestsMinute}
	return f, o.readRiskFacts(f, d.p.PayeeAccount)
}

// readRiskFacts fills f's facts that the write reads (riskFactsQuery) for f.Payer
// paying payee (an account ID).
func (o *op) readRiskFacts(f *riskFacts, payee string) error {
	var paid, window, until int64
	var lock lockCount
	if err := o.tx.QueryRowContext(o.ctx, riskFactsQuery, f.Payer, payee, lockWalletSubject(f.Payer)).Scan(
		&paid, &window, &f.WrongCodes, &until, &lock.Start, &lock.Count); err != nil {
		return fmt.Errorf("risk facts: %w", err)
	}
	if paid > 0 {
		f.PaidBefore = time.UnixMicro(paid)
	}
	lockWindow := o.e.cfg.Fraud.LockWindow
	if window <= o.now.Add(-lockWindow).UnixMicro() {
		f.WrongCodes = 0 // the window has passed
	}
	f.LockedRecently = until > o.now.Add(-lockWindow).UnixMicro()
	f.LockAttempts = lock.live(o.now)
	return nil
}

// riskBlocked refuses a request graded block: nothing is held or inserted; the history
// keeps the drafted payment's ID, its payer and the rules, the payer a neutral answer.
func (r *rules) riskBlocked(p *Payment, ch Channel, fired []string) Decision {
	return Decision{Outcome: r.refuse(ProblemRiskBlocked, nil, map[string]string{}),
		Auth: []authNote{{PaymentID: p.ID, MSISDN: p.PayerMSISDN, Channel: ch, Event: otp.EventBlocked,
			Detail: riskDetail(RiskBlock, fired)}}}
}

// graded is d, a payment started with the code step, as its grade has it: recorded on
// the payment and in the history; high with a shorter code that takes one attempt (see
// Payment.Risk, issue); low, where frictionless is on, completed at once without a
// code (its funds held and posted in the one write).
func (r *rules) graded(d Decision, dr *draft, risk string, fired []string, ch Channel) Decision {
	p := d.Payment
	p.Risk, p.RiskRules = risk, strings.Join(fired, ",")
	d.Auth[0].Detail = riskDetail(risk, fired)
	switch {
	case risk == RiskHigh:
		p.ExpiresAt = p.CreatedAt.Add(r.highTTL())
		key := "otp"
		if len(p.Items) > 0 {
			key = "otp_buy"
		}
		v := r.vars(p)
		v["minutes"] = strconv.Itoa(int((r.highTTL() + time.Minute - 1) / time.Minute))
		d.Messages = r.sms(p.PayerMSISDN, "otp", p.ID, r.texts.RenderCode(key, v, dr.code.Code, r.digits), true)
	case risk == RiskLow && r.cfg.Risk.Frictionless && !p.Escrow:
		d.Issue, d.Messages, d.Auth, d.Outcome = nil, nil, nil, Outcome{}
		done := r.complete(p, ch, nil)
		done.Also = []Decision{d}
		done.Auth[0].Detail = "no code: " + riskDetail(risk, fired)
		return done
	}
	return d
}

// riskDetail is the history's words of a grade.
func riskDetail(risk string, fired []string) string {
	if len(fired) == 0 {
		return "risk " + risk
	}
	return "risk " + risk + ": " + strings.Join(fired, ",")
}
