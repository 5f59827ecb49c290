package main

import (
	"context"
	"strings"

	"github.com/rs/zerolog"

	"github.com/payswitch/payswitch/outbox"
	"github.com/payswitch/payswitch/smpp"
	"github.com/payswitch/payswitch/store"
	payswitch "github.com/payswitch/payswitch/switch"
	"github.com/payswitch/payswitch/ussd"
)

// moHandler turns what the SMPP links receive into engine calls.
type moHandler struct {
	engine    *payswitch.Engine
	outbox    *outbox.Outbox
	ussd      *ussd.Menu
	links     map[string]smpp.Target // links and server accounts by name; written before anything starts, then only read
	log       zerolog.Logger
	shortcode string
}

// HandleMO passes a text to the engine; an error makes the link answer the SMSC with a
// temporary error so that it delivers the message again. USSD goes to the menus.
func (h *moHandler) HandleMO(ctx context.Context, m smpp.MO) error {
	if m.USSD != nil { // addressed to the service code, not the shortcode
		h.handleUSSD(ctx, m)
		return nil
	}
	if m.To != "" && strings.TrimLeft(m.To, "+") != h.shortcode {
		h.log.Warn().Str("to", m.To).Str("from", payswitch.Mask(m.From)).Msg("MO for another number ignored")
		return nil
	}
	return h.engine.HandleSMS(ctx, m.From, m.Text)
}

// HandleReceipt records a delivery receipt against the message it reports on, as
// smpp.ReceiptRecorder does; the outbox then tells codeDelivery, in the same write.
func (h *moHandler) HandleReceipt(ctx context.Context, r smpp.Receipt) error {
	return smpp.ReceiptRecorder(h.outbox)(ctx, r)
}

// codeDelivery is the outbox's receipt hook: a receipt for a code SMS goes into the
// authentication history, and an undeliverable one may start the voice fallback, in the
// write that applies the receipt. That is the receipt's own write, or the MarkSent of
// the code SMS when the SMSC's receipt came before the submit was recorded. An error
// rolls the receipt back with it (the SMSC redelivers it, or the MarkSent fails).
func (h *moHandler) codeDelivery(ctx context.Context, tx store.Tx, m outbox.Receipted) (after func(), err error) {
	if m.Purpose != "otp" || m.PaymentID == "" {
		return nil, nil
	}
	// Only a final answer says something about the code: ENROUTE, ACCEPTD or UNKNOWN
	// leave the message "sent", and must not start the voice fallback.
	var delivered bool
	switch m.State {
	case outbox.StateDelivered:
		delivered = true
	case outbox.StateUndeliverable:
	default:
		return nil, nil
	}
	return h.engine.RecordCodeDeliveryTx(ctx, tx, m.PaymentID, m.To, delivered, m.Status)
}

// handleUSSD answers one USSD step that arrived over SMPP, on the link it came from and
// with its session info. It never asks for redelivery: the input was acted on and the
// user is looking at the screen.
func (h *moHandler) handleUSSD(ctx context.Context, m smpp.MO) {
	reply, end, err := h.ussd.HandleSMPP(ctx, m.From, m.USSD.ServiceOp, m.USSD.SessionInfo, m.Text)
	if err != nil {
		h.log.Warn().Err(err).Str("link", m.Link).Str("from", payswitch.Mask(m.From)).Msg("ussd over smpp")
	}
	l := h.links[m.Link]
	if reply == "" || l == nil {
		return
	}
	if _, err := l.Submit(ctx, smpp.MT{To: m.From, From: m.To, Text: reply,
		USSD: &smpp.USSDInfo{ServiceOp: ussd.ReplyOp(end), SessionInfo: m.USSD.SessionInfo}}); err != nil {
		h.log.Error().Err(err).Str("link", m.Link).Str("from", payswitch.Mask(m.From)).Msg("ussd answer not sent")
	}
}
