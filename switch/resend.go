package payswitch

import (
	"context"
	"errors"
	"fmt"

	"github.com/payswitch/payswitch/otp"
)

// Resend issues a new code for the waiting payment; the old code dies.
func (e *Engine) Resend(ctx context.Context, ch Channel, msisdn, paymentID string) (Outcome, error) {
	var out Outcome
	err := e.write(ctx, func(o *op) error {
		p, err := o.pendingOf(msisdn)
		if err != nil {
			return err
		}
		s := pendingSnapshot{Now: o.now, Channel: ch, ReplyTo: e.replyTo(msisdn), AskedFor: paymentID, Waiting: p}
		d := e.rules.resend(s)
		if d.Step == resendStep {
			var r codeResult
			r.code, r.expires, r.err = e.otp.Resend(o.ctx, o.tx, bindingOf(p), o.now)
			if r.err != nil && !errors.Is(r.err, otp.ErrResendLimit) && !errors.Is(r.err, otp.ErrResendTooSoon) {
				return fmt.Errorf("resend code for %s: %w", p.ID, r.err)
			}
			s.Code = &r
			d = e.rules.resend(s)
		}
		out, err = o.apply(d)
		return err
	})
	return out, err
}
