package smpp

import (
	"context"
	"time"
)

// Test hooks for package smpp_test, whose tests run against tools/smscsim (which
// imports this package, so they cannot live inside it).

// SetLinkTimings shortens a link's rebind backoff, late-response window and
// throttling pause. Call it before Start.
func SetLinkTimings(l *Link, backoff, late, throttle time.Duration) {
	l.minBackoff, l.maxBackoff = backoff, 8*backoff
	l.lateWindow = late
	l.throttlePause = throttle
}

// SetSenderTimings makes a sender retry after backoff (and at least late after a
// response timeout), give up after maxAttempts, and poll often. Call it before Run.
func SetSenderTimings(s *Sender, backoff, late time.Duration, maxAttempts int) {
	s.backoff = func(int) time.Duration { return backoff }
	s.lateWait = late
	s.maxAttempts = maxAttempts
	s.poll = 10 * time.Millisecond
}

// SetSenderClock makes a sender read the time from now. Call it before Run.
func SetSenderClock(s *Sender, now func() time.Time) { s.now = now }

// SetGatewayClock makes a gateway read the time from now (pins, bind throttling).
// Call it before Start.
func SetGatewayClock(g *Gateway, now func() time.Time) { g.now = now }

// GatewayReassemblyHeld returns how many incomplete concatenated MO, and how many bytes
// of their parts, a gateway holds.
func GatewayReassemblyHeld(g *Gateway) (sets, bytes int) { return g.reasm.Held() }

// Reassembly caps, for tests outside the package.
const (
	MaxReassemblyBytes = maxReassemblyBytes
	MaxReassemblySets  = maxReassemblySets
)

// SweepGatewayReceipts runs the receipt sweep at the gateway clock's time.
func SweepGatewayReceipts(g *Gateway) { g.sweepReceipts(context.Background(), g.now()) }

// SetGatewayReceiptPoll makes a gateway look for receipts due every d (on PostgreSQL,
// those other nodes recorded). Call it before Start.
func SetGatewayReceiptPoll(g *Gateway, d time.Duration) { g.receiptPoll = d }
