package payswitch

import "context"

// Cancel ends the payment msisdn has waiting and releases its hold.
func (e *Engine) Cancel(ctx context.Context, ch Channel, msisdn, paymentID string) (Outcome, error) {
	var out Outcome
	err := e.write(ctx, func(o *op) error {
		p, err := o.pendingOf(msisdn)
		if err != nil {
			return err
		}
		s := pendingSnapshot{Now: o.now, Channel: ch, ReplyTo: e.replyTo(msisdn), AskedFor: paymentID, Waiting: p}
		if p == nil && paymentID == "" {
			if s.Request, err = o.snap.requested(msisdn); err != nil {
				return err
			}
		}
		out, err = o.apply(e.rules.cancel(s))
		return err
	})
	return out, err
}
