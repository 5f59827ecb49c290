package ussd

import (
	"context"
	"errors"
	"fmt"

	payswitch "github.com/payswitch/payswitch/switch"
)

// request asks the engine for the payment the session has collected.
func (m *Menu) request(ctx context.Context, s *session, amount int64) (Screen, error) {
	r := payswitch.Request{Channel: payswitch.ChannelUSSD, Payer: s.phone, Amount: amount}
	numberNode := nodeSendNumber
	switch s.node {
	case nodeSendAmount:
		r.Type, r.Recipient = payswitch.TransferPayment, s.field
	case nodeMerchantAmount:
		r.Type, r.Merchant = payswitch.MerchantPayment, s.field
	case nodeAirtimeAmount:
		r.Type, r.Recipient, numberNode = payswitch.AirtimePayment, s.field, nodeAirtimeNumber
	case nodeWithdrawAmount: // cash out at an agent (contract section 14)
		r.Type, r.Recipient, numberNode = payswitch.WithdrawalPayment, s.field, nodeWithdrawAgent
	case nodeBuyConfirm:
		// A purchase: the engine prices the items again, as for BUY by SMS.
		r.Type, r.Merchant = payswitch.MerchantPayment, s.field
		r.Items = []payswitch.ItemRequest{{Product: s.product, Quantity: int64(s.quantity)}}
	}
	out, err := m.engine.Request(ctx, r)
	if err != nil {
		return Screen{}, fmt.Errorf("ussd: request %s: %w", r.Type, err)
	}
	if out.OK() && out.Payment != nil && out.Payment.State != payswitch.StatePendingOTP {
		return m.end(s, out.Text), nil // graded low with frictionless on: done without a code
	}
	switch out.Problem {
	case payswitch.ProblemNone, payswitch.ProblemPendingExists:
		if out.Payment == nil {
			break
		}
		key := codePrompt(out.Payment)
		if !out.OK() {
			key = "pending_exists"
		}
		s.payment, s.field, s.product = out.Payment.ID, "", ""
		return m.show(s, m.texts.Render(key, m.vars(out.Payment)), m.static["code_options"], false, nodeCode), nil
	case payswitch.ProblemUnknownMerchant:
		return m.ask(s, out.Text, "ask_merchant", nodeMerchantCode), nil
	case payswitch.ProblemUnknownProduct: // retired since the menu priced it
		return m.ask(s, out.Text, "ask_product", nodeProductCode), nil
	case payswitch.ProblemUnknownRecipient, payswitch.ProblemSelfPayment, payswitch.ProblemBadNumber,
		payswitch.ProblemNotAgent:
		if r.Type != payswitch.MerchantPayment && s.field != "" {
			return m.ask(s, out.Text, numberPrompt(numberNode), numberNode), nil
		}
	case payswitch.ProblemBelowMin, payswitch.ProblemAboveMax, payswitch.ProblemInsufficientFunds,
		payswitch.ProblemDailyLimit:
		if s.node == nodeBuyConfirm { // fewer of the product may do
			return m.ask(s, out.Text, "ask_quantity", nodeQuantity), nil
		}
		return m.ask(s, out.Text, amountPrompt(s.node), s.node), nil
	}
	return m.end(s, out.Text), nil
}

