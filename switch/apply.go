package payswitch

import (
	"errors"
	"fmt"

	"github.com/payswitch/payswitch/ledger"
	"github.com/payswitch/payswitch/otp"
	"github.com/payswitch/payswitch/outbox"
	"github.com/payswitch/payswitch/store"
)

// errReversalRefTaken is the schema's refusal of a reversal reference that another
// payment's reversal holds (payments_reversal_ref).
var errReversalRefTaken = errors.New("payswitch: reversal reference taken")

// apply writes d's effects in o's transaction and returns its Outcome, with the texts
// that show a balance rendered. It is the only place where a Decision becomes SQL; the
// order of its writes is the order Decision documents.
func (o *op) apply(d Decision) (Outcome, error) {
	e, p, out := o.e, d.Payment, d.Outcome
	for _, also := range d.Also {
		if _, err := o.apply(also); err != nil {
			return Outcome{}, err
		}
	}
	var tr *ledger.Transfer // the transfer booked, whose balances the messages show
	if d.FreezePayer != "" {
		if err := o.freezeAfterSwap(d.FreezePayer); err != nil {
			return Outcome{}, err
		}
	}
	if d.Change != nil {
		if err := o.changeAccount(*d.Change); err != nil {
			return Outcome{}, err
		}
	}
	if d.Tier != nil {
		if err := o.changeTier(*d.Tier); err != nil {
			return Outcome{}, err
		}
	}
	if d.Clearing != "" {
		clearing, err := o.lt.SystemAccount(o.ctx, ledger.AirtimeClearing, d.Clearing, e.cfg.Currency)
		if err != nil {
			return Outcome{}, err
		}
		if clearing.ID != p.PayeeAccount {
			return Outcome{}, fmt.Errorf("airtime clearing account is %s, not %s", clearing.ID, p.PayeeAccount)
		}
	}
	if d.Transfer != nil {
		if p != nil { // a request to pay's fee (fees.go), before its amount
			if err := o.transferFee(p); err != nil {
				return Outcome{}, err
			}
		}
		t, err := o.lt.Transfer(o.ctx, *d.Transfer)
		if err != nil {
			return Outcome{}, err // the caller's rules name the ledger's refusals
		}
		p.TransferID = t.ID
		tr = &t
	}
	if d.Insert {
		if err := insertPayment(o.ctx, o.tx, p, d.RequestKey); err != nil {
			return Outcome{}, err
		}
	}
	if d.AddDaily {
		day := p.CreatedAt
		if !d.DailyAt.IsZero() {
			day = d.DailyAt
		}
		if err := o.addDaily(p.PayerMSISDN, e.startOfDay(day).UnixMicro(), p.Amount); err != nil {
			return Outcome{}, err
		}
	}
	if d.Issue != nil {
		if err := o.issue(p, *d.Issue); err != nil {
			return Outcome{}, err
		}
	}
	if d.Post {
		if err := o.postFees(p); err != nil { // the fee and commission first (fees.go)
			return Outcome{}, err
		}
		t, err := o.lt.Post(o.ctx, p.ID+":hold")
		if err != nil {
			return Outcome{}, fmt.Errorf("post %s: %w", p.ID, err)
		}
		tr = &t
	}
	if d.Release {
		if _, err := o.lt.Void(o.ctx, p.ID+":hold"); err != nil && !errors.Is(err, ledger.ErrNotFound) {
			return Outcome{}, fmt.Errorf("void %s: %w", p.ID, err)
		}
		if err := o.voidFees(p); err != nil {
			return Outcome{}, err
		}
		if err := e.otp.Kill(o.ctx, o.tx, p.ID); err != nil {
			return Outcome{}, fmt.Errorf("kill code of %s: %w", p.ID, err)
		}
		// What did not happen does not count against the day's limit.
		if err := o.subDaily(p.PayerMSISDN, e.startOfDay(p.CreatedAt).UnixMicro(), p.Amount); err != nil {
			return Outcome{}, err
		}
	}
	if d.Kill {
		if err := e.otp.Kill(o.ctx, o.tx, p.ID); err != nil {
			return Outcome{}, fmt.Errorf("kill code of %s: %w", p.ID, err)
		}
	}
	if d.Reverse {
		if err := o.reverseFees(p, d.ReverseKey); err != nil { // the fee back first (fees.go)
			return Outcome{}, err
		}
		t, err := o.lt.Reverse(o.ctx, p.TransferID, d.ReverseKey)
		if err != nil {
			return Outcome{}, fmt.Errorf("reverse %s: %w", p.ID, err)
		}
		tr = &t
	}
	if d.ReversalRef != "" {
		if _, err := o.tx.ExecContext(o.ctx, `UPDATE payments SET reversal_ref = ? WHERE id = ?`, d.ReversalRef, p.ID); err != nil {
			if store.IsUniqueViolation(err, "payments.reversal_ref") {
				err = errReversalRefTaken
			}
			return Outcome{}, fmt.Errorf("record reversal of %s: %w", p.ID, err)
		}
		p.ReversalRef = d.ReversalRef
	}
	// A refund (contract section 11): its own transfer, never the payment's, so that a
	// move it makes leaves the payment's transfer_id alone.
	if d.Refund != nil {
		t, err := o.applyRefund(p, d.Refund)
		if err != nil {
			return Outcome{}, err
		}
		tr = &t
	}
	if d.Move != "" {
		transferID := "" // only a post or a request's transfer moves the payment's own money; a reversal points at it
		if d.Post || d.Transfer != nil {
			transferID = tr.ID
		}
		if err := o.moveBooked(p, d.Move, d.Reason, transferID); err != nil {
			return Outcome{}, err
		}
	}
	if d.CarrierRef != "" {
		if _, err := o.tx.ExecContext(o.ctx, `UPDATE payments SET reference = CASE WHEN reference = '' THEN ? ELSE reference END
			WHERE id = ?`, d.CarrierRef, p.ID); err != nil {
			return Outcome{}, err
		}
	}
	if !d.RetryAt.IsZero() {
		if _, err := o.tx.ExecContext(o.ctx, `UPDATE payments SET attempts = attempts + 1, next_attempt_at = ?,
			reason = ?, updated_at = ? WHERE id = ?`, d.RetryAt.UnixMicro(), d.Reason, o.now.UnixMicro(), p.ID); err != nil {
			return Outcome{}, err
		}
	}
	if !d.Deadline.IsZero() {
		if _, err := o.tx.ExecContext(o.ctx, `UPDATE payments SET expires_at = ?, updated_at = ? WHERE id = ?`,
			d.Deadline.UnixMicro(), o.now.UnixMicro(), p.ID); err != nil {
			return Outcome{}, err
		}
		p.ExpiresAt = d.Deadline
	}
	if !d.ReleaseAt.IsZero() {
		if _, err := o.tx.ExecContext(o.ctx, `UPDATE payments SET release_at = ?, updated_at = ? WHERE id = ?`,
			d.ReleaseAt.UnixMicro(), o.now.UnixMicro(), p.ID); err != nil {
			return Outcome{}, fmt.Errorf("release date of %s: %w", p.ID, err)
		}
		p.ReleaseAt = d.ReleaseAt
	}
	if err := o.storeWrongCodes(d); err != nil {
		return Outcome{}, err
	}
	if err := o.storeRequestCounts(d.Counts); err != nil {
		return Outcome{}, err
	}
	if err := o.storeLockCounts(d.LockCounts); err != nil {
		return Outcome{}, err
	}
	if d.Stop != nil {
		if err := o.storeStop(*d.Stop); err != nil {
			return Outcome{}, err
		}
	}
	for _, a := range d.Auth {
		ev := otp.Event{Time: o.now, PaymentID: a.PaymentID, MSISDN: a.MSISDN, Channel: string(a.Channel),
			Event: a.Event, Detail: a.Detail}
		if ev.PaymentID == "" && p != nil {
			ev.PaymentID, ev.MSISDN = p.ID, p.PayerMSISDN
		}
		if err := otp.RecordEvent(o.ctx, o.tx, ev); err != nil {
			return Outcome{}, err
		}
	}
	if err := o.enqueueEvents(p, d.eventSubject(), d.Events); err != nil {
		return Outcome{}, err
	}
	for i, m := range d.Messages {
		if o.waitsFrom(d.Messages[i:]) && o.enqueueLater(d.Messages[i:], tr) { // apply_later.go
			break
		}
		if m.Key != "" {
			if err := o.render(&m, tr); err != nil {
				return Outcome{}, err
			}
			if m.Answer {
				out.Text = m.Text
			}
		}
		if err := o.enqueue(m); err != nil {
			return Outcome{}, err
		}
	}
	o.afterDecision(d)
	return out, nil
}

