package api

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"

	payswitch "github.com/payswitch/payswitch/switch"
)

// A refund's refusals answer 409 with their own code; anything else is left to fail.
func TestRefuseRefund(t *testing.T) {
	for err, code := range map[error]string{
		payswitch.ErrRefundTooMuch:    "refund_exceeds_payment",
		payswitch.ErrNotRefundable:    "not_refundable",
		payswitch.ErrRefundLimit:      "limit_reached",
		payswitch.ErrInsufficientFund: "insufficient_funds",
		payswitch.ErrConflict:         "reference_conflict",
	} {
		w := httptest.NewRecorder()
		if !refuseRefund(w, fmt.Errorf("%w: the merchant has KES 30.00 available", err)) {
			t.Fatalf("%v not answered", err)
		}
		var b errorBody
		if err := json.Unmarshal(w.Body.Bytes(), &b); err != nil || w.Code != http.StatusConflict || b.Error.Code != code ||
			b.Error.Message == "" {
			t.Fatalf("%v: %d %s", err, w.Code, w.Body)
		}
	}
	for _, err := range []error{payswitch.ErrNotFound, payswitch.ErrInvalid} {
		if refuseRefund(httptest.NewRecorder(), err) {
			t.Fatalf("%v answered as a refusal", err)
		}
	}
}
