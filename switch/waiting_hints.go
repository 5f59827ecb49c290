package payswitch

import (
	"sync"
	"time"
)

// waitingHints keeps, by number, the payments this engine started that wait for a code
// (its own payment, a merchant's request), as they were inserted: a confirmation works
// its code out ahead for them (confirmAhead) without reading them from the reader pool,
// whose connections start every read with a cold page cache after each commit; that
// read was about 4% of the switch's CPU under load.
//
// A hint is a hint: the write reads the number's waiting payments itself and takes a
// code worked out ahead only for a payment it finds waiting under that ID (ahead.go).
// While a payment waits only its deadline and updated_at change, and those the write
// reads. So a hint about a payment that has since expired, been cancelled or confirmed
// elsewhere costs only a wasted HMAC, and a payment missing from the hints (started
// before a restart, or by another node) is read by the write. A number's hints are
// dropped at each of its confirmations, and the next reads again.
//
// On PostgreSQL several nodes start payments, so an engine's hints would often miss
// one: they are off there (nil), and confirmations read the reader pool as before.
type waitingHints struct {
	mu sync.Mutex
	m  map[string][]*Payment // by payer number; at most one per state (pending_otp, requested)
}

// waitingHintsMax bounds the numbers with hints; a full table starts again empty. Only
// registered numbers' payments enter, and each number holds at most two.
const waitingHintsMax = 50_000

// add keeps p (hintOf a payment inserted waiting for its code, once that is durable) in
// place of the number's earlier hint in the same state.
func (h *waitingHints) add(p *Payment) {
	if h == nil {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.m == nil || len(h.m) >= waitingHintsMax {
		h.m = make(map[string][]*Payment)
	}
	ps := h.m[p.PayerMSISDN]
	out := make([]*Payment, 0, len(ps)+1)
	for _, q := range ps {
		if q.State != p.State {
			out = append(out, q)
		}
	}
	h.m[p.PayerMSISDN] = append(out, p)
}

// of returns the hints kept for msisdn (shared: callers copy before they change one).
func (h *waitingHints) of(msisdn string) []*Payment {
	if h == nil {
		return nil
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.m[msisdn]
}

// forget drops msisdn's hints.
func (h *waitingHints) forget(msisdn string) {
	if h == nil {
		return
	}
	h.mu.Lock()
	delete(h.m, msisdn)
	h.mu.Unlock()
}

// hint is what add keeps of p; nil when hints are off.
func (h *waitingHints) hint(p *Payment) *Payment {
	if h == nil {
		return nil
	}
	return hintOf(p)
}

// hintOf is a copy of p as the reader pool would read it back: times at the
// microseconds the database keeps.
func hintOf(p *Payment) *Payment {
	cp := *p
	micro := func(t time.Time) time.Time {
		if t.IsZero() {
			return t
		}
		return time.UnixMicro(t.UnixMicro()).UTC()
	}
	cp.ReleaseAt, cp.ExpiresAt = micro(cp.ReleaseAt), micro(cp.ExpiresAt)
	cp.CreatedAt, cp.UpdatedAt = micro(cp.CreatedAt), micro(cp.UpdatedAt)
	return &cp
}
