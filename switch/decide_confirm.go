package payswitch

import (
	"strconv"
	"time"

	"github.com/payswitch/payswitch/otp"
)

// confirmSnapshot is what deciding a code given for a number's waiting payments looks
// at. A number may have two waiting at once: a payment of its own (pending_otp, funds
// held) and a merchant's request to pay (requested, nothing held); a code confirms only
// the one it was issued for.
type confirmSnapshot struct {
	Now      time.Time
	Channel  Channel
	Origin   string // who delivered the code ("" for SMS: the carrier vouches)
	Number   string // the payer's number in international form; "" when it is not one
	ReplyTo  string // where an SMS answer goes
	AskedFor string // the payment a USSD or IVR session names, or ""

	Waiting     *Payment    // the number's own payment waiting for its code, or nil
	Lock        numberLock  // the number's wrong codes and lock
	OriginWrong wrongWindow // the wrong codes Origin counted against the number
	Check       otp.Result  // Waiting's code checked, when Checked
	Checked     bool        // false until the decision asked for the check and it was made
	// Vars are the placeholders of the texts about Waiting (rules.vars), when worked out
	// ahead; nil: the decision works them out.
	Vars map[string]string

	// Request is the number's merchant's request waiting for its code, or nil; its check,
	// its texts' placeholders and, once its code was right, its funds (fundsStep).
	Request        *Payment
	RequestCheck   otp.Result
	RequestChecked bool
	RequestVars    map[string]string
	Funds          *requestFunds
	// Matched is the ID of the waiting payment whose code the code given is, as the
	// applier compared it with both stored codes before any check ("" for neither). When
	// both wait, only that one is checked, and both only when it is neither's.
	Matched string
	// Room is what Waiting's recipient can take, read once its code was right
	// (roomStep: a transfer, with balance caps on); nil until then.
	Room *payeeRoom
}

// confirm decides a code given for a number's waiting payments.
func (r *rules) confirm(s confirmSnapshot) Decision {
	return r.replyIfSMS(r.confirmCode(s), s.Channel, s.ReplyTo)
}

func (r *rules) confirmCode(s confirmSnapshot) Decision {
	own, req := s.Waiting, s.Request
	if s.AskedFor != "" {
		if own != nil && own.ID != s.AskedFor {
			own = nil
		}
		if req != nil && req.ID != s.AskedFor {
			req = nil
		}
	}
	if own == nil && req == nil {
		if s.Waiting == nil && s.Request == nil && s.Number != "" {
			// The payment that locked the number has ended: say why codes do nothing now.
			if until := r.lockEnd(s.Lock.Until, s.Now); !until.IsZero() {
				return Decision{Outcome: r.refuseLocked(until, s.Now)}
			}
		}
		return Decision{Outcome: r.refuse(ProblemNoPending, nil, map[string]string{})}
	}
	if own != nil && req != nil {
		switch s.Matched {
		case own.ID:
			req = nil
		case req.ID:
			own = nil
		}
	}
	switch {
	case req == nil:
		return r.confirmOne(s, own)
	case own == nil:
		return r.confirmOne(s, req)
	}
	return r.confirmNeither(s, own, req)
}

// result is p's code check and placeholders in s (p is s.Waiting or s.Request).
func (s *confirmSnapshot) result(p *Payment) (res otp.Result, checked bool, vars map[string]string) {
	if p == s.Request {
		return s.RequestCheck, s.RequestChecked, s.RequestVars
	}
	return s.Check, s.Checked, s.Vars
}

