package payswitch

import (
	"strconv"
	"time"

	"github.com/payswitch/payswitch/ledger"
	"github.com/payswitch/payswitch/otp"

	"github.com/payswitch/payswitch/outbox"
)

// The engine decides, the store applies. Each command that changes a payment has a pure
// decision function (confirm, expire, cancel, resend, code delivery: decide_*.go) that
// takes a snapshot of what the rules look at, as read inside the store's write, and
// returns a Decision: what to persist and what to send, as data. It reads no database,
// no clock and no logger, so its table tests need none. The command's applier (apply.go
// and the command's own file) is the only code that turns a Decision into SQL: it reads
// the snapshot, calls the decision function and writes the effects, in the store's one
// write.

// rules is the configuration the decision functions decide by: the deployment's Config
// and what the engine knows of the codes. It holds no state that changes.
type rules struct {
	cfg            Config
	texts          *Texts
	digits         int
	ttl            time.Duration
	resendInterval time.Duration
}

// decisionStep is a step that a decision needs taken before it can decide, and that only
// another package can take because the state is its own: otp checks and replaces codes,
// the ledger holds funds. The decision asks for it (Decision.Step), the applier takes it
// and calls the decision function again with its result in the snapshot.
type decisionStep int

const (
	noStep        decisionStep = iota
	checkCodeStep              // check the code given against the payment's code
	resendStep                 // a new code, within the resend limits (otp.Resend)
	reissueStep                // a new code because the last one was undeliverable (otp.Reissue)
)

// codeResult is the outcome of a resend or reissue step, fed back into the decision's
// snapshot (a code check's is an otp.Result).
type codeResult struct {
	code    string    // resend, reissue: the new code
	expires time.Time // resend, reissue: the new code's deadline
	err     error     // resend, reissue: otp's refusal (otp.ErrResendLimit, ...)
}

// Decision is what a decision function decided: the answer, and every effect that apply
// writes in the same transaction, in the order of the fields below (the ledger's
// operation first, so that a refusal leaves nothing else written; the messages last,
// with the balances that operation returned), then the after-effects once it is durable.
type Decision struct {
	Outcome Outcome
	// Step, when set, is a step the decision needs taken before it can decide; every
	// other field is then empty but CheckCodes, which names the codes a checkCodeStep
	// checks.
	Step       decisionStep
	CheckCodes []string

	// Also are decisions about other payments that this one entails (a wrong code given
	// while a number has two payments waiting is tried against both), applied first;
	// their Outcomes are not the answer.
	Also []Decision

	// Err, when set, refuses an operator's request (or a request that cannot be served at
	// all) with an error: nothing is written.
	Err error
	// FreezePayer, when set, is the number whose account is frozen (a recent SIM swap).
	FreezePayer string
	// Change, when set, is an operator's change of an account (its status), written to
	// the ledger with a row of the account's history.
	Change *accountChange
	// Tier, when set, is an operator's change of a wallet's KYC tier (kyc.go): its row
	// of wallet_kyc and the rows of its history.
	Tier *tierChange

	Payment *Payment // the payment that the effects below concern
	// Clearing, when set, is the carrier whose airtime clearing account Payment pays
	// into: it is made first if it does not exist yet.
	Clearing string
	// Transfer books a transfer for Payment: before it is inserted (an operator's
	// booking), or when a merchant's request to pay is confirmed (nothing was held). The
	// transfer is recorded on the payment.
	Transfer *ledger.TransferRequest
	// Insert: Payment is new, inserted (with its items) under RequestKey (an operator's
	// or a merchant's reference) if any. AddDaily counts its amount against its payer's
	// day: the day it was made (its funds are already held: holdStep), or DailyAt's.
	Insert     bool
	RequestKey string
	AddDaily   bool
	DailyAt    time.Time
	Issue      *otp.Drawn // store this code, drawn ahead for Payment, as its first
	Post       bool       // post its hold; the transfer is recorded on the payment
	Release    bool       // void its hold, kill its code and give its amount back to its day
	Kill       bool       // kill its code: a request that ended, with nothing held or counted
	// Reverse books a transfer that undoes the payment's (TransferID), under ReverseKey.
	Reverse    bool
	ReverseKey string
	// ReversalRef records an operator's reversal reference on the payment (unique).
	ReversalRef string
	Move        Event  // "" for none
	Reason      string // why it moved (or why a top-up is asked about again), for its history
	// CarrierRef is the carrier's reference for a top-up, kept unless one is recorded.
	CarrierRef string
	// RetryAt, when not zero, is when a top-up without a definite answer is asked about
	// again.
	RetryAt time.Time
	// Deadline, when not zero, is the payment's new expiry (a new code was issued).
	Deadline time.Time
	// ReleaseAt, when not zero, is when the payment, in escrow, is released by itself.
	ReleaseAt time.Time

	// Refund, when set, is a refund of Payment to write (refund.go): its transfer, its
	// row and the payment's refunded, written before Move (out of this list's order),
	// which then says whether it made the payment refunded.
	Refund *refundEffect

	NumberWrong *numberLock  // the number's wrong-code count and lock, to store
	OriginWrong *wrongWindow // the origin's wrong-code count for the number, to store
	Origin      string

	// Counts are requests to pay counted against their windows (request_counts).
	Counts []requestCount
	// Stop records a number's refusal of a merchant's requests (STOP), or its end.
	Stop *requestStop

	// LockCounts are LOCK attempts counted against their windows (lock_attempts).
	LockCounts []lockCount

	Auth []authNote
	// Events are what merchants' systems are told of Payment (EventSink), each with the
	// payment as it is after every change above.
	Events   []string
	Messages []Message

	// After-effects: metrics and logs.
	RateLimited   bool      // refused by the per-number rate limit
	Locked        time.Time // the decision locked the number until then
	OriginLimited int       // the origin reached its limit with this many wrong codes
	KickAirtime   bool      // wake the airtime resolver
}

