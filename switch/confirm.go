package payswitch

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/payswitch/payswitch/ledger"
	"github.com/payswitch/payswitch/otp"
	"github.com/payswitch/payswitch/outbox"
	"github.com/payswitch/payswitch/store"
)

// Confirm checks code against the payment that msisdn has waiting and, when it is right,
// posts the held funds, sends the receipt and the payee's notice. paymentID, when not
// empty, must name that payment (a USSD or IVR session knows which one it started).
// A wrong code is counted; too many fail the payment and release its hold.
func (e *Engine) Confirm(ctx context.Context, ch Channel, msisdn, paymentID, code string) (Outcome, error) {
	g := e.guess(ctx, msisdn, code)
	var out Outcome
	err := e.write(ctx, func(o *op) error {
		var err error
		if out, err = o.confirm(ch, msisdn, paymentID, code, g); err != nil {
			return err
		}
		return o.replyIfSMS(ch, msisdn, out)
	})
	if err != nil {
		return Outcome{}, err
	}
	e.requests.WithLabelValues(string(ch), outcomeLabel(out.Problem, "confirmed")).Inc()
	return out, nil
}

// guess is a code given for the payment its number had waiting, as the reader pool last
// saw it, with what can be worked out for it off the store's single writer: the code
// digested for that payment's binding, and the texts that a success sends, short of the
// balances. The transaction uses it only when the same payment still waits: while a
// payment waits for its code only its deadline (and updated_at) change, and those the
// transaction reads.
type guess struct {
	p       *Payment
	attempt otp.Attempt
	receipt string // the payer's receipt, balance marked by balanceMark
	notice  string // the payee's notice, likewise; "" when the payee has no number
}

// balanceMark stands in a text rendered ahead for the balance, known only in the
// transaction; no name, amount or template holds a NUL.
const balanceMark = "\x00balance\x00"

// guess prepares code for msisdn's waiting payment; nil when there is none to prepare
// (or the read failed: the transaction does it all then).
func (e *Engine) guess(ctx context.Context, msisdn, code string) *guess {
	n, err := e.Normalize(msisdn)
	if err != nil {
		return nil
	}
	p, err := loadPending(ctx, e.db.Reader(), n)
	if err != nil || p == nil {
		return nil
	}
	g := &guess{p: p, attempt: e.otp.Attempt(bindingOf(p), code)}
	v := e.vars(p)
	v["balance"] = balanceMark
	g.receipt = e.texts.Render(receiptKey(p), v)
	if p.PayeeMSISDN != "" && p.Type != AirtimePayment {
		g.notice = e.texts.Render("payee_notice", v)
	}
	return g
}

// receiptKey is the text that tells the payer their payment went through.
func receiptKey(p *Payment) string {
	if p.Type == AirtimePayment {
		return "receipt_topup"
	}
	return "receipt"
}

// replyIfSMS queues a refusal as the SMS answer. Successful confirmations, codes and
// cancellations already send their own SMS, and so do a payment failed by wrong codes and
// one that expired: the payer hears of each once, whatever channel they used.
func (o *op) replyIfSMS(ch Channel, msisdn string, out Outcome) error {
	if ch != ChannelSMS || out.OK() || out.Problem == ProblemTooManyAttempts || out.Problem == ProblemCodeExpired {
		return nil
	}
	return o.sms(o.e.replyTo(msisdn), "reply", idOf(out.Payment), out.Text, false)
}

func (o *op) pendingOf(msisdn, paymentID string) (*Payment, error) {
	n, err := o.e.Normalize(msisdn)
	if err != nil {
		return nil, nil
	}
	p, err := loadPending(o.ctx, o.tx, n)
	if err != nil || p == nil {
		return nil, err
	}
	if paymentID != "" && p.ID != paymentID {
		return nil, nil
	}
	return p, nil
}