// code acts on an input to the code prompt: the code, 9 for a new one or 0 to cancel.
func (m *Menu) code(ctx context.Context, s *session, in string) (Screen, error) {
	ch, id := payswitch.ChannelUSSD, s.payment
	again := func(problem string) Screen {
		return m.show(s, joinLines(problem, m.static["enter_code"]), m.static["code_options"], false, nodeCode)
	}
	switch {
	case in == "0":
		out, err := m.engine.Cancel(ctx, ch, s.phone, id)
		if err != nil {
			return Screen{}, fmt.Errorf("ussd: cancel %s: %w", id, err)
		}
		if out.Problem == payswitch.ProblemNoPending {
			return m.settled(ctx, s)
		}
		return m.end(s, out.Text), nil

	case in == "9":
		out, err := m.engine.Resend(ctx, ch, s.phone, id)
		if err != nil {
			return Screen{}, fmt.Errorf("ussd: resend %s: %w", id, err)
		}
		switch out.Problem {
		case payswitch.ProblemNone:
			return again(m.texts.Render("code_resent", map[string]string{"id": id})), nil
		case payswitch.ProblemNoPending:
			return m.settled(ctx, s)
		case payswitch.ProblemResendLimit:
			return again(m.texts.Render("resend_limit", map[string]string{"id": id})), nil
		case payswitch.ProblemResendTooSoon:
			return again(out.Text), nil
		}
		return m.end(s, out.Text), nil

	case len(in) == m.engine.CodeDigits() && digits(in):
		out, err := m.engine.Confirm(ctx, ch, s.phone, id, in)
		if err != nil {
			return Screen{}, fmt.Errorf("ussd: confirm %s: %w", id, err)
		}
		switch out.Problem {
		case payswitch.ProblemWrongCode:
			return again(out.Text), nil
		case payswitch.ProblemNoPending:
			return m.settled(ctx, s)
		}
		return m.end(s, out.Text), nil
	}
	// Not a code. The payment may have been settled meanwhile (by an SMS reply, say):
	// then say so instead of asking again.
	p, err := m.engine.Payment(ctx, id)
	if err != nil && !errors.Is(err, payswitch.ErrNotFound) {
		return Screen{}, fmt.Errorf("ussd: payment %s: %w", id, err)
	}
	if p == nil || p.State != payswitch.StatePendingOTP {
		return m.settled(ctx, s)
	}
	return again(m.static["bad_code"]), nil
}

// settled ends the session with what became of its payment, which no longer waits for a
// code: confirmed by SMS, cancelled, expired or failed.
func (m *Menu) settled(ctx context.Context, s *session) (Screen, error) {
	p, err := m.engine.Payment(ctx, s.payment)
	if errors.Is(err, payswitch.ErrNotFound) {
		return m.end(s, m.static["no_pending"]), nil
	}
	if err != nil {
		return Screen{}, fmt.Errorf("ussd: payment %s: %w", s.payment, err)
	}
	key := "state_" + string(p.State)
	if !m.texts.Has(key) {
		key = "no_pending"
	}
	return m.end(s, m.texts.Render(key, m.vars(p))), nil
}

// vars are the placeholders of texts about p.
func (m *Menu) vars(p *payswitch.Payment) map[string]string {
	return map[string]string{
		"id":     p.ID,
		"amount": payswitch.FormatMoney(p.Currency, p.Amount),
		"payee":  payeeLabel(p),
		"fee":    payswitch.FormatMoney(p.Currency, p.Fee),
	}
}

// codePrompt is the code prompt's text for p: a withdrawal's, one that names the fee,
// or the plain one of a free payment.
func codePrompt(p *payswitch.Payment) string {
	switch {
	case p.Type == payswitch.WithdrawalPayment:
		return "code_prompt_withdraw"
	case p.Fee > 0:
		return "code_prompt_fee"
	}
	return "code_prompt"
}

// payeeLabel names the payee to the payer as the engine's messages do: "Mama Mboga
// (55501)" for a merchant, a masked number for a person or an airtime recipient.
func payeeLabel(p *payswitch.Payment) string {
	switch {
	case p.Type == payswitch.AirtimePayment:
		return payswitch.Mask(p.TargetMSISDN)
	case p.PayeeCode != "":
		return p.PayeeName + " (" + p.PayeeCode + ")"
	case p.PayeeMSISDN != "" && p.PayeeName != "":
		return p.PayeeName + " " + payswitch.Mask(p.PayeeMSISDN)
	case p.PayeeMSISDN != "":
		return payswitch.Mask(p.PayeeMSISDN)
	}
	return p.PayeeName
}
