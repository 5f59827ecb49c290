package main

import (
	"context"
	"errors"
	"strings"

	"github.com/rs/zerolog"

	"github.com/payswitch/payswitch/outbox"
	"github.com/payswitch/payswitch/receiptspool"
	"github.com/payswitch/payswitch/smpp"
	payswitch "github.com/payswitch/payswitch/switch"
	"github.com/payswitch/payswitch/ussd"
)

// moHandler turns what the SMPP links receive into engine calls.
type moHandler struct {
	engine    *payswitch.Engine
	outbox    *outbox.Outbox
	receipts  outbox.ReceiptFunc  // what a receipt applied to its message means (codeDeliveries)
	spool     *receiptspool.Spool // when set, receipts are spooled here and applied from it
	mos       *spooledMOs         // when set, MOs are spooled and decided on from the spool
	ussd      *ussd.Menu
	links     map[string]smpp.Target // links and server accounts by name; written before anything starts, then only read
	log       zerolog.Logger
	shortcode string
}

// HandleMO passes a text to the engine, through the spool when MOs are spooled (it is
// durable there when HandleMO returns, and decided on just after: serve_mospool.go); an
// error makes the link answer the SMSC with a temporary error so that it delivers the
// message again. USSD goes to the menus.
func (h *moHandler) HandleMO(ctx context.Context, m smpp.MO) error {
	if m.USSD != nil { // addressed to the service code, not the shortcode
		h.handleUSSD(ctx, m)
		return nil
	}
	if m.To != "" && strings.TrimLeft(m.To, "+") != h.shortcode {
		h.log.Warn().Str("to", m.To).Str("from", payswitch.Mask(m.From)).Msg("MO for another number ignored")
		return nil
	}
	if h.mos != nil {
		if err := h.mos.put(ctx, m); !errors.Is(err, receiptspool.ErrTooLong) {
			return err
		}
	}
	return h.engine.HandleSMS(ctx, m.From, m.Text)
}

// HandleReceipt makes a delivery receipt durable and returns, so that the link
// acknowledges the deliver_sm only then (as smpp.ReceiptRecorder does): in the receipt
// spool when there is one (applied from there just after, serve_receiptspool.go), else
// applied to the message it reports on in the database. The outbox hands the message
// the receipt was applied to back to h.receipts (codeDeliveries), in the receipt's
// write, which tells the engine.
func (h *moHandler) HandleReceipt(ctx context.Context, r smpp.Receipt) error {
	if h.spool != nil {
		return spoolReceipt(ctx, h.spool, r)
	}
	_, _, err := h.outbox.ReceiptThen(ctx, r.Link, r.MessageID, r.Status, h.receipts)
	return err
}

// handleUSSD answers one USSD step that arrived over SMPP, on the link it came from and
// with its session info. The menus are told the link too: the answer to a request pushed
// to the phone counts only over the link the push went out on (serve_ussdpush.go). It
// never asks for redelivery: the input was acted on and the user is looking at the screen.
func (h *moHandler) handleUSSD(ctx context.Context, m smpp.MO) {
	reply, end, err := h.ussd.HandleSMPP(ctx, m.Link, m.From, m.USSD.ServiceOp, m.USSD.SessionInfo, m.Text)
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
