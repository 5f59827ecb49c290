package ussd

import (
	"context"
	"fmt"
	"strconv"

	payswitch "github.com/payswitch/payswitch/switch"
)

// Buying a merchant's product (contract section 10's BUY, on the menu): at the merchant's
// amount prompt, 0 (never an amount) asks for a product code, then a quantity, then shows
// what it comes to, priced by the engine from the merchant's catalogue; 1 starts the
// payment as BUY by SMS does, with the same code step. A refusal the engine can tell
// before the payer's own state (no such product, a quantity whose total is outside the
// payment limits) asks the same question again with what was wrong.

// BuyInput, keyed at a merchant's amount prompt, buys one of its products instead.
const BuyInput = "0"

// A session keeps the quantity in a uint16: this fails to compile if MaxQuantity grows
// past it.
const _ uint16 = payswitch.MaxQuantity

// productCode acts on the product code of a purchase from the merchant s.field.
func (m *Menu) productCode(ctx context.Context, s *session, in string) (Screen, error) {
	if !payswitch.ValidProductCode(in) {
		return m.ask(s, m.static["bad_product"], "ask_product", nodeProductCode), nil
	}
	q, err := m.quote(ctx, s.field, in, 1)
	if err != nil {
		return Screen{}, err
	}
	switch q.Problem {
	case payswitch.ProblemNone, payswitch.ProblemBelowMin: // more than one may be enough
	case payswitch.ProblemUnknownMerchant:
		return m.ask(s, q.Text, "ask_merchant", nodeMerchantCode), nil
	default: // unknown or retired; or one costs more than any payment
		return m.ask(s, q.Text, "ask_product", nodeProductCode), nil
	}
	s.product = in
	line := m.texts.Render("product_price", map[string]string{
		"product": q.Item.Name, "price": payswitch.FormatMoney(m.engine.Currency(), q.Item.Price)})
	return m.ask(s, line, "ask_quantity", nodeQuantity), nil
}

// quantity acts on how many of s.product to buy.
func (m *Menu) quantity(ctx context.Context, s *session, in string) (Screen, error) {
	n, ok := payswitch.ParseQuantity(in)
	if !ok {
		return m.ask(s, m.static["bad_quantity"], "ask_quantity", nodeQuantity), nil
	}
	s.quantity = uint16(n)
	return m.offer(ctx, s, "")
}

// buyChoice acts on the answer to "Buy ...? 1. Yes 2. No".
func (m *Menu) buyChoice(ctx context.Context, s *session, in string) (Screen, error) {
	switch in {
	case "1":
		return m.request(ctx, s, 0)
	case "2":
		return m.end(s, m.static["buy_declined"]), nil
	}
	return m.offer(ctx, s, m.static["bad_choice"])
}

// offer prices s.quantity of s.product and asks whether to buy them, after problem if
// any; or asks again for what the price refuses.
func (m *Menu) offer(ctx context.Context, s *session, problem string) (Screen, error) {
	q, err := m.quote(ctx, s.field, s.product, int64(s.quantity))
	if err != nil {
		return Screen{}, err
	}
	switch q.Problem {
	case payswitch.ProblemNone:
	case payswitch.ProblemUnknownMerchant:
		return m.ask(s, q.Text, "ask_merchant", nodeMerchantCode), nil
	case payswitch.ProblemUnknownProduct: // retired since its code was keyed
		return m.ask(s, q.Text, "ask_product", nodeProductCode), nil
	default: // the total is outside the payment limits, or past any amount at all
		return m.ask(s, q.Text, "ask_quantity", nodeQuantity), nil
	}
	body := m.texts.Render("buy_confirm", map[string]string{
		"quantity": strconv.FormatInt(q.Item.Quantity, 10), "product": q.Item.Name,
		"amount": payswitch.FormatMoney(m.engine.Currency(), q.Total), "payee": q.Payee,
	})
	return m.show(s, joinLines(problem, body), m.static["buy_options"], false, nodeBuyConfirm), nil
}

func (m *Menu) quote(ctx context.Context, merchant, product string, quantity int64) (payswitch.Quote, error) {
	q, err := m.engine.Quote(ctx, merchant, product, quantity)
	if err != nil {
		return q, fmt.Errorf("ussd: price %d of product %s of %s: %w", quantity, product, merchant, err)
	}
	return q, nil
}
