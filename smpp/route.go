package smpp

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/payswitch/payswitch/outbox"

	"github.com/payswitch/payswitch/internal/mask"
)

// codePurposes are the outbox purposes of SMS that carry a one-time code or can lead to
// one. A merchant's request to pay belongs here too: whoever reads it can answer it.
// So does its USSD push (outbox.PurposeRequestPush), whose answers are taken only over
// the link it went out on: sent to an account of the Gateway, that account could
// refuse the request in the payer's name.
var codePurposes = map[string]bool{
	"otp":                     true,
	"request":                 true, // a merchant's request to pay: it carries the code that pays it
	outbox.PurposeRequestPush: true,
}

// CarriesCode reports whether m carries a one-time code or can lead to one. Such a
// message goes to a number only over the carrier links routed by its prefix (contract
// section 9): never to a Gateway account the number wrote through, because an account
// chooses the source_addr of what it sends and could otherwise ask for anyone's code.
// This is the one place that decides it.
func CarriesCode(m outbox.Message) bool {
	return codePurposes[m.Purpose]
}

// Pin is where an Affinity would answer a number.
type Pin struct {
	// Target names the target the number is pinned to; "" for none.
	Target string
	// Prefix is the length of the longest of the target's declared prefixes that the
	// number starts with: a pin is only ever reported for a number within them.
	Prefix int
	// Grace is how long after its creation a message waits for the target while the
	// target cannot take it, before it goes by the carrier route.
	Grace time.Duration
}

// Affinity is a set of targets that prefix routing never picks: a recipient pinned to
// one of them is answered through it, within the rules of Sender.route. *Gateway is
// one: an MSISDN is pinned to the account its last MO came through.
type Affinity interface {
	Targets() []Target
	// TargetFor returns the pin of msisdn; a zero Pin for none.
	TargetFor(ctx context.Context, msisdn string) (Pin, error)
}

// Route returns the link whose prefixes match the longest start of msisdn (a leading
// '+' ignored); a link without prefixes matches anything, as the shortest match. Among
// equal matches the first link wins. It returns nil when no link serves msisdn.
func Route(links []*Link, msisdn string) *Link {
	l, _ := routeLen(links, msisdn)
	return l
}

// routeLen is Route that also returns the length of the prefix matched: 0 for a link
// without prefixes, -1 when no link serves msisdn.
func routeLen(links []*Link, msisdn string) (*Link, int) {
	msisdn = normalizeAddr(msisdn)
	var best *Link
	bestLen := -1
	for _, l := range links {
		if len(l.cfg.Prefixes) == 0 {
			if bestLen < 0 {
				best, bestLen = l, 0
			}
			continue
		}
		for _, p := range l.cfg.Prefixes {
			p = normalizeAddr(p)
			if strings.HasPrefix(msisdn, p) && len(p) > bestLen {
				best, bestLen = l, len(p)
			}
		}
	}
	return best, bestLen
}

// route picks the target for m:
//  1. a message that carries a code (CarriesCode) goes by step 4 only: no meta link, no
//     pin;
//  2. the target named in its meta (MetaLink), if there is one by that name: a USSD
//     answer goes back where its session came from, and nowhere else;
//  3. the target an Affinity pins the recipient to (a Gateway account it wrote
//     through), when the account declared a prefix of the number at least as long as
//     the one of the carrier link step 4 would pick (a pin never overrides a carrier
//     link that is more specific for the number), and then only while the message is
//     younger than the pin's grace, or on its first try while the target is bound: an
//     account that is down, or bound but failing, holds no answer longer than the
//     grace;
//  4. the link of the longest matching prefix (Route), or, while that link is not bound,
//     its failover link if that one is bound. The failover also stands by in case the
//     routed link drops before the message goes out. A request push goes only where
//     there is ussd_push (routePush).
//
// With none it fails with ErrNoRoute; an Affinity that cannot answer fails temporarily.
func (s *Sender) route(ctx context.Context, targets map[string]Target, m outbox.Message) (job, error) {
	code := CarriesCode(m)
	if name := m.Meta[MetaLink]; name != "" && !code {
		if t, ok := targets[name]; ok {
			return job{m: m, target: t}, nil
		}
	}
	l, carrierLen := routeLen(s.links, m.To)
	if !code {
		for _, a := range s.affinity {
			pin, err := a.TargetFor(ctx, m.To)
			if err != nil {
				return job{}, fmt.Errorf("smpp: affinity of %s: %w", mask.MSISDN(m.To), err)
			}
			t, ok := targets[pin.Target]
			if !ok || pin.Prefix < carrierLen {
				continue
			}
			waitUntil := m.CreatedAt.Add(pin.Grace)
			if s.now().Before(waitUntil) || (t.State() == StateBound && m.Attempts <= 1) {
				return job{m: m, target: t, retryBy: waitUntil}, nil
			}
		}
	}
	if l == nil {
		return job{}, fmt.Errorf("%w: %s", ErrNoRoute, mask.MSISDN(m.To))
	}
	if IsPush(m) {
		return s.routePush(targets, m, l)
	}
	j := job{m: m, target: l}
	if fo, ok := targets[l.Failover()]; ok && fo != Target(l) {
		j.fallback = fo
		if l.State() != StateBound && fo.State() == StateBound {
			j.target, j.fallback = fo, nil
		}
	}
	return j, nil
}
