package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"time"

	payswitch "github.com/payswitch/payswitch/switch"
)

// behaviour is what a phone does with the code of one payment.
type behaviour int

const (
	confirm          behaviour = iota // reply with the code
	wrongThenConfirm                  // a wrong code first, then the right one
	cancelIt                          // CANCEL instead of a code
	exhaust                           // max_attempts wrong codes: the payment fails
	silent                            // never answer: the payment expires, perhaps across a kill
)

func (b behaviour) String() string {
	return [...]string{"confirm", "wrong-then-confirm", "cancel", "exhaust", "silent"}[b]
}

// maxAttempts is otp.max_attempts in the switch's config.
const maxAttempts = 3

// step is one payment a phone tries to make.
type step struct {
	do      behaviour
	amount  int64 // minor units
	lower   bool  // type "pay" instead of "PAY"
	okForm  bool  // answer "OK <code>" instead of the bare code
	wrongOK bool  // send the wrong code as "OK <code>"
}

// attempt is what became of a step, as the phone saw it.
type attempt struct {
	step
	id        string // payment ID from the code message; "" if none came
	code      string
	sentRight bool   // the right code was sent (so the payment may complete)
	outcome   string // completed, cancelled, failed, expired, refused, silent, blocked, stalled
}

// phone is one wallet and the simulated handset that uses it. Its fields after
// script are written only by the phone's own goroutine while a round runs.
type phone struct {
	msisdn   string
	account  string
	deposit  int64
	ref      string // the deposit's reference
	merchant *merchant
	round    int
	script   []step

	attempts []*attempt
	byID     map[string]*attempt
	stalls   []string      // what the phone waited for in vain
	sentAt   time.Time     // when it last sent a message
	slowest  time.Duration // the longest it waited for an answer it got
}

// merchant is a till that the phones of one round pay.
type merchant struct {
	code, msisdn, account string
	phones                []*phone
}

// driver is what a phone needs of the harness.
type driver struct {
	send    func(ctx context.Context, from, text string) error
	mail    *mailboxes
	api     *client
	timeout time.Duration // longest wait for an answer
}

// newScript draws what a phone will do in a round: 1 to n payments, at most 3 wrong
// codes in all (the switch locks a number after 5 across payments, and a kill may make
// the SMSC deliver one again), a silent one only last (it blocks the number until it
// expires).
func newScript(rng *rand.Rand, n int) []step {
	k := 1 + rng.IntN(n)
	wrongs := 0
	var s []step
	for i := range k {
		st := step{amount: int64(10+rng.IntN(490))*100 + int64(rng.IntN(2))*50,
			lower: rng.IntN(4) == 0, okForm: rng.IntN(3) == 0, wrongOK: rng.IntN(2) == 0}
		r := rng.IntN(100)
		switch {
		case r < 40:
			st.do = confirm
		case r < 60:
			st.do = wrongThenConfirm
		case r < 75:
			st.do = cancelIt
		case r < 85:
			st.do = exhaust
		default:
			st.do = silent
		}
		if st.do == silent && i < k-1 {
			st.do = confirm
		}
		if w := map[behaviour]int{wrongThenConfirm: 1, exhaust: maxAttempts}[st.do]; wrongs+w > 3 {
			st.do = confirm
		} else {
			wrongs += w
		}
		s = append(s, st)
	}
	return s
}

// amountText writes minor units as a person types them: "150" or "150.50".
func amountText(minor int64) string {
	if minor%100 == 0 {
		return fmt.Sprint(minor / 100)
	}
	return fmt.Sprintf("%d.%02d", minor/100, minor%100)
}

// wrongCode is a code of the same length that is surely not code.
func wrongCode(code string) string {
	b := []byte(code)
	for i, c := range b {
		b[i] = '0' + (c-'0'+1)%10
	}
	return string(b)
}

// run plays the phone's script until it ends, the phone is stuck, or ctx ends.
func (p *phone) run(ctx context.Context, d *driver) {
	for _, st := range p.script {
		a := &attempt{step: st}
		p.attempts = append(p.attempts, a)
		if !p.pay(ctx, d, a) || ctx.Err() != nil {
			return
		}
		if a.id == "" {
			continue // refused; nothing waits
		}
		var ok bool
		switch st.do {
		case confirm:
			ok = p.confirm(ctx, d, a)
		case wrongThenConfirm:
			ok = p.wrong(ctx, d, a) && (a.outcome != "" || p.confirm(ctx, d, a))
		case cancelIt:
			ok = p.cancel(ctx, d, a)
		case exhaust:
			ok = true
			for i := 0; i < maxAttempts && ok && a.outcome == ""; i++ {
				ok = p.wrong(ctx, d, a)
			}
			if ok && a.outcome == "" {
				// An answer to a copy of an earlier wrong code may have been taken for
				// the last one's; the end of the payment is on its way.
				ok = p.awaitFinal(ctx, d, a, 0)
			}
		case silent:
			a.outcome, ok = "silent", true
		}
		if !ok {
			return
		}
	}
}

// send sends text to the short code and returns the mailbox position to await its
// answer from.
func (p *phone) send(ctx context.Context, d *driver, text string) (int, error) {
	mark := d.mail.mark(p.msisdn)
	p.sentAt = time.Now()
	return mark, d.send(ctx, p.msisdn, text)
}

// await waits for the answer to what the phone sent last.
func (p *phone) await(ctx context.Context, d *driver, mark int, match func(string) bool) (string, int, error) {
	t, next, err := d.mail.await(ctx, p.msisdn, mark, d.timeout, match)
	if err == nil {
		p.slowest = max(p.slowest, time.Since(p.sentAt))
	}
	return t, next, err
}

