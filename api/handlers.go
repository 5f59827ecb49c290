package api

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	"github.com/payswitch/payswitch/ledger"
	payswitch "github.com/payswitch/payswitch/switch"
)

// accountJSON is an account as the API shows it.
type accountJSON struct {
	ID        string         `json:"id"`
	Type      string         `json:"type"`
	Name      string         `json:"name"`
	MSISDN    string         `json:"msisdn,omitempty"`
	Code      string         `json:"code,omitempty"`
	Currency  string         `json:"currency"`
	Status    string         `json:"status"`
	CreatedAt string         `json:"created_at"`
	Balance   ledger.Balance `json:"balance"`
}

func toAccountJSON(a ledger.Account) accountJSON {
	return accountJSON{ID: a.ID, Type: string(a.Type), Name: a.Name, MSISDN: a.MSISDN, Code: a.Code,
		Currency: a.Currency, Status: string(a.Status), CreatedAt: a.CreatedAt.UTC().Format(time.RFC3339),
		Balance: a.Balance}
}

func (s *Server) openAccount(w http.ResponseWriter, r *http.Request) error {
	var req struct {
		Type   string `json:"type"`
		MSISDN string `json:"msisdn"`
		Code   string `json:"code"`
		Name   string `json:"name"`
	}
	if err := decode(r, &req); err != nil {
		return err
	}
	a, err := s.engine.OpenAccount(r.Context(), payswitch.OpenAccount{
		Type: ledger.AccountType(req.Type), Name: req.Name, MSISDN: req.MSISDN, Code: req.Code})
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, toAccountJSON(a))
	return nil
}

// getAccount shows an account; a merchant key sees only its own, and another answers
// as an unknown account does.
func (s *Server) getAccount(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("id")
	if c := callerOf(r); c.role == Merchant && c.merchant != id {
		return fmt.Errorf("%w: account with id %s", ledger.ErrNotFound, id)
	}
	a, err := s.engine.Account(r.Context(), id)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, toAccountJSON(a))
	return nil
}

func (s *Server) findAccount(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	var a ledger.Account
	var err error
	switch {
	case q.Get("msisdn") != "" && q.Get("code") == "":
		n, nerr := s.engine.Normalize(q.Get("msisdn"))
		if nerr != nil {
			return fmt.Errorf("%w: msisdn: %q is not a phone number", payswitch.ErrInvalid, q.Get("msisdn"))
		}
		a, err = s.engine.AccountByMSISDN(r.Context(), n)
	case q.Get("code") != "" && q.Get("msisdn") == "":
		a, err = s.engine.AccountByCode(r.Context(), q.Get("code"))
	default:
		return fmt.Errorf("%w: give exactly one of msisdn or code", payswitch.ErrInvalid)
	}
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, toAccountJSON(a))
	return nil
}

func (s *Server) deposit(w http.ResponseWriter, r *http.Request) error {
	var req struct {
		Account   string `json:"account"`
		Amount    int64  `json:"amount"`
		Reference string `json:"reference"`
	}
	if err := decode(r, &req); err != nil {
		return err
	}
	if err := s.checkAmount(req.Amount); err != nil {
		return err
	}
	p, err := s.engine.Deposit(r.Context(), payswitch.Deposit{Account: req.Account, Amount: req.Amount, Reference: req.Reference})
	if err != nil {
		return err
	}
	// A repeated reference answers exactly as the first time did.
	writeJSON(w, http.StatusCreated, paymentView(p))
	return nil
}

// getPayment shows a payment (also as GET /api/v1/payment-requests/{id}); a merchant
// key sees only its merchant's, and another answers as an unknown payment does.
func (s *Server) getPayment(w http.ResponseWriter, r *http.Request) error {
	p, err := s.engine.Payment(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	if !mayRead(r, p) {
		return payswitch.ErrNotFound
	}
	writeJSON(w, http.StatusOK, paymentView(p))
	return nil
}

func (s *Server) listPayments(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	if q.Get("msisdn") == "" {
		return fmt.Errorf("%w: msisdn is required", payswitch.ErrInvalid)
	}
	limit, err := limitParam(q.Get("limit"))
	if err != nil {
		return err
	}
	ps, err := s.engine.Payments(r.Context(), q.Get("msisdn"), limit)
	if err != nil {
		return err
	}
	out := make([]payswitch.PaymentView, 0, len(ps))
	for _, p := range ps {
		out = append(out, paymentView(p))
	}
	writeJSON(w, http.StatusOK, map[string]any{"payments": out})
	return nil
}

func (s *Server) trialBalance(w http.ResponseWriter, r *http.Request) error {
	tb, err := s.engine.TrialBalance(r.Context())
	if err != nil {
		return err
	}
	type totals struct {
		Debits  int64 `json:"debits"`
		Credits int64 `json:"credits"`
	}
	cur := make(map[string]totals, len(tb))
	balanced := true
	for c, t := range tb {
		cur[c] = totals{Debits: t.Debits, Credits: t.Credits}
		balanced = balanced && t.Debits == t.Credits
	}
	seq, hash, err := s.engine.JournalHead(r.Context())
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"balanced": balanced, "currencies": cur,
		"journal": map[string]any{"last_seq": seq, "last_hash": hash}})
	return nil
}

