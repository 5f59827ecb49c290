package payswitch

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/payswitch/payswitch/store"
)

// The events a merchant's system is told of (contract section 10), each about one
// payment, with the payment's view as data. EventRequestFailed is an addition to the
// contract's list: a request whose right code found too little money (or a frozen
// account, or a spent daily limit), or that too many wrong codes ended.
const (
	EventPaymentCompleted = "payment.completed"
	EventPaymentReversed  = "payment.reversed"
	EventRequestDeclined  = "request.declined"
	EventRequestExpired   = "request.expired"
	EventRequestFailed    = "request.failed"
)

// merchantEvent is event for p when p pays a merchant, whose system hears of it; none
// for other payments (transfers, airtime, deposits have no merchant to tell).
func merchantEvent(p *Payment, event string) []string {
	if p == nil || p.Type != MerchantPayment {
		return nil
	}
	return []string{event}
}

// enqueueEvents queues events about p, as it is now in o's transaction, for the merchant
// it pays, through the engine's EventSink (none: nothing is queued), under subject
// (Decision.eventSubject). The data is the payment's view, the same JSON the API serves.
func (o *op) enqueueEvents(p *Payment, subject string, events []string) error {
	if len(events) == 0 || o.e.events == nil {
		return nil
	}
	if w, ok := o.e.events.(wanter); ok && !w.Wants(p.PayeeAccount) {
		return nil // the payment's JSON would be built for nothing
	}
	data, err := json.Marshal(p.View())
	if err != nil {
		return fmt.Errorf("event data of %s: %w", p.ID, err)
	}
	fresh, handsOver := o.e.events.(freshSink)
	for _, ev := range events {
		if !handsOver {
			if err := o.e.events.Enqueue(o.ctx, o.tx, p.PayeeAccount, ev, subject, data, o.now); err != nil {
				return fmt.Errorf("queue %s of %s: %w", ev, p.ID, err)
			}
			continue
		}
		then, err := fresh.EnqueueThen(o.ctx, o.tx, p.PayeeAccount, ev, subject, data, o.now)
		if err != nil {
			return fmt.Errorf("queue %s of %s: %w", ev, p.ID, err)
		}
		if then != nil {
			o.after = append(o.after, then)
		}
	}
	if !handsOver {
		o.events++
	}
	return nil
}

// freshSink is an EventSink that delivers an event as soon as the write that queued it
// is durable (webhook.Hooks): the engine runs the then it returns among the write's
// after-effects, instead of waking it with Kick.
type freshSink interface {
	EnqueueThen(ctx context.Context, tx store.Tx, merchantID, eventType, subject string, data []byte,
		at time.Time) (then func(), err error)
}

// wanter is an EventSink that can tell, without a read, that a merchant's events would
// not be queued (webhook.Hooks: the merchant has no endpoint).
type wanter interface{ Wants(merchantID string) bool }

// kicker is an EventSink that delivers sooner when told that events were committed
// (webhook.Hooks): done tells it, as it tells the outbox of messages.
type kicker interface{ Kick() }