// authNote is one entry of the authentication history. Never the code itself.
// PaymentID and MSISDN are the Decision's payment's unless set.
type authNote struct {
	PaymentID string
	MSISDN    string
	Channel   Channel
	Event     string
	Detail    string
}

// Message is an SMS or a voice call to queue, as data. Text is rendered by the decision,
// unless its words depend on a balance that only the ledger's operation knows: then Key
// and Vars are rendered by the applier once Balance is filled in.
type Message struct {
	Kind      string // "sms" or outbox.KindCall
	To        string
	From      string
	Purpose   string
	PaymentID string
	Text      string
	Receipt   bool // ask the SMSC for a delivery receipt
	// Meta is channel detail for the sender (a USSD push names its payment).
	Meta map[string]string

	Key     string
	Vars    map[string]string // may be shared with the decision's other messages
	Balance balanceRef        // none when Var is ""
	Answer  bool              // the rendered text is also the Outcome's
}

// balanceRef names a balance, after the decision's ledger operations, that a message
// shows as the placeholder Var.
type balanceRef struct {
	Account   string
	Available bool // the available balance, not the posted one
	Var       string
}

// wrongWindow is a count of wrong codes in a window that started at Start (Unix µs).
type wrongWindow struct {
	Start int64
	Count int
}

// numberLock is a number's row of number_locks: its wrong codes across payments, and
// its lock (Until in Unix µs; past or 0 is none).
type numberLock struct {
	wrongWindow
	Until int64
}

// sms is a text message from the shortcode; none when to is empty.
func (r *rules) sms(to, purpose, paymentID, text string, receipt bool) []Message {
	if to == "" {
		return nil
	}
	return []Message{r.smsMessage(to, purpose, paymentID, text, receipt)}
}

// smsMessage is sms for a caller that knows to is not empty and gathers its messages
// itself (a confirmation's receipt and notice: one slice, not one per message).
func (r *rules) smsMessage(to, purpose, paymentID, text string, receipt bool) Message {
	return Message{Kind: "sms", To: to, From: r.cfg.Shortcode, Purpose: purpose, PaymentID: paymentID,
		Text: text, Receipt: receipt}
}

