package main

import (
	"context"
	"fmt"
	"strings"
	"time"
)

// confirmedToTills lists the payments the phones saw confirmed to one of tills (by
// code), SMS payments and requests alike.
func confirmedToTills(phones []*phone, tills map[string]string) []string {
	var ids []string
	for _, p := range phones {
		for id := range p.confirmed {
			if a, ok := p.known[id]; ok && tills[a.till] != "" {
				ids = append(ids, id)
			}
		}
	}
	return ids
}

// Bounds of the wait for the webhooks after the load.
const (
	// hookQuiet: no event for this long while some are missing means they are not coming.
	hookQuiet = 5 * time.Second
	// hookLimit bounds the wait however the deliveries go on: a backlog the switch
	// works through more slowly than this is a finding of its own.
	hookLimit = 3 * time.Minute
)

// waitHooks waits until the payment.completed event of every payment in ids has
// arrived: the switch delivers them after the receipts, and behind a backlog if its
// deliveries fall behind. It gives up after hookQuiet without any event, or hookLimit.
// It returns how many were still missing.
func waitHooks(ctx context.Context, recv *hookReceiver, ids []string) int {
	start := time.Now()
	for {
		missing := ids[:0]
		for _, id := range ids {
			if _, ok := recv.completedArrival(id); !ok {
				missing = append(missing, id)
			}
		}
		ids = missing
		quiet := time.Since(time.Unix(0, max(recv.last.Load(), start.UnixNano())))
		if len(ids) == 0 || quiet > hookQuiet || time.Since(start) > hookLimit || ctx.Err() != nil {
			return len(ids)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// checkHooks compares the webhooks the receiver took in with what the phones saw, for
// tills (code -> account ID), the tills with a webhook:
//   - no delivery was refused: every signature verified under its till's secret, every
//     body an event to a till that has a webhook;
//   - every payment a phone saw confirmed to one of tills (an SMS payment or a request)
//     has its payment.completed event, at that till's endpoint, saying completed, the
//     amount the phone was asked and the till's account as payee;
//   - no payment.completed event is about a payment no phone saw confirmed, and no
//     payment has two.
//
// Duplicate deliveries of one event are allowed (delivery is at least once); the
// result line counts them.
func checkHooks(recv *hookReceiver, phones []*phone, tills map[string]string) error {
	var pr problems
	if n := recv.bad.Load(); n > 0 {
		pr.addf("%d deliveries whose signature did not verify", n)
	}
	if n := recv.malformed.Load(); n > 0 {
		pr.addf("%d deliveries refused as no event of a known till", n)
	}
	if recv.bad.Load()+recv.malformed.Load() > 0 {
		pr.addf("the first refusals: %s", strings.Join(recv.refusals(), "; "))
	}
	if n := recv.reCompleted.Load(); n > 0 {
		pr.addf("%d payment.completed events about a payment that already had one", n)
	}
	if n := recv.overflow.Load(); n > 0 {
		pr.addf("%d events past the receiver's cap of %d were not checked", n, maxHookEvents)
	}
	confirmed := map[string]bool{}
	for _, p := range phones {
		for id := range p.confirmed {
			a, ok := p.known[id]
			if !ok {
				continue // checkBooks reports a receipt for a payment the phone never knew
			}
			confirmed[id] = true
			if tills[a.till] == "" {
				continue
			}
			got, ok := recv.completedArrival(id)
			switch {
			case !ok:
				pr.addf("%s: payment %s confirmed to the phone, but no payment.completed webhook arrived", p.msisdn, id)
			case got.till != a.till:
				pr.addf("payment %s to till %s: its payment.completed came to till %s's endpoint", id, a.till, got.till)
			case got.state != "completed" || got.amount != a.amount || got.payee != tills[a.till]:
				pr.addf("payment %s: the webhook says %s, %d to %s; the phone paid %d to till %s (%s)",
					id, got.state, got.amount, got.payee, a.amount, a.till, tills[a.till])
			}
		}
	}
	for _, id := range recv.completedIDs() {
		if !confirmed[id] {
			pr.addf("a payment.completed webhook for %s, which no phone saw confirmed", id)
		}
	}
	if err := pr.err(); err != nil {
		return fmt.Errorf("webhooks: %w", err)
	}
	return nil
}