func (o *op) confirm(ch Channel, msisdn, paymentID, code string, g *guess) (Outcome, error) {
	e := o.e
	origin := OriginOf(o.ctx)
	var w *waiting
	n, err := e.Normalize(msisdn)
	if err == nil {
		if w, err = o.waitingFor(n, origin); err != nil {
			return Outcome{}, err
		}
	}
	if w == nil && n != "" {
		// The payment that locked the number has ended: say why codes do nothing now.
		if until, err := o.lockedUntil(n); err != nil || !until.IsZero() {
			return o.refuseLocked(until), err
		}
	}
	if w == nil || paymentID != "" && w.id != paymentID {
		return o.refuse(ProblemNoPending, nil, map[string]string{}), nil
	}
	var p *Payment
	if g != nil && g.p.ID == w.id {
		cp := *g.p
		p = &cp
		p.ExpiresAt, p.UpdatedAt = time.UnixMicro(w.expiresAt).UTC(), time.UnixMicro(w.updatedAt).UTC()
	} else {
		var err error
		if p, err = loadPayment(o.ctx, o.tx, w.id); err != nil {
			return Outcome{}, err
		}
		g = nil
	}
	if !o.now.Before(p.ExpiresAt) {
		if err := o.expire(p); err != nil {
			return Outcome{}, err
		}
		return o.refuse(ProblemCodeExpired, p, nil), nil
	}
	// A locked number may not even try: the lock is what stops guessing across payments.
	// A payment waits under a lock only if the lock was made before a lock ended the
	// payment that tripped it; it ends now, rather than hold the funds until it expires.
	if !w.lockedUntil.IsZero() {
		return o.failWrong(p, ch, w.lockedUntil)
	}
	if o.originSpent(w, origin) {
		return o.refuseOrigin(p), nil
	}
	var attempt otp.Attempt
	if g != nil {
		attempt = g.attempt
	} else {
		attempt = e.otp.Attempt(bindingOf(p), code)
	}
	res, err := e.otp.CheckAttempt(o.ctx, o.tx, attempt, &w.code, o.now)
	if err != nil {
		return Outcome{}, fmt.Errorf("check code for %s: %w", p.ID, err)
	}
	switch {
	case res.OK:
		return o.complete(p, ch, g)
	case res.Expired:
		if err := o.expire(p); err != nil {
			return Outcome{}, err
		}
		return o.refuse(ProblemCodeExpired, p, nil), nil
	case res.Exhausted || res.Used || res.Missing:
		var until time.Time
		if res.Exhausted {
			if until, err = o.countWrongCode(p.PayerMSISDN, origin); err != nil {
				return Outcome{}, err
			}
		}
		return o.failWrong(p, ch, until)
	default:
		until, err := o.countWrongCode(p.PayerMSISDN, origin)
		if err != nil {
			return Outcome{}, err
		}
		detail := "tries left " + strconv.Itoa(res.AttemptsLeft)
		if origin != "" {
			detail += "; from " + origin
		}
		if !until.IsZero() {
			detail += "; number locked"
		}
		if err := o.authEvent(p, ch, "wrong", detail); err != nil {
			return Outcome{}, err
		}
		if !until.IsZero() {
			// The tries this payment had left are gone with the lock: it ends now.
			return o.failWrong(p, ch, until)
		}
		v := e.vars(p)
		v["tries"] = strconv.Itoa(res.AttemptsLeft)
		out := o.refuse(ProblemWrongCode, p, v)
		if res.AttemptsLeft == 1 {
			out.Text = e.texts.Render("wrong_code_last", v) // "1 try", not "1 tries"
		}
		return out, nil
	}
}

