package main

import (
	"context"

	"github.com/payswitch/payswitch/console"
	payswitch "github.com/payswitch/payswitch/switch"
)

// The console's writes and reads of contract sections 11 and 14, through the engine's
// own methods (those the API calls).

// SettleEscrow is the API's POST /api/v1/payments/{id}/escrow: the same engine call.
// The engine keeps the reason and the signed-in token's name in the payment's history.
func (b *consoleBackend) SettleEscrow(ctx context.Context, id, action, reason, actor string) error {
	_, err := b.a.engine.SettleEscrow(ctx, id, payswitch.EscrowSettlement{Action: payswitch.EscrowAction(action),
		Reason: reason, Actor: actor})
	return engineErr(err)
}

// Refund is the API's refund with an operator's token: any merchant's payment.
func (b *consoleBackend) Refund(ctx context.Context, r console.RefundRequest) (bool, error) {
	_, created, err := b.a.engine.Refund(ctx, payswitch.RefundRequest{PaymentID: r.PaymentID, Amount: r.Amount,
		Reference: r.Reference, Reason: r.Reason, Actor: r.Actor})
	return created, engineErr(err)
}

// SetAccountTier is the API's PATCH of an account's tier.
func (b *consoleBackend) SetAccountTier(ctx context.Context, c console.TierChange) error {
	_, err := b.a.engine.SetAccountTier(ctx, payswitch.AccountTierChange{Account: c.Account, Tier: c.Tier,
		IDNumber: c.IDNumber, Reason: c.Reason, Actor: c.Actor})
	return engineErr(err)
}

// paymentRefunds is the payment's refunds, oldest first, as the operator's
// GET /api/v1/payments/{id}/refunds lists them.
func (b *consoleBackend) paymentRefunds(ctx context.Context, id string) ([]console.Refund, error) {
	rs, err := b.a.engine.Refunds(ctx, id, "")
	if err != nil {
		return nil, err
	}
	out := make([]console.Refund, 0, len(rs))
	for _, r := range rs {
		out = append(out, console.Refund{ID: r.ID, Reference: r.Reference, Reason: r.Reason, Actor: r.Actor,
			TransferID: r.TransferID, Amount: r.Amount, Currency: r.Currency, CreatedAt: r.CreatedAt})
	}
	return out, nil
}
