package console

import (
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"unicode/utf8"
)

// The operators' writes of contract sections 11 and 14: settling a guaranteed payment
// held in escrow, refunding a merchant payment, changing a wallet's KYC tier. Each goes
// through the engine's own method (the API's), with the signed-in token's name as the
// actor; a refusal is shown on the page it came from, escaped, and changes nothing.

// maxReason is the longest reason the engine keeps (in characters).
const maxReason = 200

// settleEscrow releases a payment in escrow to its merchant or refunds it to its payer.
func (c *Console) settleEscrow(w http.ResponseWriter, r *http.Request, s *request) error {
	id := r.PathValue("id")
	action := r.PostFormValue("action")
	done := map[string]string{"release": "released", "refund": "escrow_refunded"}[action]
	if done == "" {
		return badRequest("action: release or refund")
	}
	reason := strings.TrimSpace(r.PostFormValue("reason"))
	if reason == "" || utf8.RuneCountInString(reason) > maxReason {
		return c.showPayment(w, r, s, http.StatusBadRequest, "Give a reason (1 to 200 characters).")
	}
	if err := c.b.SettleEscrow(r.Context(), id, action, reason, s.name); err != nil {
		if errors.Is(err, ErrRefused) || errors.Is(err, ErrNotFound) {
			return c.showPayment(w, r, s, http.StatusUnprocessableEntity, "Not settled: "+why(err))
		}
		return err
	}
	c.cfg.Log.Info().Str("token", s.name).Str("payment", id).Str("action", action).Str("reason", reason).
		Msg("console: payment in escrow settled")
	http.Redirect(w, r, "/console/payments/"+url.PathEscape(id)+"?done="+done, http.StatusSeeOther)
	return nil
}

// refund gives part or all of a completed merchant payment back to its payer; the
// reference makes a second click harmless.
func (c *Console) refund(w http.ResponseWriter, r *http.Request, s *request) error {
	q := RefundRequest{PaymentID: r.PathValue("id"), Reference: strings.TrimSpace(r.PostFormValue("reference")),
		Reason: strings.TrimSpace(r.PostFormValue("reason")), Actor: s.name}
	amount, err := parseMoney(r.PostFormValue("amount"))
	if err != nil {
		return c.showPayment(w, r, s, http.StatusBadRequest, "Not refunded: "+err.Error())
	}
	q.Amount = amount
	if q.Reference == "" || utf8.RuneCountInString(q.Reason) > maxReason {
		return c.showPayment(w, r, s, http.StatusBadRequest, "Not refunded: give a reference, and a reason of at most 200 characters.")
	}
	created, err := c.b.Refund(r.Context(), q)
	if err != nil {
		if errors.Is(err, ErrRefused) || errors.Is(err, ErrNotFound) {
			return c.showPayment(w, r, s, http.StatusUnprocessableEntity, "Not refunded: "+why(err))
		}
		return err
	}
	done := "refund_again"
	if created {
		done = "refunded"
		c.cfg.Log.Info().Str("token", s.name).Str("payment", q.PaymentID).Int64("amount", q.Amount).
			Str("reference", q.Reference).Msg("console: payment refunded")
	}
	http.Redirect(w, r, "/console/payments/"+url.PathEscape(q.PaymentID)+"?done="+done, http.StatusSeeOther)
	return nil
}

// accountTier changes a wallet's KYC tier. The id number goes to the engine and
// nowhere else: not into the page (the form is never filled back in), not into a log.
func (c *Console) accountTier(w http.ResponseWriter, r *http.Request, s *request) error {
	id := r.PathValue("id")
	idNumber := strings.TrimSpace(r.PostFormValue("id_number"))
	tier, err := strconv.Atoi(r.PostFormValue("tier"))
	if err != nil || tier < 0 || tier >= len(tierNames) {
		return c.showAccount(w, r, s, http.StatusBadRequest, "Choose tier 0, 1 or 2.")
	}
	reason := strings.TrimSpace(r.PostFormValue("reason"))
	if reason == "" || utf8.RuneCountInString(reason) > maxReason {
		return c.showAccount(w, r, s, http.StatusBadRequest, "Give a reason (1 to 200 characters).")
	}
	err = c.b.SetAccountTier(r.Context(), TierChange{Account: id, Tier: tier, IDNumber: idNumber, Reason: reason, Actor: s.name})
	if err != nil {
		if errors.Is(err, ErrRefused) || errors.Is(err, ErrNotFound) {
			return c.showAccount(w, r, s, http.StatusUnprocessableEntity, "Not changed: "+withoutSecret(why(err), idNumber))
		}
		return err
	}
	c.cfg.Log.Info().Str("token", s.name).Str("account", id).Int("tier", tier).Bool("id_number", idNumber != "").
		Msg("console: KYC tier changed")
	http.Redirect(w, r, "/console/accounts/"+url.PathEscape(id)+"?done=tier", http.StatusSeeOther)
	return nil
}

// withoutSecret hides secret in msg. The engine's refusals never repeat an id number;
// this keeps it so should one ever do.
func withoutSecret(msg, secret string) string {
	if secret == "" {
		return msg
	}
	return strings.ReplaceAll(msg, secret, "[id number]")
}