// complete posts the held funds and tells both sides. An airtime payment goes on to
// topup_pending: its money now sits in the carrier's clearing account, and the airtime
// resolver asks the carrier to credit it. g, when not nil, holds the texts rendered ahead.
func (o *op) complete(p *Payment, ch Channel, g *guess) (Outcome, error) {
	e := o.e
	tr, err := o.lt.Post(o.ctx, p.ID+":hold")
	if err != nil {
		return Outcome{}, fmt.Errorf("post %s: %w", p.ID, err)
	}
	ev := EvConfirm
	if p.Type == AirtimePayment {
		ev = EvStartTopup
	}
	if err := o.moveBooked(p, ev, "", tr.ID); err != nil {
		return Outcome{}, err
	}
	if err := o.authEvent(p, ch, "confirmed", ""); err != nil {
		return Outcome{}, err
	}
	// The payer is the transfer's debit side and the payee its credit side; Post returns
	// both balances right after it, so neither account needs reading here.
	payerBalance, err := o.balanceAfter(&tr, p.PayerAccount)
	if err != nil {
		return Outcome{}, err
	}
	receipt := o.withBalance(p, receiptKey(p), g.text(receiptKey(p)), payerBalance)
	if err := o.sms(p.PayerMSISDN, "receipt", p.ID, receipt, true); err != nil {
		return Outcome{}, err
	}
	if p.Type == AirtimePayment {
		o.after = append(o.after, e.kickAirtime)
		return Outcome{Payment: p, Text: receipt}, nil
	}
	if p.PayeeMSISDN != "" {
		payeeBalance, err := o.balanceAfter(&tr, p.PayeeAccount)
		if err != nil {
			return Outcome{}, err
		}
		notice := o.withBalance(p, "payee_notice", g.text("payee_notice"), payeeBalance)
		if err := o.sms(p.PayeeMSISDN, "notice", p.ID, notice, false); err != nil {
			return Outcome{}, err
		}
		// A shopkeeper without a smartphone hears it at once.
		if p.Type == MerchantPayment {
			if err := o.call(p.PayeeMSISDN, "merchant_notice", p.ID); err != nil {
				return Outcome{}, err
			}
		}
	}
	return Outcome{Payment: p, Text: receipt}, nil
}

// balanceAfter is the posted balance of account id right after tr, one of tr's two
// accounts: the ledger returns both with tr. Only when it could not (BalancesAfterKnown
// is false) or id is neither side is the account read, as the transaction sees it now.
func (o *op) balanceAfter(tr *ledger.Transfer, id string) (int64, error) {
	switch {
	case !tr.BalancesAfterKnown:
	case tr.Debit == id:
		return tr.DebitBalanceAfter, nil
	case tr.Credit == id:
		return tr.CreditBalanceAfter, nil
	}
	a, err := o.lt.Account(o.ctx, id)
	if err != nil {
		return 0, fmt.Errorf("balance of %s: %w", id, err)
	}
	return a.Balance.Posted, nil
}

// text is the text g rendered ahead for key, or "" when it has none.
func (g *guess) text(key string) string {
	switch {
	case g == nil:
		return ""
	case key == "payee_notice":
		return g.notice
	case key == receiptKey(g.p):
		return g.receipt
	}
	return ""
}

// withBalance is text key about p with the balance filled in: ahead, when rendered ahead
// with balanceMark, else rendered now.
func (o *op) withBalance(p *Payment, key, ahead string, balance int64) string {
	if ahead != "" {
		return strings.Replace(ahead, balanceMark, o.e.money(balance), -1)
	}
	v := o.e.vars(p)
	v["balance"] = o.e.money(balance)
	return o.e.texts.Render(key, v)
}

// release voids p's hold, kills its code and moves it with ev (fail, expire or cancel).
func (o *op) release(p *Payment, ev Event, reason string) error {
	if _, err := o.lt.Void(o.ctx, p.ID+":hold"); err != nil && !errors.Is(err, ledger.ErrNotFound) {
		return fmt.Errorf("void %s: %w", p.ID, err)
	}
	if err := o.e.otp.Kill(o.ctx, o.tx, p.ID); err != nil {
		return fmt.Errorf("kill code of %s: %w", p.ID, err)
	}
	// What did not happen does not count against the day's limit.
	if err := o.subDaily(p.PayerMSISDN, o.e.startOfDay(p.CreatedAt).UnixMicro(), p.Amount); err != nil {
		return err
	}
	return o.move(p, ev, reason)
}

// expire ends a payment whose code ran out and tells the payer the funds are free again.
func (o *op) expire(p *Payment) error {
	if err := o.release(p, EvExpire, "code expired"); err != nil {
		return err
	}
	if err := o.authEvent(p, p.Channel, "expired", ""); err != nil {
		return err
	}
	return o.sms(p.PayerMSISDN, "expired", p.ID, o.e.texts.Render("expired", o.e.vars(p)), false)
}

