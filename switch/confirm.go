package payswitch

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/payswitch/payswitch/otp"
)

// Confirm checks code against the payment that msisdn has waiting and, when it is right,
// posts the held funds, sends the receipt and the payee's notice. paymentID, when not
// empty, must name that payment (a USSD or IVR session knows which one it started).
// A wrong code is counted; too many fail the payment and release its hold.
func (e *Engine) Confirm(ctx context.Context, ch Channel, msisdn, paymentID, code string) (Outcome, error) {
	a := e.confirmAhead(ctx, msisdn, code)
	var out Outcome
	err := e.write(ctx, func(o *op) (err error) {
		out, err = o.confirm(ch, msisdn, paymentID, code, a)
		return err
	})
	if err != nil {
		return Outcome{}, err
	}
	e.requests.WithLabelValues(string(ch), outcomeLabel(out.Problem, "confirmed")).Inc()
	return out, nil
}

// codeAhead is a code given for the payment its number had waiting, as the reader pool
// last saw it, digested for that payment's binding off the store's single writer (see
// ahead).
type codeAhead struct {
	p       *Payment
	attempt otp.Attempt
}

// confirmAhead prepares code for msisdn's waiting payment; nil when there is none to
// prepare (or the read failed: the write does it all then).
func (e *Engine) confirmAhead(ctx context.Context, msisdn, code string) *ahead[codeAhead] {
	n, err := e.Normalize(msisdn)
	if err != nil {
		return nil
	}
	p, err := loadPending(ctx, e.db.Reader(), n)
	if err != nil || p == nil {
		return nil
	}
	return &ahead[codeAhead]{key: p.ID, value: codeAhead{p: p, attempt: e.otp.Attempt(bindingOf(p), code)}}
}

// confirm is the confirmation's applier: it reads the snapshot, decides, takes the code
// check the decision asks for and writes the decision.
func (o *op) confirm(ch Channel, msisdn, paymentID, code string, a *ahead[codeAhead]) (Outcome, error) {
	e := o.e
	s := confirmSnapshot{Now: o.now, Channel: ch, Origin: OriginOf(o.ctx), ReplyTo: e.replyTo(msisdn), AskedFor: paymentID}
	var w *waiting
	if n, err := e.Normalize(msisdn); err == nil {
		s.Number = n
		if w, err = o.waitingFor(n, s.Origin); err != nil {
			return Outcome{}, err
		}
		if w == nil {
			if s.Lock.Until, err = o.lockedUntil(n); err != nil {
				return Outcome{}, err
			}
		}
	}
	var attempt otp.Attempt
	if w != nil {
		s.Lock, s.OriginWrong = w.lock, w.originWrong
		if got, ok := a.confirmed(w.id); ok {
			cp := *got.p
			s.Waiting, attempt = &cp, got.attempt
			s.Waiting.ExpiresAt, s.Waiting.UpdatedAt = time.UnixMicro(w.expiresAt).UTC(), time.UnixMicro(w.updatedAt).UTC()
		} else {
			var err error
			if s.Waiting, err = loadPayment(o.ctx, o.tx, w.id); err != nil {
				return Outcome{}, err
			}
			attempt = e.otp.Attempt(bindingOf(s.Waiting), code)
		}
	}
	d := e.rules.confirm(s)
	if d.Step == checkCodeStep {
		res, err := e.otp.CheckAttempt(o.ctx, o.tx, attempt, &w.code, o.now)
		if err != nil {
			return Outcome{}, fmt.Errorf("check code for %s: %w", s.Waiting.ID, err)
		}
		s.Check = &res
		d = e.rules.confirm(s)
	}
	return o.apply(d)
}

// waiting is a number's pending payment as a confirmation reads it: its ID, what of it
// can change while it waits, its code, the number's wrong codes and lock, and the wrong
// codes that the confirmation's origin has counted against the number.
type waiting struct {
	id                   string
	expiresAt, updatedAt int64
	code                 otp.Stored
	lock                 numberLock
	originWrong          wrongWindow
}

// waitingQuery reads what waitingFor returns for number ?1 and origin ?2. (A var only
// because otp names its columns; nothing changes it.)
var waitingQuery = `SELECT p.id, p.expires_at, p.updated_at, ` + otp.StoredColumns("c") + `,
		COALESCE(l.window_start, 0), COALESCE(l.wrong_codes, 0), COALESCE(l.locked_until, 0),
		COALESCE(w.window_start, 0), COALESCE(w.wrong_codes, 0)
	FROM payments AS p LEFT JOIN otp_codes AS c ON c.payment_id = p.id
		LEFT JOIN number_locks AS l ON l.msisdn = ?1
		LEFT JOIN origin_wrong_codes AS w ON w.msisdn = ?1 AND w.origin = ?2
	WHERE p.payer_msisdn = ?1 AND p.state = 'pending_otp'`

// waitingFor reads, in one statement, msisdn's pending payment with its code, its
// wrong-code counts and lock and what origin counted against it; nil when nothing waits.
func (o *op) waitingFor(msisdn, origin string) (*waiting, error) {
	var w waiting
	dest := append([]any{&w.id, &w.expiresAt, &w.updatedAt}, w.code.Dest()...)
	dest = append(dest, &w.lock.Start, &w.lock.Count, &w.lock.Until, &w.originWrong.Start, &w.originWrong.Count)
	err := o.tx.QueryRowContext(o.ctx, waitingQuery, msisdn, origin).Scan(dest...)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("pending payment: %w", err)
	}
	return &w, nil
}

// lockedUntil is msisdn's number_locks.locked_until (Unix µs), 0 when it has none or
// locks are off.
func (o *op) lockedUntil(msisdn string) (int64, error) {
	if o.e.cfg.Fraud.WrongCodesLock <= 0 {
		return 0, nil
	}
	var until int64
	err := o.tx.QueryRowContext(o.ctx, `SELECT locked_until FROM number_locks WHERE msisdn = ?`, msisdn).Scan(&until)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return 0, fmt.Errorf("number lock: %w", err)
	}
	return until, nil
}

// pendingOf reads msisdn's waiting payment inside the write; nil when none waits or
// msisdn is not a number.
func (o *op) pendingOf(msisdn string) (*Payment, error) {
	n, err := o.e.Normalize(msisdn)
	if err != nil {
		return nil, nil
	}
	return loadPending(o.ctx, o.tx, n)
}

// bindingOf is what p's code is bound to.
func bindingOf(p *Payment) otp.Binding {
	payee := p.PayeeAccount
	if p.Type == AirtimePayment {
		payee = p.PayeeAccount + ":" + p.TargetMSISDN
	}
	return otp.Binding{PaymentID: p.ID, Payer: p.PayerMSISDN, Payee: payee, Amount: p.Amount, Currency: p.Currency}
}
