package smpp

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/fiorix/go-smpp/smpp/pdu"
	"github.com/fiorix/go-smpp/smpp/pdu/pdufield"
	"github.com/payswitch/payswitch/smpp/server"

	"github.com/payswitch/payswitch/internal/mask"
)

// account is one Gateway account; as a Target it sends MT as deliver_sm over the
// account's bound sessions that can receive.
type account struct {
	g        *Gateway
	systemID string
	name     string   // GatewayTargetPrefix + systemID
	password [32]byte // SHA-256, compared in constant time
	maxBinds int
	prefixes []string      // of the numbers it may send from; fixed after NewGateway
	window   chan struct{} // one token per deliver_sm awaiting its response
	// receiptsDue wakes the account's receipt sender (capacity 1: one wake-up pending
	// stands for any number).
	receiptsDue chan struct{}
	// delivered holds the receipts the ESME acknowledged whose rows are not deleted
	// yet; only the receipt sender uses it.
	delivered map[string]struct{}
	metrics   *linkMetrics

	submitted, failed, received atomic.Uint64

	mu        sync.Mutex // guards the fields below
	binds     int        // accepted binds not yet ended
	receivers []*server.Session
	// held are the receipts whose submit_sm_resp is not written yet, with their rows'
	// next_at (their hold deadline on PostgreSQL); released are those since answered
	// whose rows the receipt sender must make due (PostgreSQL only).
	held     map[string]int64
	released []heldReceipt
	next     int // round-robin position in receivers
	closed   bool
}

var _ Target = (*account)(nil)

// within returns the length of the longest of the account's prefixes that msisdn (a
// normalized address) starts with, or -1 when it starts with none.
func (a *account) within(msisdn string) int {
	best := -1
	for _, p := range a.prefixes {
		if len(p) > best && strings.HasPrefix(msisdn, p) {
			best = len(p)
		}
	}
	return best
}

// normalizePrefixes drops a leading '+' and empty prefixes: an empty prefix would let
// an account send from every number, which configuration never means.
func normalizePrefixes(ps []string) []string {
	out := make([]string, 0, len(ps))
	for _, p := range ps {
		if p = normalizeAddr(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

func (a *account) Name() string { return a.name }
func (a *account) Window() int  { return cap(a.window) }

// State is bound while a session that can receive is bound.
func (a *account) State() string {
	a.mu.Lock()
	defer a.mu.Unlock()
	switch {
	case a.closed:
		return StateClosed
	case len(a.receivers) > 0:
		return StateBound
	}
	return StateDown
}

func (a *account) stats() LinkStats {
	a.mu.Lock()
	sessions := a.binds
	a.mu.Unlock()
	return LinkStats{
		Name: a.name, State: a.State(), Sessions: sessions,
		InFlight: len(a.window), Window: cap(a.window),
		Submitted: a.submitted.Load(), Failed: a.failed.Load(), Received: a.received.Load(),
	}
}

// receiver picks a bound session that can receive, round robin; nil when none is.
func (a *account) receiver() *server.Session {
	a.mu.Lock()
	defer a.mu.Unlock()
	for range a.receivers {
		s := a.receivers[a.next%len(a.receivers)]
		a.next++
		select {
		case <-s.Done():
			continue
		default:
			return s
		}
	}
	return nil
}

// Submit sends m as deliver_sm (concatenated parts when long, one message with
// ussd_service_op for USSD) on one session of the account and returns generated
// message ids. It fails with ErrNotBound while no session can receive.
func (a *account) Submit(ctx context.Context, m MT) ([]string, error) {
	ids, err := a.submit(ctx, m)
	if err != nil {
		a.failed.Add(1)
		a.metrics.submitError(errorLabel(err))
		return ids, fmt.Errorf("smpp: %s: %w", a.name, err)
	}
	return ids, nil
}

func (a *account) submit(ctx context.Context, m MT) ([]string, error) {
	to, from := normalizeAddr(m.To), normalizeAddr(m.From)
	if to == "" || len(to) > 20 {
		return nil, fmt.Errorf("%w %q", ErrBadAddress, mask.MSISDN(to))
	}
	if from == "" {
		from = a.g.cfg.Shortcode
	}
	s := a.receiver()
	if s == nil {
		return nil, ErrNotBound
	}
	segs := segmentsOf(to, m)
	ids := make([]string, 0, len(segs))
	for i, seg := range segs {
		if err := a.send(ctx, s, newDeliverSM(from, to, seg, m)); err != nil {
			return ids, fmt.Errorf("part %d/%d to %s: %w", i+1, len(segs), mask.MSISDN(to), err)
		}
		a.submitted.Add(1)
		a.metrics.message("out")
		ids = append(ids, a.g.newID())
	}
	return ids, nil
}

// send sends one deliver_sm within the account's window and maps the outcome to this
// package's errors.
func (a *account) send(ctx context.Context, s *server.Session, p pdu.Body) error {
	select {
	case a.window <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	a.metrics.inFlight(1)
	defer func() { <-a.window; a.metrics.inFlight(-1) }()
	_, err := s.Send(ctx, p)
	var st pdu.Status
	switch {
	case err == nil:
		return nil
	case errors.As(err, &st):
		return &StatusError{Command: "deliver_sm", Status: uint32(st)}
	case errors.Is(err, server.ErrRespTimeout):
		return ErrTimeout
	case errors.Is(err, server.ErrNotBound), errors.Is(err, server.ErrCannotReceive):
		return ErrNotBound
	case ctx.Err() != nil:
		return ctx.Err()
	default: // session closed, write failed: the peer may or may not have it
		return fmt.Errorf("%w: %v", ErrConnLost, err)
	}
}

// newDeliverSM builds the deliver_sm of one part of m.
func newDeliverSM(from, to string, seg Segment, m MT) pdu.Body {
	p := pdu.NewDeliverSM()
	f := p.Fields()
	setAddressing(f, from, to, seg)
	tlv := p.TLVFields()
	sm := seg.ShortMessage
	if len(sm) > 254 {
		tlv.Set(tagMessagePayload, sm)
		sm = nil
	}
	f.Set(pdufield.ShortMessage, sm)
	if m.Ref != 0 {
		tlv.Set(tagUserMessageRef, []byte{byte(m.Ref >> 8), byte(m.Ref)})
	}
	if m.USSD != nil {
		tlv.Set(tagUssdServiceOp, m.USSD.ServiceOp)
		if len(m.USSD.SessionInfo) > 0 {
			tlv.Set(tagItsSessionInfo, m.USSD.SessionInfo)
		}
	}
	return p
}
