package main

import (
	"context"
	"time"

	"github.com/payswitch/payswitch/outbox"
	"github.com/payswitch/payswitch/smpp"
	"github.com/payswitch/payswitch/store"
	payswitch "github.com/payswitch/payswitch/switch"
)

// Delivery receipts reach the engine one way: the outbox applies a receipt and hands
// the message it was applied to back to its caller, in the same store transaction, and
// the caller (serve's code here) tells the engine. The outbox never calls the engine.
// A receipt is applied by one of two calls: the receipt's own (moHandler.HandleReceipt),
// or, when the SMSC's receipt overtook the submit_sm_resp, the MarkSent that records
// the submit (sendQueue below, which serve gives the SMS sender).

// codeDeliveries returns the work that a receipt applied to its message means for
// engine: a receipt for a code SMS goes into the authentication history, and an
// undeliverable one may start the voice fallback, in the write that applies the
// receipt. An error rolls the receipt back with it (the SMSC redelivers it, or the
// MarkSent fails and the sender retries).
func codeDeliveries(engine *payswitch.Engine) outbox.ReceiptFunc {
	return func(ctx context.Context, tx store.Tx, m outbox.Receipted) (after func(), err error) {
		// A request to pay's SMS carries its code too: its delivery belongs in the
		// history (the engine offers no voice fallback for a request).
		if m.Purpose != "otp" && m.Purpose != "request" || m.PaymentID == "" {
			return nil, nil
		}
		// Only a final answer says something about the code: ENROUTE, ACCEPTD or
		// UNKNOWN leave the message "sent", and must not start the voice fallback.
		var delivered bool
		switch m.State {
		case outbox.StateDelivered:
			delivered = true
		case outbox.StateUndeliverable:
		default:
			return nil, nil
		}
		return engine.RecordCodeDeliveryTx(ctx, tx, m.PaymentID, m.To, delivered, m.Status)
	}
}

// sendQueue is the outbox as serve gives it to the SMS sender: its MarkSent hands the
// receipts that came before the submit was recorded to the engine, in the MarkSent's
// transaction, as HandleReceipt does for the others. Everything else is the outbox's.
type sendQueue struct {
	*outbox.Outbox
	receipts outbox.ReceiptFunc // what an early receipt means (codeDeliveries)
	// skew, when not nil, is how far the switch's clock (the outbox's) is ahead of the
	// machine's, which the sender schedules its retries on; nil: they are one clock.
	// Only a switch started on a clock of its own (startAppWith) has one.
	skew func() time.Duration
}

var _ smpp.Queue = (*sendQueue)(nil)

// MarkSent records the submit of m (outbox.Outbox.MarkSentThen) and applies the
// receipts that were waiting for it.
func (q *sendQueue) MarkSent(ctx context.Context, m outbox.Message, link string, messageIDs []string) error {
	return q.Outbox.MarkSentThen(ctx, m, link, messageIDs, q.receipts)
}

// Retry puts m back in the queue, due at next on the sender's clock, which it moves
// onto the outbox's: a retry must wait its backoff whichever clock the switch runs on.
func (q *sendQueue) Retry(ctx context.Context, id int64, errText string, next time.Time) error {
	if q.skew != nil && !next.IsZero() {
		next = next.Add(q.skew())
	}
	return q.Outbox.Retry(ctx, id, errText, next)
}
