package payswitch

import (
	"crypto/hmac"
	"time"

	"github.com/payswitch/payswitch/ledger"
	"github.com/payswitch/payswitch/otp"
)

// LOCK <wallet number> <id number> (contract section 14): anyone, from any phone or the
// IVR, freezes a lost phone's wallet by giving its number and the id number recorded at
// tier 2. The rules against its misuse:
//   - the sender's answer is the same whether the number has a wallet, a tier 2, a
//     matching id number or is already frozen, so LOCK tells nobody anything;
//   - every attempt counts against its sender (lockPerSender a window), matched or not,
//     so that being limited tells nothing either;
//   - a wrong id number counts against the wallet (lockWrongPerWallet a window): past
//     that its id number is not checked again until the window has passed, whoever
//     sends, and its own number is told once;
//   - the table's rows are bounded: wallets that exist, and at most lockNewSenders new
//     senders a window (more are refused as limited), each row gone once its window is.
//
// Only an operator reactivates a wallet (SetAccountStatus): no SMS unfreezes.

// The limits of LOCK.
const (
	lockWindow         = 24 * time.Hour
	lockPerSender      = 5
	lockWrongPerWallet = 3
	lockNewSenders     = 10000
)

// Answers to a LOCK.
const (
	ProblemUsageLock   Problem = "usage_lock"
	ProblemLockLimited Problem = "lock_limited"
)

func init() {
	DefaultTexts["usage_lock"] = "To lock a lost phone's wallet send: LOCK <wallet number> <id number>, " +
		"with the id number in digits as registered."
	DefaultTexts["lock_received"] = "If the number and id number match our records, the wallet is now locked: " +
		"no payment can be made from it. To reactivate it, visit an agent with your ID."
	DefaultTexts["lock_limited"] = "Too many LOCK requests from this number. Please try again tomorrow or call customer care."
	DefaultTexts["wallet_locked"] = "Your wallet {number} was locked at {until} by LOCK from {payer}. " +
		"Waiting payments were cancelled. Visit an agent with your ID to unlock it."
	DefaultTexts["lock_attempts_warning"] = "Several requests to lock your payswitch wallet {number} gave a wrong id number. " +
		"If this was not you, call customer care."
}

// lockCount is a subject's LOCK attempts in the window that started with its first one
// (Start, Unix µs): a row of lock_attempts.
type lockCount struct {
	Subject string
	Start   int64
	Count   int
}

// live is c's count at now: nothing once its window has passed.
func (c lockCount) live(now time.Time) int {
	if c.Start <= now.Add(-lockWindow).UnixMicro() {
		return 0
	}
	return c.Count
}

// next is c with one more attempt at now.
func (c lockCount) next(now time.Time) lockCount {
	if c.live(now) == 0 {
		return lockCount{Subject: c.Subject, Start: now.UnixMicro(), Count: 1}
	}
	return lockCount{Subject: c.Subject, Start: c.Start, Count: c.Count + 1}
}

// The subjects of lock_attempts.
func lockSenderSubject(msisdn string) string { return "sender:" + msisdn }
func lockWalletSubject(msisdn string) string { return "wallet:" + msisdn }

const lockSendersSubject = "senders"

// lockSnapshot is what deciding a LOCK looks at, as read inside the write.
type lockSnapshot struct {
	Now     time.Time
	Channel Channel
	From    string // the sender, international when it is a number
	Wallet  string // the wallet's number, international; "" when it is not a number
	ID      string // the id number given (digits); never stored nor logged

	Account *ledger.Account // the wallet's account, or nil
	Tier    int             // its tier (wallet_kyc; DefaultTier without a row)
	Digest  string          // the keyed digest of the id number recorded at tier 2, or ""

	// The counts as stored (Subject set, zero when none).
	Sender, Target, Senders lockCount

	Pending   *Payment // the wallet number's own payment waiting for its code, or nil
	Requested *Payment // a merchant's request waiting for it, or nil
}