// confirmOne decides the code given for p, the one payment it can be for.
func (r *rules) confirmOne(s confirmSnapshot, p *Payment) Decision {
	if !s.Now.Before(p.ExpiresAt) {
		return r.expireRefused(p)
	}
	// A locked number may not even try: the lock is what stops guessing across payments.
	// A payment waits under a lock only if the lock was made before a lock ended the
	// payment that tripped it; it ends now, rather than hold the funds until it expires.
	if until := r.lockEnd(s.Lock.Until, s.Now); !until.IsZero() {
		return r.failWrong(p, s.Channel, until, s.Now)
	}
	if r.originSpent(s.Origin, s.OriginWrong, s.Now) {
		// Unchecked, and nothing written: the code was not tried, and an origin that keeps
		// sending must not grow the authentication history (payswitch_requests_total counts
		// these as origin_limited, and the origin's reaching its limit was logged).
		return Decision{Outcome: r.refuse(ProblemOriginLimited, p, nil)}
	}
	res, checked, vars := s.result(p)
	if !checked {
		return Decision{Step: checkCodeStep, CheckCodes: []string{p.ID}}
	}
	switch {
	case res.OK && p.State == StateRequested:
		if s.Funds == nil {
			return Decision{Step: fundsStep}
		}
		return r.completeRequest(p, s.Channel, vars, *s.Funds, s.Now)
	case res.OK && r.needsRoom(p) && s.Room == nil:
		return Decision{Step: roomStep}
	case res.OK:
		if s.Room != nil {
			if over, limit := r.overCap(*s.Room, p.Amount); over {
				return r.refuseOverCap(p, s.Channel, limit)
			}
		}
		return r.intoEscrow(r.complete(p, s.Channel, vars), s.Now)
	case res.Expired:
		return r.expireRefused(p)
	case res.Exhausted || res.Used || res.Missing:
		var d Decision
		if res.Exhausted {
			d = r.countWrong(s)
		}
		return r.failWrong(p, s.Channel, d.Locked, s.Now).after(d)
	}
	d := r.countWrong(s)
	d.Auth = append(d.Auth, r.wrongNote(s, res, d.Locked))
	if !d.Locked.IsZero() {
		// The tries this payment had left are gone with the lock: it ends now.
		return r.failWrong(p, s.Channel, d.Locked, s.Now).after(d)
	}
	w := r.wrongLeft(p, res)
	w.NumberWrong, w.OriginWrong, w.Origin, w.OriginLimited, w.Auth = d.NumberWrong, d.OriginWrong, d.Origin, d.OriginLimited, d.Auth
	return w
}

// confirmNeither decides a code given while both own and req wait that is the code of
// neither (or of one whose time is up): a guess is tried against each live one and
// costs each a try, and counts once against the number. The answer is about the one
// that still waits, if any: the other's end sends its own SMS.
func (r *rules) confirmNeither(s confirmSnapshot, own, req *Payment) Decision {
	ownLive, reqLive := s.Now.Before(own.ExpiresAt), s.Now.Before(req.ExpiresAt)
	switch {
	case !ownLive && !reqLive:
		d := r.expireRefused(own)
		d.Also = []Decision{r.expire(req)}
		return d
	case !ownLive: // the sweeper expires it; the code is tried against the other
		return r.confirmOne(s, req)
	case !reqLive:
		return r.confirmOne(s, own)
	}
	if until := r.lockEnd(s.Lock.Until, s.Now); !until.IsZero() {
		d := r.failWrong(own, s.Channel, until, s.Now)
		d.Also = []Decision{r.failWrong(req, s.Channel, until, s.Now)}
		return d
	}
	if r.originSpent(s.Origin, s.OriginWrong, s.Now) {
		return Decision{Outcome: r.refuse(ProblemOriginLimited, own, nil)}
	}
	if !s.Checked || !s.RequestChecked {
		return Decision{Step: checkCodeStep, CheckCodes: []string{own.ID, req.ID}}
	}
	count := r.countWrong(s)
	var left, ended []Decision
	for _, p := range []*Payment{own, req} {
		res, _, _ := s.result(p)
		switch {
		case res.OK: // the stored code changed since Matched was worked out: it cannot
			return r.confirmOne(s, p)
		case res.Expired:
			ended = append(ended, r.expireRefused(p))
		case res.Exhausted || res.Used || res.Missing:
			ended = append(ended, r.failWrong(p, s.Channel, count.Locked, s.Now))
		case !count.Locked.IsZero():
			d := r.failWrong(p, s.Channel, count.Locked, s.Now)
			d.Auth = append([]authNote{r.wrongNote(s, res, count.Locked)}, d.Auth...)
			ended = append(ended, d)
		default:
			d := r.wrongLeft(p, res)
			d.Auth = []authNote{r.wrongNote(s, res, time.Time{})}
			left = append(left, d)
		}
	}
	var d Decision
	switch len(left) {
	case 2:
		v := r.vars(own)
		v["tries"], v["other"] = strconv.Itoa(s.Check.AttemptsLeft), req.ID
		v["other_tries"] = strconv.Itoa(s.RequestCheck.AttemptsLeft)
		d = left[0]
		d.Also = []Decision{left[1]}
		d.Also[0].Outcome = Outcome{}
		d.Outcome.Text = r.texts.Render("wrong_code_both", v)
	case 1:
		d, d.Also = left[0], ended
	default:
		d, d.Also = ended[0], ended[1:]
	}
	d.NumberWrong, d.OriginWrong, d.Origin, d.OriginLimited = count.NumberWrong, count.OriginWrong, count.Origin, count.OriginLimited
	if d.Locked.IsZero() {
		d.Locked = count.Locked
	}
	return d
}