// Cancel ends the payment msisdn has waiting and releases its hold.
func (e *Engine) Cancel(ctx context.Context, ch Channel, msisdn, paymentID string) (Outcome, error) {
	var out Outcome
	err := e.write(ctx, func(o *op) error {
		p, err := o.pendingOf(msisdn, paymentID)
		if err != nil {
			return err
		}
		if p == nil {
			out = o.refuse(ProblemNoPending, nil, map[string]string{})
			return o.replyIfSMS(ch, msisdn, out)
		}
		if err := o.release(p, EvCancel, "cancelled by payer"); err != nil {
			return err
		}
		if err := o.authEvent(p, ch, "cancelled", ""); err != nil {
			return err
		}
		payer, err := o.lt.Account(o.ctx, p.PayerAccount)
		if err != nil {
			return err
		}
		v := e.vars(p)
		v["available"] = e.money(payer.Balance.Available)
		out = Outcome{Payment: p, Text: e.texts.Render("cancelled", v)}
		return o.sms(p.PayerMSISDN, "cancelled", p.ID, out.Text, false)
	})
	return out, err
}

// Resend issues a new code for the waiting payment; the old code dies.
func (e *Engine) Resend(ctx context.Context, ch Channel, msisdn, paymentID string) (Outcome, error) {
	var out Outcome
	err := e.write(ctx, func(o *op) error {
		p, err := o.pendingOf(msisdn, paymentID)
		if err != nil {
			return err
		}
		if p == nil {
			out = o.refuse(ProblemNoPending, nil, map[string]string{})
			return o.replyIfSMS(ch, msisdn, out)
		}
		if !o.now.Before(p.ExpiresAt) {
			if err := o.expire(p); err != nil {
				return err
			}
			out = o.refuse(ProblemCodeExpired, p, nil)
			return nil // expire already told the payer
		}
		code, exp, err := e.otp.Resend(o.ctx, o.tx, bindingOf(p), o.now)
		switch {
		case errors.Is(err, otp.ErrResendLimit):
			out = o.refuse(ProblemResendLimit, p, nil)
			return o.replyIfSMS(ch, msisdn, out)
		case errors.Is(err, otp.ErrResendTooSoon):
			v := e.vars(p)
			// The current code was issued one TTL before the payment's deadline.
			wait := p.ExpiresAt.Add(-e.ttl).Add(e.otp.Config().ResendInterval).Sub(o.now)
			v["seconds"] = strconv.Itoa(int((wait + time.Second - 1) / time.Second))
			out = o.refuse(ProblemResendTooSoon, p, v)
			return o.replyIfSMS(ch, msisdn, out)
		case err != nil:
			return fmt.Errorf("resend code for %s: %w", p.ID, err)
		}
		if _, err := o.tx.ExecContext(o.ctx, `UPDATE payments SET expires_at = ?, updated_at = ? WHERE id = ?`,
			exp.UnixMicro(), o.now.UnixMicro(), p.ID); err != nil {
			return err
		}
		p.ExpiresAt = exp
		if err := o.authEvent(p, ch, "resent", ""); err != nil {
			return err
		}
		out = Outcome{Payment: p, Text: e.texts.Render("code_sent", e.vars(p))}
		return o.sms(p.PayerMSISDN, "otp", p.ID, e.texts.RenderCode("otp_resent", e.vars(p), code, e.digits), true)
	})
	return out, err
}

