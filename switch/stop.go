package payswitch

import "context"

// StopRequests records that msisdn refuses every further request to pay from the
// merchant whose code is merchantCode (stop: STOP by SMS), or no longer refuses them
// (START), and answers on ch (by SMS for ChannelSMS). Requests already waiting are not
// affected; saying it twice changes nothing more.
func (e *Engine) StopRequests(ctx context.Context, ch Channel, msisdn, merchantCode string, stop bool) (Outcome, error) {
	var out Outcome
	err := e.write(ctx, func(o *op) error {
		s, err := o.stopSnapshot(ch, msisdn, merchantCode, stop)
		if err != nil {
			return err
		}
		out, err = o.apply(e.rules.stopRequests(s))
		return err
	})
	if err != nil {
		return Outcome{}, err
	}
	if out.OK() {
		what := "started"
		if stop {
			what = "stopped"
		}
		e.log.Info().Str("msisdn", Mask(e.replyTo(msisdn))).Str("merchant", merchantCode).Str("event", "requests_"+what).
			Msg("a number changed whether it takes a merchant's requests to pay")
	}
	return out, nil
}

// stopSnapshot reads what a STOP or START decides on, inside the write.
func (o *op) stopSnapshot(ch Channel, msisdn, code string, stop bool) (stopSnapshot, error) {
	s := stopSnapshot{Channel: ch, ReplyTo: o.e.replyTo(msisdn), Code: code, Stop: stop}
	n, err := o.e.Normalize(msisdn)
	if err != nil {
		return s, nil // no number, no account
	}
	s.Number = n
	if s.Payer, err = o.accountOrNil(o.lt.AccountByMSISDN(o.ctx, n)); err != nil || s.Payer == nil {
		return s, err
	}
	if !ValidMerchantCode(code) {
		return s, nil
	}
	if s.Merchant, err = o.accountOrNil(o.lt.AccountByCode(o.ctx, code)); err != nil || s.Merchant == nil {
		return s, err
	}
	s.Stopped, s.Stops, err = o.snap.stopState(n, s.Merchant.ID)
	return s, err
}
