package payswitch

import (
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/payswitch/payswitch/otp"
)

// ProblemOriginLimited refuses, unchecked, a code that arrived through a callback origin
// which has used up its wrong codes for the number (see originLimit).
const ProblemOriginLimited Problem = "origin_limited"

func init() {
	DefaultTexts[string(ProblemOriginLimited)] = "Too many wrong codes came through this channel. " +
		"To confirm {id}, reply to our SMS with the code."
	DefaultTexts["locked_failed"] = "Too many wrong codes: {id} failed and {amount} is available again. " +
		"This number is locked until {until}. Not you? Call customer care."
}

// failWrong ends p after too many wrong codes: its own (otp.max_attempts), or the
// number's when lockedUntil is set (the last code locked the number, or it was locked
// already). The hold is voided at once and the payer told by SMS, whatever channel the
// code came through; when the number is locked, the text says so and until when,
// instead of promising tries that the lock has taken away.
func (o *op) failWrong(p *Payment, ch Channel, lockedUntil time.Time) (Outcome, error) {
	e := o.e
	v := e.vars(p)
	detail, reason, key := "", "too many wrong codes", "failed_attempts"
	if !lockedUntil.IsZero() {
		v["until"] = e.lockTime(lockedUntil, o.now)
		detail = "number locked until " + lockedUntil.UTC().Format(time.RFC3339)
		reason, key = "too many wrong codes: number locked", "locked_failed"
	}
	if err := o.authEvent(p, ch, otp.EventExhausted, detail); err != nil {
		return Outcome{}, err
	}
	if err := o.release(p, EvFail, reason); err != nil {
		return Outcome{}, err
	}
	text := e.texts.Render(key, v)
	if err := o.sms(p.PayerMSISDN, "failed", p.ID, text, false); err != nil {
		return Outcome{}, err
	}
	return Outcome{Payment: p, Problem: ProblemTooManyAttempts, Text: text, LockedUntil: lockedUntil}, nil
}

// originLimit is how many wrong codes one callback origin may count against a number
// within the lock window; on is false when there is no such limit (the lock is off).
//
// A USSD or IVR callback names the number it speaks for on the gateway's word alone, so a
// forged callback could otherwise enter wrong codes for anyone's pending payment and lock
// that number, hour after hour. Capped below the lock (by default), one origin alone can
// never lock a number; and once it reaches its cap its further entries for that number
// are refused without being checked, so they give no more guesses either. The owner can
// still confirm by SMS, for which the carrier vouches.
func (f Fraud) originLimit() (limit int, on bool) {
	switch {
	case f.WrongCodesLock <= 0:
		return 0, false
	case f.WrongCodesPerOrigin > 0:
		return f.WrongCodesPerOrigin, true
	}
	return f.WrongCodesLock - 1, true
}

// waiting is a number's pending payment as a confirmation reads it: its ID, what of it
// can change while it waits, its code, the number's wrong-code lock and the wrong codes
// that the confirmation's origin has counted against the number in the current window.
type waiting struct {
	id                   string
	expiresAt, updatedAt int64
	code                 otp.Stored
	lockedUntil          time.Time
	originWrong          int
}

// waitingQuery reads what waitingFor returns for number ?1, origin ?2 and a window that
// started after ?3. (A var only because otp names its columns; nothing changes it.)
var waitingQuery = `SELECT p.id, p.expires_at, p.updated_at, ` + otp.StoredColumns("c") + `,
		COALESCE((SELECT locked_until FROM number_locks WHERE msisdn = ?1), 0),
		COALESCE((SELECT wrong_codes FROM origin_wrong_codes
			WHERE msisdn = ?1 AND origin = ?2 AND window_start > ?3), 0)
	FROM payments AS p LEFT JOIN otp_codes AS c ON c.payment_id = p.id
	WHERE p.payer_msisdn = ?1 AND p.state = 'pending_otp'`

// waitingFor reads, in one statement, msisdn's pending payment with its code, its lock
// and what origin counted against it; nil when nothing waits.
func (o *op) waitingFor(msisdn, origin string) (*waiting, error) {
	var w waiting
	var until int64
	windowAfter := o.now.Add(-o.e.cfg.Fraud.LockWindow).UnixMicro()
	dest := append([]any{&w.id, &w.expiresAt, &w.updatedAt}, w.code.Dest()...)
	err := o.tx.QueryRowContext(o.ctx, waitingQuery, msisdn, origin, windowAfter).Scan(append(dest, &until, &w.originWrong)...)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("pending payment: %w", err)
	}
	w.lockedUntil = o.lockEnd(until)
	return &w, nil
}

// originSpent reports whether origin has used up its wrong codes for w's number.
func (o *op) originSpent(w *waiting, origin string) bool {
	limit, on := o.e.cfg.Fraud.originLimit()
	return on && origin != "" && w.originWrong >= limit
}

// refuseOrigin answers a code from an origin that has used up its wrong codes for p's
// payer, without checking it. Nothing is written: the code was not tried, and an origin
// that keeps sending must not grow the authentication history (payswitch_requests_total
// counts these as origin_limited, and the origin's reaching its limit was logged).
func (o *op) refuseOrigin(p *Payment) Outcome {
	return o.refuse(ProblemOriginLimited, p, nil)
}

// countOriginWrong notes a wrong code that origin delivered for msisdn, in the window
// that countWrongCode keeps for the number, and forgets the number's expired windows of
// other origins (so that the table holds only live windows of numbers being guessed).
func (o *op) countOriginWrong(msisdn, origin string) error {
	f := o.e.cfg.Fraud
	now := o.now.UnixMicro()
	var count int
	err := o.tx.QueryRowContext(o.ctx, `INSERT INTO origin_wrong_codes (msisdn, origin, window_start, wrong_codes)
		VALUES (?1, ?2, ?3, 1)
		ON CONFLICT (msisdn, origin) DO UPDATE SET
			wrong_codes = CASE WHEN window_start <= ?3 - ?4 THEN 1 ELSE wrong_codes + 1 END,
			window_start = CASE WHEN window_start <= ?3 - ?4 THEN ?3 ELSE window_start END
		RETURNING wrong_codes`, msisdn, origin, now, f.LockWindow.Microseconds()).Scan(&count)
	if err != nil {
		return fmt.Errorf("count wrong code of %s: %w", origin, err)
	}
	if _, err := o.tx.ExecContext(o.ctx, `DELETE FROM origin_wrong_codes
		WHERE msisdn = ? AND origin <> ? AND window_start <= ?`, msisdn, origin, now-f.LockWindow.Microseconds()); err != nil {
		return fmt.Errorf("forget old wrong codes: %w", err)
	}
	if limit, _ := f.originLimit(); count == limit {
		o.after = append(o.after, func() {
			o.e.log.Warn().Str("msisdn", Mask(msisdn)).Str("origin", origin).Int("wrong_codes", count).
				Str("event", "origin_limited").Msg("callback origin used up its wrong codes for a number; its further codes are refused")
		})
	}
	return nil
}
