package payswitch

import (
	"context"
	"errors"

	"github.com/payswitch/payswitch/otp"
	"github.com/payswitch/payswitch/store"
)

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

// recordCodeDelivery is the delivery receipt's applier.
func (o *op) recordCodeDelivery(paymentID, msisdn string, delivered bool, status string) error {
	e := o.e
	s := deliverySnapshot{Now: o.now, PaymentID: paymentID, MSISDN: msisdn, Delivered: delivered, Status: status}
	if e.rules.offersVoice(s) {
		p, err := o.snap.payment(paymentID)
		if err == nil {
			s.Payment = p
		}
	}
	d := e.rules.codeDelivery(s)
	if d.Step == reissueStep {
		var r codeResult
		r.code, r.expires, r.err = e.otp.Reissue(o.ctx, o.tx, bindingOf(s.Payment), o.now)
		if r.err != nil && !errors.Is(r.err, otp.ErrResendLimit) && !errors.Is(r.err, otp.ErrNoCode) {
			return r.err
		}
		s.Code = &r
		d = e.rules.codeDelivery(s)
	}
	_, err := o.apply(d)
	return err
}
