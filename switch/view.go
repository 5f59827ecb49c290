package payswitch

import "time"

// PaymentView is a payment as the API shows it and a webhook carries it: the contract's
// fields, then details. One type, so that a merchant's system reads the same payment
// from GET /api/v1/payments/{id} and from an event.
type PaymentView struct {
	ID          string `json:"id"`
	Type        string `json:"type"`
	Channel     string `json:"channel"`
	State       string `json:"state"`
	Payer       string `json:"payer"`
	Payee       string `json:"payee"`
	Amount      int64  `json:"amount"`
	Currency    string `json:"currency"`
	Fee         int64  `json:"fee"`
	Refunded    int64  `json:"refunded"`
	CreatedAt   string `json:"created_at"`
	UpdatedAt   string `json:"updated_at"`
	Items       []Item `json:"items,omitempty"`
	Description string `json:"description,omitempty"`
	PayerMSISDN string `json:"payer_msisdn,omitempty"`
	PayeeName   string `json:"payee_name,omitempty"`
	PayeeCode   string `json:"payee_code,omitempty"`
	PayeeMSISDN string `json:"payee_msisdn,omitempty"`
	Target      string `json:"target_msisdn,omitempty"`
	Reference   string `json:"reference,omitempty"`
	Reason      string `json:"reason,omitempty"`
	ReversalRef string `json:"reversal_reference,omitempty"`
	Carrier     string `json:"carrier,omitempty"`
	ExpiresAt   string `json:"expires_at,omitempty"`
	Store       string `json:"store,omitempty"`
	Escrow      bool   `json:"escrow,omitempty"`
	ReleaseAt   string `json:"release_at,omitempty"`
	Risk        string `json:"risk,omitempty"`
}

// View is p as the API and webhooks show it.
func (p *Payment) View() PaymentView {
	v := PaymentView{ID: p.ID, Type: string(p.Type), Channel: string(p.Channel), State: string(p.State),
		Payer: p.PayerAccount, Payee: p.PayeeAccount, Amount: p.Amount, Currency: p.Currency,
		CreatedAt: p.CreatedAt.UTC().Format(time.RFC3339Nano), UpdatedAt: p.UpdatedAt.UTC().Format(time.RFC3339Nano),
		PayerMSISDN: p.PayerMSISDN, PayeeName: p.PayeeName, PayeeCode: p.PayeeCode, PayeeMSISDN: p.PayeeMSISDN,
		Target: p.TargetMSISDN, Reference: p.Reference, Reason: p.Reason,
		ReversalRef: p.ReversalRef, Carrier: p.Carrier, Items: p.Items, Description: p.Description,
		Refunded: p.Refunded, Store: p.Store, Escrow: p.Escrow, Fee: p.Fee, Risk: p.Risk}
	if p.State == StateInEscrow && !p.ReleaseAt.IsZero() {
		v.ReleaseAt = p.ReleaseAt.UTC().Format(time.RFC3339)
	}
	if (p.State == StatePendingOTP || p.State == StateRequested) && !p.ExpiresAt.IsZero() {
		v.ExpiresAt = p.ExpiresAt.UTC().Format(time.RFC3339)
	}
	return v
}