// lockWallet decides a LOCK: the sender's answer (the same for every outcome but its
// own limit), the counts, the history's entry and, when the id number matches, the
// wallet frozen with its waiting payments ended and its number told.
func (r *rules) lockWallet(s lockSnapshot) Decision {
	from := Mask(s.From)
	if s.Wallet == "" {
		d := Decision{Outcome: r.refuse(ProblemBadNumber, nil, map[string]string{})}
		return r.replyIfSMS(d, s.Channel, s.From)
	}
	note := authNote{MSISDN: s.Wallet, Channel: s.Channel, Event: otp.EventLockRefused}
	newSender := s.Sender.live(s.Now) == 0
	if s.Sender.live(s.Now) >= lockPerSender || newSender && s.Senders.live(s.Now) >= lockNewSenders {
		note.Detail = "limited: too many from the sender " + from
		d := Decision{Outcome: r.refuse(ProblemLockLimited, nil, map[string]string{}), Auth: []authNote{note}}
		return r.replyIfSMS(d, s.Channel, s.From)
	}
	d := Decision{Outcome: Outcome{Text: r.texts.Render("lock_received", map[string]string{})},
		LockCounts: []lockCount{s.Sender.next(s.Now)}}
	if newSender {
		d.LockCounts = append(d.LockCounts, s.Senders.next(s.Now))
	}
	// The digest is worked out whatever the wallet, so that no answer comes sooner for
	// a number without one.
	given := idNumberDigest(r.cfg.IDNumberKey, s.ID)
	a := s.Account
	wallet := a != nil && (a.Type == ledger.Wallet || a.Type == ledger.Agent)
	switch {
	case !wallet:
		note.Detail = "no such wallet; from " + from
	case s.Target.live(s.Now) >= lockWrongPerWallet:
		note.Detail = "limited: too many wrong id numbers for the wallet; from " + from
	case s.Tier != TierFull || s.Digest == "" || len(r.cfg.IDNumberKey) == 0:
		note.Detail = "no id number recorded; from " + from
	case !hmac.Equal([]byte(s.Digest), []byte(given)):
		note.Detail = "wrong id number; from " + from
		t := s.Target.next(s.Now)
		d.LockCounts = append(d.LockCounts, t)
		if t.Count == lockWrongPerWallet {
			// Once a window: its owner hears that someone is guessing.
			d.Messages = r.sms(s.Wallet, "lock_warning", "", r.texts.Render("lock_attempts_warning",
				map[string]string{"number": Mask(s.Wallet)}), false)
		}
	case a.Status != ledger.Active:
		note.Event, note.Detail = otp.EventLocked, "id number matched; already "+string(a.Status)+"; from "+from
	default:
		note.Event, note.Detail = otp.EventLocked, "id number matched; wallet frozen; from "+from
		d.Change = &accountChange{Account: a.ID, Field: "status", Old: string(a.Status), New: string(ledger.Frozen),
			Reason: "LOCK by " + string(s.Channel) + " from " + from, Actor: "lock"}
		d.Also = r.endForLock(s)
		d.Messages = r.sms(s.Wallet, "wallet_locked", "", r.texts.Render("wallet_locked", map[string]string{
			"number": Mask(s.Wallet), "payer": from, "until": r.lockTime(s.Now, s.Now)}), false)
	}
	d.Auth = []authNote{note}
	if s.Channel == ChannelSMS {
		d.Messages = append(d.Messages, r.sms(s.From, "reply", "", d.Outcome.Text, false)...)
	}
	return d
}

// endForLock ends what waits on a wallet being locked: its own payment waiting for its
// code is cancelled and its hold released, a merchant's request to it is declined (the
// merchant's system hears request.declined). Its phone is lost: the one SMS about the
// lock says so, not one a payment.
func (r *rules) endForLock(s lockSnapshot) []Decision {
	var out []Decision
	if p := s.Pending; p != nil && p.PayerAccount == s.Account.ID && p.State == StatePendingOTP {
		out = append(out, Decision{Payment: p, Release: true, Move: EvCancel, Reason: "wallet locked (LOCK)",
			Auth: []authNote{{Channel: s.Channel, Event: otp.EventCancelled, Detail: "wallet locked"}}})
	}
	if p := s.Requested; p != nil && p.State == StateRequested {
		d := r.endRequest(p, EvDecline, "wallet locked (LOCK)", "reply", "declined", EventRequestDeclined, nil)
		d.Messages, d.Outcome = nil, Outcome{}
		d.Auth = []authNote{{Channel: s.Channel, Event: otp.EventCancelled, Detail: "request declined: wallet locked"}}
		out = append(out, d)
	}
	return out
}