// Run expires payments whose code has run out until ctx ends: at once on start (what
// went overdue while the switch was down), then at each next deadline, checked at least
// every second so that payments created meanwhile are not missed.
func (e *Engine) Run(ctx context.Context) error {
	for {
		next, err := e.ExpireDue(ctx)
		if err != nil && ctx.Err() == nil {
			e.log.Error().Err(err).Msg("expiry sweep failed; retrying")
		}
		wait := time.Second
		if !next.IsZero() {
			if d := next.Sub(e.now()); d < wait {
				wait = max(d, 10*time.Millisecond)
			}
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
	}
}

// ExpireDue expires every pending payment whose deadline has passed and returns the next
// deadline still ahead (zero if none).
func (e *Engine) ExpireDue(ctx context.Context) (time.Time, error) {
	for {
		now := e.now().UTC()
		rows, err := e.db.Reader().QueryContext(ctx, `SELECT id FROM payments
			WHERE state = 'pending_otp' AND expires_at <= ? ORDER BY expires_at LIMIT 500`, now.UnixMicro())
		if err != nil {
			return time.Time{}, err
		}
		var ids []string
		for rows.Next() {
			var id string
			if err := rows.Scan(&id); err != nil {
				rows.Close()
				return time.Time{}, err
			}
			ids = append(ids, id)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return time.Time{}, err
		}
		if len(ids) == 0 {
			break
		}
		errs := make(chan error, len(ids))
		for _, id := range ids {
			// Each expiry is its own decision; the store commits them together.
			go func() {
				errs <- e.write(ctx, func(o *op) error {
					p, err := loadPayment(o.ctx, o.tx, id)
					if err != nil {
						return err
					}
					if p.State != StatePendingOTP || o.now.Before(p.ExpiresAt) {
						return nil // confirmed, cancelled or resent meanwhile
					}
					return o.expire(p)
				})
			}()
		}
		var first error
		for range ids {
			if err := <-errs; err != nil && first == nil {
				first = err
			}
		}
		if first != nil {
			return time.Time{}, first
		}
		if len(ids) < 500 {
			break
		}
	}
	var next int64
	err := e.db.Reader().QueryRowContext(ctx, `SELECT COALESCE(MIN(expires_at), 0) FROM payments
		WHERE state = 'pending_otp'`).Scan(&next)
	if err != nil || next == 0 {
		return time.Time{}, err
	}
	return time.UnixMicro(next), nil
}

// RecordCodeDelivery notes in the authentication history that the SMSC delivered (or
// could not deliver) a code message, so that a dispute can tell "never received" from
// "received and used". When a code could not be delivered and voice is configured, a new
// code is made for the still-pending payment and offered by a call to the payer's own
// number (the old code dies; it counts as a resend).
func (e *Engine) RecordCodeDelivery(ctx context.Context, paymentID, msisdn string, delivered bool, status string) error {
	return e.write(ctx, func(o *op) error { return o.recordCodeDelivery(paymentID, msisdn, delivered, status) })
}

// RecordCodeDeliveryTx is RecordCodeDelivery inside tx, a transaction of the engine's
// store (the caller's store.Write function), so that a delivery receipt and what it says
// about the code commit together, as one operation of the store's writer. On error the
// caller must return it from its Write function, which rolls back the engine's part with
// its own; on success it must call after once the Write has returned nil (it wakes the
// outbox for a voice call queued), and never when the Write failed.
func (e *Engine) RecordCodeDeliveryTx(ctx context.Context, tx store.Tx, paymentID, msisdn string, delivered bool, status string) (after func(), err error) {
	return e.inTx(ctx, tx, func(o *op) error { return o.recordCodeDelivery(paymentID, msisdn, delivered, status) })
}

func (o *op) recordCodeDelivery(paymentID, msisdn string, delivered bool, status string) error {
	e := o.e
	event := otp.EventDelivered
	if !delivered {
		event = otp.EventDeliveryFailed
	}
	if err := otp.RecordEvent(o.ctx, o.tx, otp.Event{Time: o.now, PaymentID: paymentID, MSISDN: msisdn,
		Channel: string(ChannelSMS), Event: event, Detail: status}); err != nil {
		return err
	}
	if delivered || e.cfg.VoiceNumber == "" {
		return nil
	}
	p, err := loadPayment(o.ctx, o.tx, paymentID)
	if err != nil || p.State != StatePendingOTP || p.PayerMSISDN != msisdn || !o.now.Before(p.ExpiresAt) {
		return nil // settled meanwhile, or not this number's: nothing to offer
	}
	code, exp, err := e.otp.Reissue(o.ctx, o.tx, bindingOf(p), o.now)
	if errors.Is(err, otp.ErrResendLimit) || errors.Is(err, otp.ErrNoCode) {
		return nil
	}
	if err != nil {
		return err
	}
	if _, err := o.tx.ExecContext(o.ctx, `UPDATE payments SET expires_at = ?, updated_at = ? WHERE id = ?`,
		exp.UnixMicro(), o.now.UnixMicro(), p.ID); err != nil {
		return err
	}
	if err := o.authEvent(p, ChannelIVR, "resent", "by voice call: the code SMS was undeliverable"); err != nil {
		return err
	}
	// The call's text is the code; the outbox seals it like a code SMS.
	if _, err := e.outbox.Enqueue(o.ctx, o.tx, outbox.Message{Kind: outbox.KindCall, To: p.PayerMSISDN,
		From: e.cfg.VoiceNumber, PaymentID: p.ID, Purpose: "payer_confirm", Text: code}); err != nil {
		return err
	}
	o.sends++
	return nil
}