// wrongLeft is the answer to a wrong code for p that leaves it tries (res.AttemptsLeft).
func (r *rules) wrongLeft(p *Payment, res otp.Result) Decision {
	v := r.vars(p)
	v["tries"] = strconv.Itoa(res.AttemptsLeft)
	d := Decision{Payment: p, Outcome: r.refuse(ProblemWrongCode, p, v)}
	if res.AttemptsLeft == 1 {
		d.Outcome.Text = r.texts.Render("wrong_code_last", v) // "1 try", not "1 tries"
	}
	return d
}

// wrongNote is the authentication history's entry of a wrong code (never the code).
func (r *rules) wrongNote(s confirmSnapshot, res otp.Result, locked time.Time) authNote {
	detail := "tries left " + strconv.Itoa(res.AttemptsLeft)
	if s.Origin != "" {
		detail += "; from " + s.Origin
	}
	if !locked.IsZero() {
		detail += "; number locked"
	}
	return authNote{Channel: s.Channel, Event: "wrong", Detail: detail}
}

// after is d with the counts and history of first (a wrong code counted before d) put
// ahead of its own.
func (d Decision) after(first Decision) Decision {
	d.NumberWrong, d.OriginWrong, d.Origin = first.NumberWrong, first.OriginWrong, first.Origin
	d.OriginLimited = first.OriginLimited
	if d.Locked.IsZero() {
		d.Locked = first.Locked
	}
	d.Auth = append(append([]authNote(nil), first.Auth...), d.Auth...)
	return d
}

// complete posts the held funds and tells both sides. An airtime payment goes on to
// topup_pending: its money now sits in the carrier's clearing account, and the airtime
// resolver asks the carrier to credit it.
//
// The receipt and the notice share vars (p's placeholders, or nil to work them out): the
// applier renders messages one after the other, filling in each one's balance.
func (r *rules) complete(p *Payment, ch Channel, vars map[string]string) Decision {
	if vars == nil {
		vars = r.vars(p)
	}
	d := Decision{Payment: p, Post: true, Move: EvConfirm, Outcome: Outcome{Payment: p},
		Events: merchantEvent(p, EventPaymentCompleted)}
	if p.Type == AirtimePayment {
		d.Move, d.KickAirtime = EvStartTopup, true
	}
	d.Auth = []authNote{{Channel: ch, Event: "confirmed"}}
	// The payer is the transfer's debit side and the payee its credit side: the ledger's
	// post knows both balances after it.
	d.Messages = make([]Message, 0, messagesOfCompletion(p, r.cfg.VoiceNumber != ""))
	if p.PayerMSISDN != "" {
		d.Messages = append(d.Messages, withBalance(r.smsMessage(p.PayerMSISDN, "receipt", p.ID, "", !r.cfg.NoPayerReceiptDLR),
			receiptKey(p), vars, p.PayerAccount, true))
	}
	if p.Type == AirtimePayment || p.PayeeMSISDN == "" {
		return d
	}
	switch {
	case p.Store != "":
		// A till's notice tells the store what came in, never the merchant's balance:
		// the store's phone is a shop assistant's.
		d.Messages = append(d.Messages, r.smsMessage(p.PayeeMSISDN, "notice", p.ID, r.texts.Render("store_notice", vars), false))
	case p.Type == WithdrawalPayment: // the agent hands over the cash (fees.go)
		d.Messages = append(d.Messages, withBalance(r.smsMessage(p.PayeeMSISDN, "notice", p.ID, "", false),
			"agent_withdraw", vars, p.PayeeAccount, false))
	default:
		d.Messages = append(d.Messages, withBalance(r.smsMessage(p.PayeeMSISDN, "notice", p.ID, "", false),
			"payee_notice", vars, p.PayeeAccount, false))
	}
	// A shopkeeper without a smartphone hears it at once.
	if p.Type == MerchantPayment {
		d.Messages = append(d.Messages, r.call(p.PayeeMSISDN, "merchant_notice", p.ID, "")...)
	}
	return d
}

// messagesOfCompletion is how many messages complete queues for p: the payer's receipt,
// the payee's notice and, with voice on, the merchant's call.
func messagesOfCompletion(p *Payment, voice bool) int {
	n := 1
	if p.Type != AirtimePayment && p.PayeeMSISDN != "" {
		n++
		if p.Type == MerchantPayment && voice {
			n++
		}
	}
	return n
}

// withBalance is m as text key with vars, which shows account's posted balance after the
// decision's ledger operations; answer makes the text the Outcome's too.
func withBalance(m Message, key string, vars map[string]string, account string, answer bool) Message {
	m.Key, m.Vars, m.Answer = key, vars, answer
	m.Balance = balanceRef{Account: account, Var: "balance"}
	return m
}

