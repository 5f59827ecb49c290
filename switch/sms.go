package payswitch

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/payswitch/payswitch/ledger"
)

// HandleSMS answers one mobile-originated message from msisdn. Whatever it decides is
// committed, replies included, before it returns nil; an error means nothing was
// committed and the message should be delivered again later (the SMPP link answers the
// SMSC with a temporary error so that it does). Under a DecideOnce context, an MO
// decided before is not decided again, and the answer is nil.
func (e *Engine) HandleSMS(ctx context.Context, from, text string) error {
	if err := e.handleSMS(ctx, from, text); !errors.Is(err, errDecidedBefore) {
		return err
	}
	return nil
}

// handleSMS is HandleSMS, errDecidedBefore included.
func (e *Engine) handleSMS(ctx context.Context, from, text string) error {
	cmd := ParseCommand(text, e.digits)
	if cmd.Problem != ProblemNone {
		return e.reply(ctx, from, string(cmd.Problem), map[string]string{"digits": fmt.Sprint(e.digits)})
	}
	var err error
	switch cmd.Kind {
	case CmdPay:
		_, err = e.Request(ctx, Request{Channel: ChannelSMS, Type: MerchantPayment, Payer: from,
			Merchant: cmd.Merchant, Amount: cmd.Amount, Reference: cmd.Reference})
	case CmdSend:
		_, err = e.Request(ctx, Request{Channel: ChannelSMS, Type: TransferPayment, Payer: from,
			Recipient: cmd.MSISDN, Amount: cmd.Amount})
	case CmdWithdraw:
		_, err = e.Request(ctx, Request{Channel: ChannelSMS, Type: WithdrawalPayment, Payer: from,
			Recipient: cmd.MSISDN, Amount: cmd.Amount})
	case CmdTopup:
		_, err = e.Request(ctx, Request{Channel: ChannelSMS, Type: AirtimePayment, Payer: from,
			Recipient: cmd.MSISDN, Amount: cmd.Amount})
	case CmdConfirm:
		_, err = e.Confirm(ctx, ChannelSMS, from, "", cmd.Code)
	case CmdResend:
		_, err = e.Resend(ctx, ChannelSMS, from, "")
	case CmdCancel:
		_, err = e.Cancel(ctx, ChannelSMS, from, "")
	case CmdDecline:
		_, err = e.Decline(ctx, ChannelSMS, from, "")
	case CmdBuy:
		_, err = e.Request(ctx, Request{Channel: ChannelSMS, Type: MerchantPayment, Payer: from,
			Merchant: cmd.Merchant, Items: []ItemRequest{{Product: cmd.Product, Quantity: cmd.Quantity}}})
	case CmdRelease:
		_, err = e.ReleaseEscrow(ctx, ChannelSMS, from, cmd.PaymentID)
	case CmdDispute:
		_, err = e.DisputeEscrow(ctx, ChannelSMS, from, cmd.PaymentID)
	case CmdLock:
		_, err = e.LockWallet(ctx, ChannelSMS, from, cmd.MSISDN, cmd.IDNumber)
	case CmdStop, CmdStart:
		_, err = e.StopRequests(ctx, ChannelSMS, from, cmd.Merchant, cmd.Kind == CmdStop)
	case CmdBalance, CmdMini, CmdSales:
		// The answer is read from the reader pool: only the reply is a write.
		read := e.BalanceText
		switch cmd.Kind {
		case CmdMini:
			read = e.MiniText
		case CmdSales:
			read = e.SalesText
		}
		text, err := read(ctx, from)
		if err != nil {
			return err
		}
		return e.send(ctx, e.rules.sms(e.replyTo(from), "reply", "", text, false))
	default:
		err = e.reply(ctx, from, "help", nil)
	}
	return err
}

// reply queues one text as the answer to msisdn.
func (e *Engine) reply(ctx context.Context, msisdn, key string, vars map[string]string) error {
	v := map[string]string{"shortcode": e.cfg.Shortcode, "digits": fmt.Sprint(e.digits)}
	for k, s := range vars {
		v[k] = s
	}
	return e.send(ctx, e.rules.sms(e.replyTo(msisdn), "reply", "", e.texts.Render(key, v), false))
}

// send queues messages, a decision of nothing else, in a write of their own.
func (e *Engine) send(ctx context.Context, messages []Message) error {
	return e.write(ctx, func(o *op) error {
		_, err := o.apply(Decision{Messages: messages})
		return err
	})
}

// BalanceText is the balance message for msisdn, for channels that show it on a screen.
// It reads the last committed state, off the store's writer.
func (e *Engine) BalanceText(ctx context.Context, msisdn string) (string, error) {
	n, err := e.Normalize(msisdn)
	if err != nil {
		return e.texts.Render("no_account", nil), nil
	}
	a, err := e.ledger.AccountByMSISDN(ctx, n)
	if errors.Is(err, ledger.ErrNotFound) {
		return e.texts.Render("no_account", nil), nil
	}
	if err != nil {
		return "", err
	}
	return e.texts.Render("balance", map[string]string{
		"balance": e.money(a.Balance.Posted), "available": e.money(a.Balance.Available)}), nil
}

// MiniText is the last five payments of msisdn, for channels that show it on a screen.
// It reads the last committed state, off the store's writer.
func (e *Engine) MiniText(ctx context.Context, msisdn string) (string, error) {
	n, err := e.Normalize(msisdn)
	if err != nil {
		return e.texts.Render("no_account", nil), nil
	}
	ps, err := paymentsOf(ctx, e.db.Reader(), n, 5)
	if err != nil {
		return "", err
	}
	if len(ps) == 0 {
		return e.texts.Render("mini_empty", nil), nil
	}
	var b strings.Builder
	b.WriteString(e.texts.Render("mini_header", nil))
	for _, p := range ps {
		sign, who := "-", p.payeeLabel()
		if p.PayerMSISDN != n {
			sign, who = "+", Mask(p.PayerMSISDN)
			if p.Type == DepositPayment {
				who = "deposit"
			}
		}
		amount := sign + FormatAmount(p.Amount)
		if sign == "-" && p.Fee > 0 { // the payer paid the tariff's fee too (fees.go)
			amount += " fee " + FormatAmount(p.Fee)
		}
		fmt.Fprintf(&b, "\n%s %s %s %s %s", p.ID, p.CreatedAt.In(e.cfg.Location).Format("02/01"),
			amount, who, strings.ReplaceAll(string(p.State), "_", " "))
	}
	return b.String(), nil
}

// paymentsOfQuery lists the payments number ?1 made or received, newest first, at most
// ?2. Each side takes its newest ?2 along its index, so that a number with a long history
// costs no more than a new one; the payee side names the partial index's condition,
// without which SQLite cannot use it and scans every payment.
const paymentsOfQuery = `SELECT ` + paymentColumns + ` FROM (
	SELECT * FROM (SELECT * FROM payments WHERE payer_msisdn = ?1 ORDER BY created_at DESC, id DESC LIMIT ?2) AS paid
	UNION
	SELECT * FROM (SELECT * FROM payments WHERE payee_msisdn = ?1 AND payee_msisdn <> ''
		ORDER BY created_at DESC, id DESC LIMIT ?2) AS received
) AS either ORDER BY created_at DESC, id DESC LIMIT ?2`

// paymentsOf lists the payments msisdn made or received, newest first.
func paymentsOf(ctx context.Context, q querier, msisdn string, limit int) ([]*Payment, error) {
	rows, err := q.QueryContext(ctx, paymentsOfQuery, msisdn, limit)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []*Payment
	for rows.Next() {
		p, err := scanPayment(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, rows.Err()
}
