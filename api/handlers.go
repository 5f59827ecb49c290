package api

import (
	"context"
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
	// Tier is a wallet's KYC tier (contract section 14): 0, 1 or 2; other accounts
	// have none.
	Tier *int `json:"tier,omitempty"`
}

func toAccountJSON(a ledger.Account) accountJSON {
	return accountJSON{ID: a.ID, Type: string(a.Type), Name: a.Name, MSISDN: a.MSISDN, Code: a.Code,
		Currency: a.Currency, Status: string(a.Status), CreatedAt: a.CreatedAt.UTC().Format(time.RFC3339),
		Balance: a.Balance}
}

// accountView is a as the API shows it, with its tier when it is a wallet.
func (s *Server) accountView(ctx context.Context, a ledger.Account) (accountJSON, error) {
	v := toAccountJSON(a)
	if a.Type == ledger.Wallet {
		tier, err := s.engine.AccountTier(ctx, a.ID)
		if err != nil {
			return v, err
		}
		v.Tier = &tier
	}
	return v, nil
}

// writeAccount answers with a as the API shows it.
func (s *Server) writeAccount(w http.ResponseWriter, r *http.Request, status int, a ledger.Account) error {
	v, err := s.accountView(r.Context(), a)
	if err != nil {
		return err
	}
	writeJSON(w, status, v)
	return nil
}

func (s *Server) openAccount(w http.ResponseWriter, r *http.Request) error {
	var req struct {
		Type   string `json:"type"`
		MSISDN string `json:"msisdn"`
		Code   string `json:"code"`
		Name   string `json:"name"`
		// A wallet's KYC tier (default 1) and, with tier 2, the holder's id number.
		Tier     *int   `json:"tier"`
		IDNumber string `json:"id_number"`
	}
	if err := decode(r, &req); err != nil {
		return err
	}
	a, err := s.engine.OpenAccount(r.Context(), payswitch.OpenAccount{
		Type: ledger.AccountType(req.Type), Name: req.Name, MSISDN: req.MSISDN, Code: req.Code,
		Tier: req.Tier, IDNumber: req.IDNumber})
	if err != nil {
		return err
	}
	return s.writeAccount(w, r, http.StatusCreated, a)
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
	return s.writeAccount(w, r, http.StatusOK, a)
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
	return s.writeAccount(w, r, http.StatusOK, a)
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

// patchAccount changes an account for an operator (contract section 14): its status
// (freeze, reactivate) with a reason, or a wallet's KYC tier with a reason and, for tier
// 2, the holder's id number (forget_id_number forgets the one on file when lowering).
// One change a request; the operator's token name is recorded as who did it.
func (s *Server) patchAccount(w http.ResponseWriter, r *http.Request) error {
	var req struct {
		Status         *string `json:"status"`
		Reason         string  `json:"reason"`
		Tier           *int    `json:"tier"`
		IDNumber       *string `json:"id_number"`
		ForgetIDNumber bool    `json:"forget_id_number"`
	}
	if err := decode(r, &req); err != nil {
		return err
	}
	var a ledger.Account
	var err error
	switch {
	case req.Status != nil && (req.Tier != nil || req.IDNumber != nil || req.ForgetIDNumber):
		return fmt.Errorf("%w: give status or tier, not both: one change a request", payswitch.ErrInvalid)
	case req.Status != nil:
		a, err = s.engine.SetAccountStatus(r.Context(), payswitch.AccountStatusChange{Account: r.PathValue("id"),
			Status: ledger.Status(*req.Status), Reason: req.Reason, Actor: actor(r)})
	case req.Tier != nil:
		c := payswitch.AccountTierChange{Account: r.PathValue("id"), Tier: *req.Tier, ForgetIDNumber: req.ForgetIDNumber,
			Reason: req.Reason, Actor: actor(r)}
		if req.IDNumber != nil {
			c.IDNumber = *req.IDNumber
		}
		a, err = s.engine.SetAccountTier(r.Context(), c)
	case req.IDNumber != nil || req.ForgetIDNumber:
		return fmt.Errorf("%w: tier: an id number is given with the tier it is for (2)", payswitch.ErrInvalid)
	default:
		return fmt.Errorf("%w: give status (\"frozen\" or \"active\") or tier (0, 1 or 2)", payswitch.ErrInvalid)
	}
	if err != nil {
		return err
	}
	return s.writeAccount(w, r, http.StatusOK, a)
}

// paymentView is p as the API shows it (the engine's view, shared with webhooks).
func paymentView(p *payswitch.Payment) payswitch.PaymentView { return p.View() }
