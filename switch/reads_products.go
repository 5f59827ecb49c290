package payswitch

import (
	"context"
	"errors"

	"github.com/payswitch/payswitch/ledger"
)

// MaxQuantity is the most of one product a purchase may buy: BUY's quantity, a request's
// item, the USSD menu's quantity prompt.
const MaxQuantity = maxQuantity

// Quote is what buying some of a merchant's product would cost, for a channel to show
// before the payer commits to it (USSD's "Buy 2 x Sugar 1kg for KES 300.00?").
type Quote struct {
	// Item is the product as its catalogue sells it now, with the quantity asked; empty
	// when the merchant or the product is refused.
	Item Item
	// Total is price × quantity in minor units; math.MaxInt64 when it passes any amount
	// the engine takes (it never overflows).
	Total int64
	// Payee names the merchant as the engine's messages do: "Mama Mboga (55501)"; empty
	// when there is no such merchant.
	Payee string
	// Problem says why the purchase would be refused whoever asked: ProblemUnknownMerchant,
	// ProblemUnknownProduct (retired, or never sold), ProblemBadQuantity, ProblemBelowMin
	// or ProblemAboveMax; ProblemNone when it would not. Text is the refusal in the
	// engine's words, as BUY by SMS is answered.
	Problem Problem
	Text    string
}

// OK reports whether the purchase may be asked for.
func (q Quote) OK() bool { return q.Problem == ProblemNone }

// Quote prices quantity of the product productCode of the merchant whose code is
// merchantCode, from the catalogue BUY prices from (Deps.Products), and checks what a
// request would check of it before looking at the payer: the merchant, the product, the
// quantity (1 to MaxQuantity) and the total against the smallest and the largest payment.
// The payer's funds and daily limit are Request's to check, and Request prices the items
// again: the catalogue may change in between. It changes nothing and reads the committed
// state, off the store's writer; an error is a failure to read, never a refusal.
func (e *Engine) Quote(ctx context.Context, merchantCode, productCode string, quantity int64) (Quote, error) {
	var q Quote
	refuse := func(p Problem, vars map[string]string) (Quote, error) {
		q.Problem, q.Text = p, e.texts.Render(string(p), vars)
		return q, nil
	}
	if !ValidMerchantCode(merchantCode) {
		return refuse(ProblemUnknownMerchant, map[string]string{"code": merchantCode})
	}
	m, till, err := e.merchantByCode(ctx, merchantCode)
	switch {
	case errors.Is(err, ledger.ErrNotFound), err == nil && m.Type != ledger.Merchant:
		return refuse(ProblemUnknownMerchant, map[string]string{"code": merchantCode})
	case err != nil:
		return Quote{}, err
	}
	payee := &Payment{Type: MerchantPayment, PayeeName: m.Name, PayeeCode: m.Code}
	payTill(payee, till)
	q.Payee = payee.payeeLabel()
	if !ValidProductCode(productCode) {
		return refuse(ProblemUnknownProduct, map[string]string{"payee": q.Payee, "product": productCode})
	}
	if quantity < 1 || quantity > maxQuantity {
		return refuse(ProblemBadQuantity, nil)
	}
	pu, err := price(ctx, e.products, m.ID, []ItemRequest{{Product: productCode, Quantity: quantity}})
	if err != nil {
		return Quote{}, err
	}
	if pu.unknown != "" {
		return refuse(ProblemUnknownProduct, map[string]string{"payee": q.Payee, "product": pu.unknown})
	}
	q.Item, q.Total = pu.items[0], pu.total
	switch {
	case q.Total < e.cfg.MinAmount:
		return refuse(ProblemBelowMin, map[string]string{"min": e.money(e.cfg.MinAmount)})
	case q.Total > e.cfg.MaxAmount:
		return refuse(ProblemAboveMax, map[string]string{"max": e.money(e.cfg.MaxAmount)})
	}
	return q, nil
}