// receiptKey is the text that tells the payer their payment went through.
func receiptKey(p *Payment) string {
	switch {
	case p.Type == AirtimePayment:
		return "receipt_topup"
	case p.Type == WithdrawalPayment:
		return withFee("receipt_withdraw", p)
	case len(p.Items) > 0:
		return withFee("receipt_items", p)
	}
	return withFee("receipt", p)
}

// expire ends a payment whose code ran out and tells the payer the funds are free again
// (a request: that nothing was paid).
func (r *rules) expire(p *Payment) Decision {
	if p.State == StateRequested {
		return r.expireRequest(p)
	}
	return Decision{Payment: p, Release: true, Move: EvExpire, Reason: "code expired",
		Auth:     []authNote{{Channel: p.Channel, Event: "expired"}},
		Messages: r.sms(p.PayerMSISDN, "expired", p.ID, r.texts.Render("expired", r.vars(p)), false)}
}

// expireRefused is expire for a command that found p overdue: it answers that the code
// expired (expire already told the payer).
func (r *rules) expireRefused(p *Payment) Decision {
	d := r.expire(p)
	if p.State == StateRequested {
		d.Outcome.Problem = ProblemCodeExpired // the text already says the request expired
		return d
	}
	d.Outcome = r.refuse(ProblemCodeExpired, p, nil)
	return d
}

// failWrong ends p after too many wrong codes: its own (otp.max_attempts), or the
// number's when lockedUntil is set (the last code locked the number, or it was locked
// already). The hold is voided at once and the payer told by SMS, whatever channel the
// code came through; when the number is locked, the text says so and until when,
// instead of promising tries that the lock has taken away.
func (r *rules) failWrong(p *Payment, ch Channel, lockedUntil, now time.Time) Decision {
	if p.State == StateRequested {
		return r.failRequestWrong(p, ch, lockedUntil, now)
	}
	v := r.vars(p)
	detail, reason, key := "", "too many wrong codes", "failed_attempts"
	if !lockedUntil.IsZero() {
		v["until"] = r.lockTime(lockedUntil, now)
		detail = "number locked until " + lockedUntil.UTC().Format(time.RFC3339)
		reason, key = "too many wrong codes: number locked", "locked_failed"
	}
	text := r.texts.Render(key, v)
	return Decision{Payment: p, Release: true, Move: EvFail, Reason: reason,
		Auth:     []authNote{{Channel: ch, Event: otp.EventExhausted, Detail: detail}},
		Messages: r.sms(p.PayerMSISDN, "failed", p.ID, text, false),
		Outcome:  Outcome{Payment: p, Problem: ProblemTooManyAttempts, Text: text, LockedUntil: lockedUntil}}
}

// countWrong counts a wrong code against the number and, when it came through a
// callback, against its origin; it locks the number when it has given too many within
// the window. The Decision holds only the counts, and Locked when this code locked it.
func (r *rules) countWrong(s confirmSnapshot) Decision {
	f := r.cfg.Fraud
	var d Decision
	if f.WrongCodesLock <= 0 {
		return d
	}
	now, window := s.Now.UnixMicro(), f.LockWindow.Microseconds()
	if s.Origin != "" {
		w := s.OriginWrong.next(now, window)
		d.OriginWrong, d.Origin = &w, s.Origin
		if limit, _ := f.originLimit(); w.Count == limit {
			d.OriginLimited = w.Count
		}
	}
	lock := numberLock{wrongWindow: s.Lock.wrongWindow.next(now, window), Until: s.Lock.Until}
	if lock.Count >= f.WrongCodesLock {
		until := s.Now.Add(f.LockDuration)
		lock = numberLock{wrongWindow: wrongWindow{Start: now}, Until: until.UnixMicro()}
		d.Locked = until
	}
	d.NumberWrong = &lock
	return d
}

// next is w with one more wrong code at now: a window older than window starts again.
func (w wrongWindow) next(now, window int64) wrongWindow {
	if w.Start <= now-window {
		return wrongWindow{Start: now, Count: 1}
	}
	return wrongWindow{Start: w.Start, Count: w.Count + 1}
}

// originSpent reports whether origin has used up its wrong codes for the number, as
// counted in w, in a window still open at now.
func (r *rules) originSpent(origin string, w wrongWindow, now time.Time) bool {
	limit, on := r.cfg.Fraud.originLimit()
	open := w.Start > now.Add(-r.cfg.Fraud.LockWindow).UnixMicro()
	return on && origin != "" && open && w.Count >= limit
}