// stall records that the phone waited for want in vain.
func (p *phone) stall(a *attempt, want string) bool {
	a.outcome = "stalled"
	p.stalls = append(p.stalls, fmt.Sprintf("%s (payment %q, %s): no %s", p.msisdn, a.id, a.do, want))
	return false
}

// pay sends PAY and waits for the code message of a new payment, or a refusal. A
// payment already waiting (one the phone lost track of) is cancelled first.
func (p *phone) pay(ctx context.Context, d *driver, a *attempt) bool {
	kw := "PAY"
	if a.lower {
		kw = "pay"
	}
	for try := 0; ; try++ {
		mark, err := p.send(ctx, d, fmt.Sprintf("%s %s %s", kw, p.merchant.code, amountText(a.amount)))
		if err != nil {
			return p.stall(a, "way to send PAY: "+err.Error())
		}
		var got, blocker string
		_, _, err = p.await(ctx, d, mark, func(t string) bool {
			if id, code, ok := otpOf(t, 6); ok && p.byID[id] == nil {
				if !strings.Contains(t, " "+payswitch.FormatAmount(a.amount)+" to ") {
					// The code of an earlier PAY of this phone that the SMSC delivered
					// again after a restart: its SMS names another amount, which a user
					// would not confirm. That payment is in this one's way.
					got, blocker = "blocked", id
					return true
				}
				a.id, a.code, got = id, code, "code"
				return true
			}
			if id, ok := pendingOf(t); ok {
				// One the phone knows, or whose code came before: it is in the
				// way. Otherwise it is this PAY's own payment, named in the answer
				// to a copy of the PAY, and its code is on the way.
				if p.byID[id] != nil || d.mail.has(p.msisdn, func(t string) bool { return isOTPFor(t, id) }) {
					got, blocker = "blocked", id
					return true
				}
				return false
			}
			if refused(t) {
				got = "refused"
				return true
			}
			return false
		})
		switch {
		case err != nil:
			return p.stall(a, "code message or refusal after PAY")
		case got == "code":
			p.byID[a.id] = a
			return true
		case got == "refused":
			a.outcome = "refused"
			return true
		case try == 0:
			if !p.cancelWaiting(ctx, d, blocker) {
				return p.stall(a, "end of the blocking payment "+blocker)
			}
		default:
			a.outcome = "blocked"
			return false
		}
	}
}

// cancelWaiting cancels a payment the phone lost track of.
func (p *phone) cancelWaiting(ctx context.Context, d *driver, id string) bool {
	mark, err := p.send(ctx, d, "CANCEL")
	if err != nil {
		return false
	}
	_, _, err = p.await(ctx, d, mark, func(t string) bool {
		_, ok := finalFor(t, id)
		return ok || t == textNoPending
	})
	return err == nil
}

// confirm sends the right code and waits for the payment's end.
func (p *phone) confirm(ctx context.Context, d *driver, a *attempt) bool {
	text := a.code
	if a.okForm {
		text = "OK " + a.code
	}
	mark, err := p.send(ctx, d, text)
	if err != nil {
		return p.stall(a, "way to send the code: "+err.Error())
	}
	a.sentRight = true
	return p.awaitFinal(ctx, d, a, mark)
}

// wrong sends a wrong code and waits for its answer: tries left, or the end.
func (p *phone) wrong(ctx context.Context, d *driver, a *attempt) bool {
	text := wrongCode(a.code)
	if a.wrongOK {
		text = "ok " + text
	}
	mark, err := p.send(ctx, d, text)
	if err != nil {
		return p.stall(a, "way to send a wrong code: "+err.Error())
	}
	t, _, err := p.await(ctx, d, mark, func(t string) bool {
		if _, ok := finalFor(t, a.id); ok {
			return true
		}
		return isWrongCode(t, a.id) || t == textNoPending && p.ended(ctx, d, a)
	})
	if err != nil {
		return p.stall(a, "answer to a wrong code")
	}
	if st, ok := finalFor(t, a.id); ok {
		a.outcome = st
	}
	return true
}

// cancel sends CANCEL and waits for the payment's end.
func (p *phone) cancel(ctx context.Context, d *driver, a *attempt) bool {
	mark, err := p.send(ctx, d, "cancel")
	if err != nil {
		return p.stall(a, "way to send CANCEL: "+err.Error())
	}
	return p.awaitFinal(ctx, d, a, mark)
}

// awaitFinal waits for the text that ends payment a, from position mark on. "No
// payment waiting" ends the wait too when the switch says the payment is over: the
// answer may be to a copy of an earlier message that the SMSC delivered again after
// a kill, or the payment may have ended before the phone's message got there.
func (p *phone) awaitFinal(ctx context.Context, d *driver, a *attempt, mark int) bool {
	t, _, err := p.await(ctx, d, mark, func(t string) bool {
		if _, ok := finalFor(t, a.id); ok {
			return true
		}
		return t == textNoPending && p.ended(ctx, d, a)
	})
	if err != nil {
		return p.stall(a, "end of the payment")
	}
	if st, ok := finalFor(t, a.id); ok {
		a.outcome = st
	} else if a.outcome == "" {
		a.outcome = "ended"
	}
	return true
}

// ended asks the switch whether payment a is no longer waiting for its code. While the
// switch is down (being restarted) it keeps asking for a while.
func (p *phone) ended(ctx context.Context, d *driver, a *attempt) bool {
	deadline := time.Now().Add(d.timeout)
	for {
		pay, err := d.api.Payment(ctx, a.id)
		if err == nil {
			return pay.State != "pending_otp"
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return false
		}
		time.Sleep(50 * time.Millisecond)
	}
}
