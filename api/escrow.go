package api

import (
	"context"
	"fmt"
	"net/http"

	payswitch "github.com/payswitch/payswitch/switch"
)

// Guarantees turns escrow on and off for a merchant's payments (contract section 11);
// *merchant.Guarantees has it.
type Guarantees interface {
	Set(ctx context.Context, merchantID string, on bool) error
	Guaranteed(ctx context.Context, merchantID string) (bool, error)
}

// EscrowSettler settles guaranteed payments held in escrow; the engine has it. Its
// refusals wrap payswitch.ErrInvalid (400), ErrNotFound (404), ErrNotInEscrow (409) or
// ErrConflict (409: the account to be paid is frozen or closed).
type EscrowSettler interface {
	SettleEscrow(ctx context.Context, id string, a payswitch.EscrowSettlement) (*payswitch.Payment, error)
}

var _ EscrowSettler = (*payswitch.Engine)(nil)

// mountEscrowRoutes mounts the routes of guaranteed payments: an operator's setting of a
// merchant, and an operator's settling of a payment in escrow.
func (s *Server) mountEscrowRoutes() {
	s.route("PATCH /api/v1/merchants/{id}", Operator,
		configured(s.cfg.Guarantees != nil, "guaranteed payments", s.patchMerchant))
	s.route("POST /api/v1/payments/{id}/escrow", Operator,
		configured(s.cfg.Escrow != nil, "guaranteed payments", s.settleEscrow))
}

// merchantJSON is a merchant's settings as PATCH /api/v1/merchants/{id} answers them.
type merchantJSON struct {
	ID     string `json:"id"`
	Escrow bool   `json:"escrow"`
}

// patchMerchant changes a merchant's settings: {"escrow": true} makes its payments from
// now on guaranteed, false makes them plain again (those made already keep theirs).
func (s *Server) patchMerchant(w http.ResponseWriter, r *http.Request) error {
	var body struct {
		Escrow *bool `json:"escrow"`
	}
	if err := decode(r, &body); err != nil {
		return err
	}
	if body.Escrow == nil {
		return fmt.Errorf("%w: escrow: true or false is required", payswitch.ErrInvalid)
	}
	m, err := s.ownMerchant(r)
	if err != nil {
		return err
	}
	if err := s.cfg.Guarantees.Set(r.Context(), m.ID, *body.Escrow); err != nil {
		return err
	}
	on, err := s.cfg.Guarantees.Guaranteed(r.Context(), m.ID)
	if err != nil {
		return err
	}
	s.cfg.Log.Info().Str("merchant", m.ID).Bool("escrow", on).Str("operator", callerOf(r).name).
		Msg("merchant's escrow set")
	writeJSON(w, http.StatusOK, merchantJSON{ID: m.ID, Escrow: on})
	return nil
}

// settleEscrow is an operator's settling of a guaranteed payment in escrow or disputed:
// {"action": "release" | "refund", "reason": "..."}; 200 with the payment.
func (s *Server) settleEscrow(w http.ResponseWriter, r *http.Request) error {
	var body struct {
		Action string `json:"action"`
		Reason string `json:"reason"`
	}
	if err := decode(r, &body); err != nil {
		return err
	}
	p, err := s.cfg.Escrow.SettleEscrow(r.Context(), r.PathValue("id"),
		payswitch.EscrowSettlement{Action: payswitch.EscrowAction(body.Action), Reason: body.Reason, Actor: actor(r)})
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, paymentView(p))
	return nil
}