// call is an outbound voice call; none when voice is off or to is empty.
func (r *rules) call(to, purpose, paymentID, text string) []Message {
	if to == "" || r.cfg.VoiceNumber == "" {
		return nil
	}
	return []Message{{Kind: outbox.KindCall, To: to, From: r.cfg.VoiceNumber, Purpose: purpose, PaymentID: paymentID, Text: text}}
}

// refuse is the Outcome of a refusal: vars nil means p's own placeholders.
func (r *rules) refuse(problem Problem, p *Payment, vars map[string]string) Outcome {
	if vars == nil {
		vars = map[string]string{}
		if p != nil {
			vars = r.vars(p)
		}
	}
	return Outcome{Payment: p, Problem: problem, Text: r.texts.Render(string(problem), vars)}
}

// refuseLocked answers a number whose wrong-code lock is on until until.
func (r *rules) refuseLocked(until, now time.Time) Outcome {
	return r.refuse(ProblemLocked, nil, map[string]string{"until": r.lockTime(until, now)})
}

// lockEnd is when a lock whose locked_until is until (Unix µs) ends, or zero if none is
// on at now (until 0 is no lock) or locks are off.
func (r *rules) lockEnd(until int64, now time.Time) time.Time {
	if r.cfg.Fraud.WrongCodesLock <= 0 || until <= now.UnixMicro() {
		return time.Time{}
	}
	return time.UnixMicro(until)
}

// money writes an amount for people.
func (r *rules) money(minor int64) string { return FormatMoney(r.cfg.Currency, minor) }

// vars are the placeholders every text about p may use.
func (r *rules) vars(p *Payment) map[string]string {
	v := map[string]string{
		"id":        p.ID,
		"amount":    r.money(p.Amount),
		"payee":     p.payeeLabel(),
		"payer":     Mask(p.PayerMSISDN),
		"number":    Mask(p.TargetMSISDN),
		"minutes":   strconv.Itoa(int((r.ttl + time.Minute - 1) / time.Minute)),
		"shortcode": r.cfg.Shortcode,
		"digits":    strconv.Itoa(r.digits),
	}
	if len(p.Items) > 0 {
		v["items"] = itemsText(p.Items)
	}
	if p.Fee > 0 { // the tariff's fee, which the "_fee" texts name (fees.go)
		v["fee"], v["total"] = r.money(p.Fee), r.money(p.Amount+p.Fee)
	}
	return v
}

// lockTime writes when a lock ends for people: the time of day with the zone's
// abbreviation (a bare time would be read in whatever zone the reader is in), and the
// day too when it is not today.
func (r *rules) lockTime(until, now time.Time) string {
	u, n := until.In(r.cfg.Location), now.In(r.cfg.Location)
	s := u.Format("15:04 MST")
	if u.YearDay() != n.YearDay() || u.Year() != n.Year() {
		s += u.Format(" on 02/01")
	}
	return s
}

// startOfDay is midnight of t's business day.
func (r *rules) startOfDay(t time.Time) time.Time {
	l := t.In(r.cfg.Location)
	return time.Date(l.Year(), l.Month(), l.Day(), 0, 0, 0, 0, r.cfg.Location)
}

// replyIfSMS adds to d a refusal's SMS answer. Successful confirmations, codes and
// cancellations already send their own SMS, and so does every refusal that moves its
// payment (failed by wrong codes, expired, a request that found too little money): the
// payer hears of each once, whatever channel they used.
func (r *rules) replyIfSMS(d Decision, ch Channel, replyTo string) Decision {
	out := d.Outcome
	if ch != ChannelSMS || out.OK() || d.Move != "" {
		return d // a payment that moved told its payer itself
	}
	d.Messages = append(d.Messages, r.sms(replyTo, "reply", idOf(out.Payment), out.Text, false)...)
	return d
}