// render fills in m's balance, as the ledger holds it after tr (or, when tr is nil or
// does not know it, as the transaction reads it now), and renders its text. It sets the
// balance in m.Vars itself, which messages of one decision may share: each is rendered
// before the next one's balance is set.
func (o *op) render(m *Message, tr *ledger.Transfer) error {
	v := m.Vars
	if v == nil {
		v = map[string]string{}
	}
	if b := m.Balance; b.Var != "" {
		var amount int64
		if b.Available {
			a, err := o.lt.Account(o.ctx, b.Account)
			if err != nil {
				return fmt.Errorf("balance of %s: %w", b.Account, err)
			}
			amount = a.Balance.Available
		} else {
			var err error
			if amount, err = o.balanceAfter(tr, b.Account); err != nil {
				return err
			}
		}
		v[b.Var] = o.e.money(amount)
	}
	m.Text = o.e.texts.Render(m.Key, v)
	return nil
}

// balanceAfter is the posted balance of account id right after tr, one of tr's two
// accounts: the ledger returns both with tr. Only when it could not (tr is nil, or
// BalancesAfterKnown is false) or id is neither side is the account read, as the
// transaction sees it now.
func (o *op) balanceAfter(tr *ledger.Transfer, id string) (int64, error) {
	switch {
	case tr != nil && tr.CreditWaits && tr.Debit == id: // the debit side is known (PostgreSQL)
		return tr.DebitBalanceAfter, nil
	case tr == nil || !tr.BalancesAfterKnown:
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

// enqueue queues m in the current transaction. The Outbox's own Enqueue seals the texts
// that carry a code. An SMS is handed to the SMPP sender once the write is durable, to
// go out without a claim (outbox's fresh.go), or the sender is woken to claim it.
func (o *op) enqueue(m Message) error {
	_, then, err := o.e.outbox.EnqueueThen(o.ctx, o.tx, outbox.Message{Kind: m.Kind, To: m.To, From: m.From,
		Text: m.Text, PaymentID: m.PaymentID, Purpose: m.Purpose, RequestReceipt: m.Receipt, Meta: m.Meta})
	if err != nil {
		return fmt.Errorf("queue %s %s: %w", m.Purpose, m.Kind, err)
	}
	o.after = append(o.after, then)
	return nil
}

// storeWrongCodes writes the wrong-code counts d made: the origin's (forgetting the
// number's expired windows of other origins, so that the table holds only live windows
// of numbers being guessed) and the number's, with its lock.
func (o *op) storeWrongCodes(d Decision) error {
	var msisdn string
	if d.Payment != nil {
		msisdn = d.Payment.PayerMSISDN
	}
	if w := d.OriginWrong; w != nil {
		if _, err := o.tx.ExecContext(o.ctx, `INSERT INTO origin_wrong_codes (msisdn, origin, window_start, wrong_codes)
			VALUES (?1, ?2, ?3, ?4) ON CONFLICT (msisdn, origin) DO UPDATE SET
				window_start = excluded.window_start, wrong_codes = excluded.wrong_codes`,
			msisdn, d.Origin, w.Start, w.Count); err != nil {
			return fmt.Errorf("count wrong code of %s: %w", d.Origin, err)
		}
		if _, err := o.tx.ExecContext(o.ctx, `DELETE FROM origin_wrong_codes
			WHERE msisdn = ? AND origin <> ? AND window_start <= ?`,
			msisdn, d.Origin, o.now.Add(-o.e.cfg.Fraud.LockWindow).UnixMicro()); err != nil {
			return fmt.Errorf("forget old wrong codes: %w", err)
		}
	}
	if l := d.NumberWrong; l != nil {
		if _, err := o.tx.ExecContext(o.ctx, `INSERT INTO number_locks (msisdn, window_start, wrong_codes, locked_until)
			VALUES (?1, ?2, ?3, ?4) ON CONFLICT (msisdn) DO UPDATE SET
				window_start = excluded.window_start, wrong_codes = excluded.wrong_codes,
				locked_until = excluded.locked_until`,
			msisdn, l.Start, l.Count, l.Until); err != nil {
			return fmt.Errorf("count wrong code: %w", err)
		}
	}
	return nil
}

// moveBooked moves p with ev, recording transferID (when not empty) as the ledger
// transfer that moved p's money, for reversals; it counts and logs the move after commit.
func (o *op) moveBooked(p *Payment, ev Event, reason, transferID string) error {
	from := p.State
	if err := move(o.ctx, o.tx, p, ev, reason, transferID, o.now); err != nil {
		return err
	}
	typ, to, id, payer := string(p.Type), string(p.State), p.ID, p.PayerMSISDN
	o.after = append(o.after, func() {
		o.e.transitions.WithLabelValues(typ, to).Inc()
		o.e.log.Info().Str("payment", id).Str("event", string(ev)).Str("from", string(from)).
			Str("to", to).Str("payer", Mask(payer)).Str("reason", reason).Msg("payment moved")
	})
	return nil
}

// afterDecision arranges d's metrics and logs for once the transaction is durable (the
// payment's move arranges its own).
func (o *op) afterDecision(d Decision) {
	e := o.e
	if d.Payment == nil {
		return
	}
	msisdn := d.Payment.PayerMSISDN
	if !d.Locked.IsZero() && d.NumberWrong != nil {
		until := d.Locked
		o.after = append(o.after, func() {
			e.locks.Inc()
			e.log.Warn().Str("msisdn", Mask(msisdn)).Time("until", until).Str("event", "number_locked").
				Msg("number locked after repeated wrong codes")
		})
	}
	if d.OriginLimited > 0 {
		origin, count := d.Origin, d.OriginLimited
		o.after = append(o.after, func() {
			e.log.Warn().Str("msisdn", Mask(msisdn)).Str("origin", origin).Int("wrong_codes", count).
				Str("event", "origin_limited").Msg("callback origin used up its wrong codes for a number; its further codes are refused")
		})
	}
	if d.Insert {
		o.afterInsert(d.Payment)
	}
	if !d.RetryAt.IsZero() {
		id, reason, next := d.Payment.ID, d.Reason, d.RetryAt
		o.after = append(o.after, func() {
			e.log.Warn().Str("payment", id).Str("event", "topup_unknown").Str("reason", reason).
				Time("next", next).Msg("carrier gave no definite answer; will ask again")
		})
	}
	if d.KickAirtime {
		o.after = append(o.after, e.kickAirtime)
	}
}

// afterInsert counts and logs a new payment once it is durable: a payment requested, or
// a deposit booked. (An operator's top-up is logged by the airtime resolver.)
func (o *op) afterInsert(p *Payment) {
	e := o.e
	id, typ, state, ch, amount, payer, payee := p.ID, p.Type, p.State, p.Channel, p.Amount, p.PayerMSISDN, p.PayeeAccount
	switch {
	case typ == DepositPayment:
		o.after = append(o.after, func() {
			e.transitions.WithLabelValues(string(typ), string(state)).Inc()
			e.log.Info().Str("payment", id).Str("event", "deposit").Str("account", payee).Int64("amount", amount).Msg("deposit booked")
		})
	case state == StatePendingOTP:
		hint := e.waiting.hint(p)
		o.after = append(o.after, func() {
			e.waiting.add(hint)
			e.transitions.WithLabelValues(string(typ), string(state)).Inc()
			e.log.Info().Str("payment", id).Str("event", "requested").Str("type", string(typ)).
				Str("channel", string(ch)).Str("payer", Mask(payer)).Int64("amount", amount).
				Msg("payment requested, code sent")
		})
	case state == StateRequested:
		hint := e.waiting.hint(p)
		o.after = append(o.after, func() {
			e.waiting.add(hint)
			e.transitions.WithLabelValues(string(typ), string(state)).Inc()
			e.log.Info().Str("payment", id).Str("event", "request_sent").Str("type", string(typ)).
				Str("payee", payee).Str("payer", Mask(payer)).Int64("amount", amount).
				Msg("request to pay sent, code sent")
		})
	}
}

// issue stores code, drawn ahead for p, as p's first: valid for otp.ttl, which the
// decision gave p as its deadline, or, for a merchant's request, until the request's
// deadline.
func (o *op) issue(p *Payment, code otp.Drawn) error {
	if p.State == StateRequested && p.Risk == RiskHigh { // stepped up (risk_payreq.go)
		if err := o.e.otp.IssueDrawnStepUp(o.ctx, o.tx, code, o.now, p.ExpiresAt); err != nil {
			return fmt.Errorf("issue code: %w", err)
		}
		return nil
	}
	if p.State == StateRequested {
		if err := o.e.otp.IssueDrawnUntil(o.ctx, o.tx, code, o.now, p.ExpiresAt); err != nil {
			return fmt.Errorf("issue code: %w", err)
		}
		return nil
	}
	if p.Risk == RiskHigh { // stepped up: a shorter life, one attempt (risk.go)
		if err := o.e.otp.IssueDrawnStepUp(o.ctx, o.tx, code, o.now, p.ExpiresAt); err != nil {
			return fmt.Errorf("issue code: %w", err)
		}
		return nil
	}
	exp, err := o.e.otp.IssueDrawn(o.ctx, o.tx, code, o.now)
	if err != nil {
		return fmt.Errorf("issue code: %w", err)
	}
	if !exp.Equal(p.ExpiresAt) {
		return fmt.Errorf("issue code: expiry %v differs from the payment's %v", exp, p.ExpiresAt)
	}
	return nil
}

// addDaily counts amount against what msisdn has committed on day.
func (o *op) addDaily(msisdn string, day, amount int64) error {
	// Read again only by a later decision, a statement of its own: on PostgreSQL it goes
	// with the next statement (store.Later).
	return store.Later(o.ctx, o.tx, `INSERT INTO daily_totals (msisdn, day, amount) VALUES (?, ?, ?)
		ON CONFLICT (msisdn, day) DO UPDATE SET amount = daily_totals.amount + excluded.amount`, msisdn, day, amount)
}

// subDaily gives amount back to msisdn's day when a payment did not happen.
func (o *op) subDaily(msisdn string, day, amount int64) error {
	_, err := o.tx.ExecContext(o.ctx, subDailySQL[o.e.db.Dialect() == store.Postgres], amount, msisdn, day)
	return err
}

// subDailySQL is subDaily's statement on SQLite (false) and PostgreSQL (true), whose
// two-argument max is GREATEST.
var subDailySQL = map[bool]string{
	false: `UPDATE daily_totals SET amount = max(amount - ?, 0) WHERE msisdn = ? AND day = ?`,
	true:  `UPDATE daily_totals SET amount = GREATEST(amount - ?, 0) WHERE msisdn = ? AND day = ?`,
}

// storeRequestCounts writes the request counts a decision made: each subject's window
// and its count in it (one row a subject, overwritten when the window moves on).
func (o *op) storeRequestCounts(counts []requestCount) error {
	for _, c := range counts {
		if _, err := o.tx.ExecContext(o.ctx, `INSERT INTO request_counts (subject, window_start, count)
			VALUES (?1, ?2, ?3) ON CONFLICT (subject) DO UPDATE SET
				window_start = excluded.window_start, count = excluded.count`,
			c.Subject, c.Start, c.Count); err != nil {
			return fmt.Errorf("count request of %s: %w", c.Subject, err)
		}
	}
	return nil
}

// storeStop records that a number refuses a merchant's requests, or no longer does.
func (o *op) storeStop(s requestStop) error {
	var err error
	if s.Stopped {
		_, err = o.tx.ExecContext(o.ctx, `INSERT INTO request_stops (msisdn, merchant, at) VALUES (?, ?, ?)
			ON CONFLICT (msisdn, merchant) DO NOTHING`, s.MSISDN, s.Merchant, o.now.UnixMicro())
	} else {
		_, err = o.tx.ExecContext(o.ctx, `DELETE FROM request_stops WHERE msisdn = ? AND merchant = ?`, s.MSISDN, s.Merchant)
	}
	if err != nil {
		return fmt.Errorf("record requests stopped by %s: %w", Mask(s.MSISDN), err)
	}
	return nil
}