func (s *Server) healthz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 3*time.Second)
	defer cancel()
	var h Health
	if s.cfg.Health != nil {
		h = s.cfg.Health(ctx)
	}
	if h.Links == nil {
		h.Links = []LinkHealth{}
	}
	status, word := http.StatusOK, "ok"
	if !h.Database.OK {
		status, word = http.StatusServiceUnavailable, "unavailable"
	} else {
		for _, l := range h.Links {
			if l.State != "bound" {
				word = "degraded"
			}
		}
		for _, r := range h.Replicas {
			if !r.OK {
				word = "degraded"
			}
		}
	}
	writeJSON(w, status, map[string]any{"status": word, "database": h.Database, "links": h.Links,
		"smpp_server": h.Server, "outbox": h.Outbox, "replicas": h.Replicas})
}

func (s *Server) reversePayment(w http.ResponseWriter, r *http.Request) error {
	var req struct {
		Reason    string `json:"reason"`
		Reference string `json:"reference"`
		Amount    int64  `json:"amount"`
	}
	if err := decode(r, &req); err != nil {
		return err
	}
	p, err := s.engine.Reverse(r.Context(), r.PathValue("id"),
		payswitch.Reversal{Reason: req.Reason, Reference: req.Reference, Amount: req.Amount})
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, paymentView(p))
	return nil
}

func (s *Server) airtimeTopup(w http.ResponseWriter, r *http.Request) error {
	var req struct {
		From      string `json:"from"`
		MSISDN    string `json:"msisdn"`
		Amount    int64  `json:"amount"`
		Reference string `json:"reference"`
	}
	if err := decode(r, &req); err != nil {
		return err
	}
	if err := s.checkAmount(req.Amount); err != nil {
		return err
	}
	p, err := s.engine.OperatorTopup(r.Context(), payswitch.OperatorTopup{From: req.From, MSISDN: req.MSISDN,
		Amount: req.Amount, Reference: req.Reference})
	if err != nil {
		return err
	}
	// 202: the money has left the float; the carrier's answer comes later (state).
	writeJSON(w, http.StatusAccepted, paymentView(p))
	return nil
}

// patchAccount freezes or reactivates an account with a reason (section 14); the
// operator's token name is recorded as who did it. The contract's tier and id_number
// are refused as not supported yet rather than as unknown fields, so that a client
// written against the contract learns why.
func (s *Server) patchAccount(w http.ResponseWriter, r *http.Request) error {
	var req struct {
		Status   *string         `json:"status"`
		Reason   string          `json:"reason"`
		Tier     json.RawMessage `json:"tier"`
		IDNumber json.RawMessage `json:"id_number"`
	}
	if err := decode(r, &req); err != nil {
		return err
	}
	if req.Tier != nil || req.IDNumber != nil {
		writeError(w, http.StatusBadRequest, "not_supported", "tier and id_number: not supported yet; nothing was changed")
		return nil
	}
	if req.Status == nil {
		return fmt.Errorf("%w: status: give \"frozen\" or \"active\"", payswitch.ErrInvalid)
	}
	a, err := s.engine.SetAccountStatus(r.Context(), payswitch.AccountStatusChange{Account: r.PathValue("id"),
		Status: ledger.Status(*req.Status), Reason: req.Reason, Actor: actor(r)})
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, toAccountJSON(a))
	return nil
}

// paymentView is p as the API shows it (the engine's view, shared with webhooks).
func paymentView(p *payswitch.Payment) payswitch.PaymentView { return p.View() }
