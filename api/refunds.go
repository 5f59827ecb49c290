package api

import (
	"errors"
	"net/http"

	payswitch "github.com/payswitch/payswitch/switch"
)

// refundBody is the body of POST /api/v1/payments/{id}/refund (contract section 11).
type refundBody struct {
	Amount    int64  `json:"amount"`
	Reference string `json:"reference"`
	Reason    string `json:"reason"`
}

// refundJSON is a refund as POST .../refund answers it: the refund, and the payment as
// it is now (its refunded, and its state: refunded once all of it went back).
type refundJSON struct {
	payswitch.RefundView
	Payment payswitch.PaymentView `json:"payment"`
}

// refundPayment gives part or all of a completed merchant payment back to its payer:
// 201 with the refund and the payment; 200 with the first refund when its reference was
// used before for the same payment and amount (nothing more moves). A merchant key
// refunds only its own merchant's payments: another's answers 404, as a missing one does.
func (s *Server) refundPayment(w http.ResponseWriter, r *http.Request) error {
	var body refundBody
	if err := decode(r, &body); err != nil {
		return err
	}
	c := callerOf(r)
	rf, created, err := s.engine.Refund(r.Context(), payswitch.RefundRequest{PaymentID: r.PathValue("id"),
		Merchant: c.merchant, Amount: body.Amount, Reference: body.Reference, Reason: body.Reason, Actor: c.name})
	if err != nil {
		if refuseRefund(w, err) {
			return nil
		}
		return err
	}
	p, err := s.engine.Payment(r.Context(), rf.PaymentID)
	if err != nil {
		return err
	}
	status := http.StatusOK
	if created {
		status = http.StatusCreated
	}
	writeJSON(w, status, refundJSON{RefundView: rf.View(), Payment: paymentView(p)})
	return nil
}

// refundsJSON is a payment's refunds, oldest first.
type refundsJSON struct {
	Refunds []payswitch.RefundView `json:"refunds"`
}

// listRefunds lists a payment's refunds, oldest first; a merchant key sees only its own
// merchant's payments' refunds.
func (s *Server) listRefunds(w http.ResponseWriter, r *http.Request) error {
	rs, err := s.engine.Refunds(r.Context(), r.PathValue("id"), callerOf(r).merchant)
	if err != nil {
		return err
	}
	out := refundsJSON{Refunds: make([]payswitch.RefundView, 0, len(rs))}
	for _, rf := range rs {
		out.Refunds = append(out.Refunds, rf.View())
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// refundRefusals are the refund's refusals with their own codes, which fail would fold
// into conflict or invalid_request: each is a 409 that says what about the payment or
// the merchant's balance stands in the way. Nothing was moved.
var refundRefusals = []struct {
	err  error
	code string
}{
	{payswitch.ErrRefundTooMuch, "refund_exceeds_payment"},
	{payswitch.ErrNotRefundable, "not_refundable"},
	{payswitch.ErrRefundLimit, "limit_reached"},
	{payswitch.ErrInsufficientFund, "insufficient_funds"},
	{payswitch.ErrConflict, "reference_conflict"},
}

// refuseRefund answers err when it is one of refundRefusals, and reports whether it was.
func refuseRefund(w http.ResponseWriter, err error) bool {
	for _, c := range refundRefusals {
		if errors.Is(err, c.err) {
			writeError(w, http.StatusConflict, c.code, cleanMessage(err))
			return true
		}
	}
	return false
}
