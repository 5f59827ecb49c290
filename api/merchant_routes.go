package api

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/payswitch/payswitch/ledger"
	payswitch "github.com/payswitch/payswitch/switch"
)

// mountMerchantRoutes mounts the routes of contract section 10. Those a merchant key may
// use keep it to its own merchant: anything of another merchant answers 404, exactly as
// something that does not exist, so that a key cannot learn what other merchants have.
func (s *Server) mountMerchantRoutes() {
	keys, cat, hooks := s.cfg.Keys != nil, s.cfg.Catalog != nil, s.cfg.Webhooks != nil
	s.route("POST /api/v1/merchants/{id}/keys", Operator, configured(keys, "merchant keys", s.createKey))
	s.route("GET /api/v1/merchants/{id}/keys", Operator, configured(keys, "merchant keys", s.listKeys))
	s.route("DELETE /api/v1/merchants/{id}/keys/{key}", Operator, configured(keys, "merchant keys", s.revokeKey))
	s.merchantRoute("GET /api/v1/merchants/{id}/payments", Auditor, s.merchantPayments)
	s.merchantRoute("POST /api/v1/merchants/{id}/products", Operator, configured(cat, "products", s.addProduct))
	s.merchantRoute("GET /api/v1/merchants/{id}/products", Auditor, configured(cat, "products", s.listProducts))
	s.merchantRoute("DELETE /api/v1/merchants/{id}/products/{code}", Operator, configured(cat, "products", s.retireProduct))
	s.merchantRoute("PUT /api/v1/merchants/{id}/webhook", Operator, configured(hooks, "webhooks", s.setWebhook))
	s.merchantRoute("GET /api/v1/merchants/{id}/webhook/deliveries", Auditor, configured(hooks, "webhooks", s.webhookDeliveries))
	s.merchantRoute("POST /api/v1/payment-requests", Operator, configured(s.cfg.Requests != nil, "requests to pay", s.requestPayment))
	s.merchantRoute("GET /api/v1/payment-requests/{id}", Auditor, s.getPayment)
	// Refunds (contract section 11): a merchant key refunds only its own payments.
	s.merchantRoute("POST /api/v1/payments/{id}/refund", Operator, s.refundPayment)
	s.merchantRoute("GET /api/v1/payments/{id}/refunds", Auditor, s.listRefunds)
	s.mountStoreRoutes()
}

// configured is h when the part it needs is configured (on), else a handler that
// answers 501 not_configured naming part, after the route's own checks of the token.
func configured(on bool, part string, h func(w http.ResponseWriter, r *http.Request) error) func(w http.ResponseWriter, r *http.Request) error {
	if on {
		return h
	}
	return func(http.ResponseWriter, *http.Request) error { return fmt.Errorf("%w: %s", errNotConfigured, part) }
}

// ownMerchant returns the merchant account that the path's {id} names, as r's caller may
// see it: a merchant key sees only its own merchant, and an ID that is another
// merchant's, or not a merchant's account at all, is not found.
func (s *Server) ownMerchant(r *http.Request) (ledger.Account, error) {
	return s.merchantAccount(r, r.PathValue("id"))
}

// merchantAccount is ownMerchant for the merchant ID id.
func (s *Server) merchantAccount(r *http.Request, id string) (ledger.Account, error) {
	notFound := fmt.Errorf("%w: no merchant %s", payswitch.ErrNotFound, id)
	if c := callerOf(r); c.role == Merchant && c.merchant != id {
		return ledger.Account{}, notFound
	}
	a, err := s.engine.Account(r.Context(), id)
	switch {
	case errors.Is(err, ledger.ErrNotFound):
		return ledger.Account{}, notFound
	case err != nil:
		return ledger.Account{}, err
	case a.Type != ledger.Merchant:
		return ledger.Account{}, notFound
	}
	return a, nil
}

// mayRead reports whether r's caller may see p: a merchant key sees the payments its
// merchant received or made (a refund), a token every payment.
func mayRead(r *http.Request, p *payswitch.Payment) bool {
	c := callerOf(r)
	return c.role != Merchant || p.PayeeAccount == c.merchant || p.PayerAccount == c.merchant
}

// merchantPaymentsJSON is a page of a merchant's payments: NextCursor, null on the last
// page, asks for the next one as ?cursor=.
type merchantPaymentsJSON struct {
	Payments   []payswitch.PaymentView `json:"payments"`
	NextCursor *string                 `json:"next_cursor"`
}

// merchantPayments lists the merchant's payments, newest first, a page at a time:
// ?state=, ?from= and ?to= (RFC 3339; from inclusive, to exclusive), ?limit= (1 to 100,
// 20 by default) and ?cursor= (the previous page's next_cursor).
func (s *Server) merchantPayments(w http.ResponseWriter, r *http.Request) error {
	a, err := s.ownMerchant(r)
	if err != nil {
		return err
	}
	q := r.URL.Query()
	f := payswitch.MerchantPaymentFilter{State: payswitch.State(q.Get("state")), Cursor: q.Get("cursor")}
	if f.Limit, err = limitParam(q.Get("limit")); err != nil {
		return err
	}
	for _, t := range []struct {
		name string
		into *time.Time
	}{{"from", &f.From}, {"to", &f.To}} {
		v := q.Get(t.name)
		if v == "" {
			continue
		}
		if *t.into, err = time.Parse(time.RFC3339, v); err != nil {
			return fmt.Errorf("%w: %s: a time such as 2026-12-01T00:00:00Z (RFC 3339)", payswitch.ErrInvalid, t.name)
		}
	}
	ps, next, err := s.engine.MerchantPayments(r.Context(), a.ID, f)
	if err != nil {
		return err
	}
	out := merchantPaymentsJSON{Payments: make([]payswitch.PaymentView, 0, len(ps))}
	for _, p := range ps {
		out.Payments = append(out.Payments, paymentView(p))
	}
	if next != "" {
		out.NextCursor = &next
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// limitParam reads a ?limit= of 1 to 100; 20 when it is not given.
func limitParam(v string) (int, error) {
	if v == "" {
		return 20, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > 100 {
		return 0, fmt.Errorf("%w: limit: a whole number from 1 to 100", payswitch.ErrInvalid)
	}
	return n, nil
}

// rfc3339 is t as the API writes times; "" for the zero time.
func rfc3339(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339)
}
