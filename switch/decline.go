package payswitch

import "context"

// Decline refuses the merchant's request to pay that msisdn has waiting (NO by SMS): the
// request is declined, its code dies, the payer is told by SMS and the merchant's system
// gets request.declined. paymentID, when not empty, must name that request (a USSD push
// knows which one it showed); "" is whichever waits. With none waiting the answer says
// so (by SMS for ChannelSMS).
func (e *Engine) Decline(ctx context.Context, ch Channel, msisdn, paymentID string) (Outcome, error) {
	var out Outcome
	err := e.write(ctx, func(o *op) error {
		s := declineSnapshot{Now: o.now, Channel: ch, ReplyTo: e.replyTo(msisdn), AskedFor: paymentID}
		if n, err := e.Normalize(msisdn); err == nil {
			if s.Request, err = o.snap.requested(n); err != nil {
				return err
			}
			if err := o.loadItems(s.Request); err != nil {
				return err
			}
		}
		var err error
		out, err = o.apply(e.rules.decline(s))
		return err
	})
	if err != nil {
		return Outcome{}, err
	}
	e.requests.WithLabelValues(string(ch), outcomeLabel(out.Problem, "declined")).Inc()
	return out, nil
}
