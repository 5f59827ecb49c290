// Package outbox is the durable queue of everything the switch sends: SMS, and requests
// for outbound voice calls.
//
// A message is written with Enqueue inside the same store transaction as the state change
// that causes it, so a committed payment always has its messages and a rolled-back one
// has none. A channel worker (the SMPP sender, the voice gateway client) then takes due
// messages with Claim, which leases them for a while, and reports back with MarkSent,
// Retry or Fail. A worker that dies holding a lease loses it when the lease runs out and
// the message is claimed again: delivery is at least once.
//
// States: queued -> sending -> sent -> delivered | undeliverable, with sending -> queued
// on Retry and queued|sending -> failed on Fail. While a message is sending,
// NextAttemptAt holds its lease deadline.
//
// The worker side's writes (Claim, MarkSent, Retry, Fail, Receipt) are small and many,
// and the store's single writer is the switch's bottleneck, so the Outbox combines the
// ones that wait for the writer at the same time into one store operation (batch.go);
// each call still returns only once its own work is durable, with its own result.
package outbox

import (
	"errors"
	"sync/atomic"
	"time"

	"github.com/payswitch/payswitch/internal/handover"
	"github.com/payswitch/payswitch/internal/seal"
	"github.com/payswitch/payswitch/store"
)

// Errors returned by outbox.
var (
	// ErrInvalid: Enqueue got a message without a valid kind, recipient or text.
	ErrInvalid = errors.New("outbox: invalid message")
	// ErrNotFound: no message has that ID.
	ErrNotFound = errors.New("outbox: no such message")
	// ErrState: Retry of a message that is not sending, or Fail of one already sent.
	ErrState = errors.New("outbox: message is not in a state that allows this")
)

// Message kinds.
const (
	KindSMS  = "sms"
	KindCall = "call"
)

// A merchant's request to pay (contract section 10) may also be pushed to the payer's
// phone as a network-initiated USSD screen: the engine queues, with the request, an SMS
// message of PurposeRequestPush to the payer whose Text is the screen (never the code)
// and whose Meta names the payment under MetaPushPayment; the SMPP sender turns it into
// a USSD session where a carrier link has ussd_push.
const (
	PurposeRequestPush = "request_push"
	MetaPushPayment    = "push_payment"
)

// Message states.
const (
	StateQueued        = "queued"
	StateSending       = "sending"
	StateSent          = "sent"
	StateDelivered     = "delivered"
	StateUndeliverable = "undeliverable"
	StateFailed        = "failed"
)

// States lists every state, in lifecycle order; Stats reports each of them.
var States = []string{StateQueued, StateSending, StateSent, StateDelivered, StateUndeliverable, StateFailed}

// Message is one thing to send. Fields after Meta are the outbox's bookkeeping: Enqueue
// ignores them except CreatedAt and NextAttemptAt (zero: now).
type Message struct {
	ID   int64
	Kind string // KindSMS or KindCall; "" means KindSMS
	// To is the recipient's number; From the sender (empty: the channel's default, the
	// shortcode for SMS). Text is the message (SMS) or the script hint (call).
	To, From, Text string
	// PaymentID links the message to a payment; Purpose says why it is sent: "otp",
	// "receipt", "notice", "reply", "reversal", ...
	PaymentID, Purpose string
	// Meta carries channel details, e.g. USSD session information. It is stored as JSON;
	// nil and an empty map both read back as nil.
	Meta map[string]string

	State    string
	Attempts int // claims so far, counting the current one
	// NextAttemptAt is when a queued message is due (zero: now) or, while sending, when
	// its lease runs out.
	NextAttemptAt, CreatedAt time.Time
	LastError                string
	// Link is the SMPP link (or gateway) it went out on; MessageIDs are the SMSC's IDs of
	// its parts, in order.
	Link       string
	MessageIDs []string
	// RequestReceipt asks the worker to request a delivery receipt for each part.
	RequestReceipt bool
}

// Outbox is the worker side of the queue. It is safe for concurrent use.
type Outbox struct {
	db   *store.DB
	pg   bool    // db is PostgreSQL: see postgres.go
	w    batcher // every write of the worker side goes through it
	now  func() time.Time
	wake chan struct{} // buffered 1: Kicks between two Waits coalesce
	// lastLease is the latest lease deadline given (micros), so that no two claims
	// share one.
	lastLease atomic.Int64
	sealer    *seal.Sealer // seals one-time-code texts; nil: texts are stored as given
	// node names this process among the nodes sharing a PostgreSQL database (SetNode).
	node string
	// fresh hands SMS queued with EnqueueThen to the sender, leased for freshLease
	// (nanoseconds; 0 while no sender takes them; fresh.go).
	fresh      *handover.Queue[Message]
	freshLease atomic.Int64
}

// SetNode names this process among the nodes that share a PostgreSQL database, for its
// claims: a node that starts again under the same name gives back at once the claims its
// previous run left (it was killed while sending), instead of letting them wait out
// their lease. Each live node must have a name of its own; "" (the default) names none,
// and a dead node's claims then come back when their leases run out. Call it before
// ReleaseClaims. SQLite needs none: one process delivers from a file.
func (o *Outbox) SetNode(name string) { o.node = name }

// New returns the Outbox over db; now is the clock for due times and leases (nil:
// time.Now). Its Enqueue stores texts as given; see NewSealed.
func New(db *store.DB, now func() time.Time) *Outbox {
	if now == nil {
		now = time.Now
	}
	pg := db.Dialect() == store.Postgres
	var st bulkStatements = sqliteBulk{}
	if pg {
		st = pgBulk{}
	}
	return &Outbox{db: db, pg: pg, w: batcher{db: db, bulk: st}, now: now, wake: make(chan struct{}, 1),
		fresh: handover.New[Message](maxFresh)}
}

// Kick tells workers there is something new. It never blocks; Kicks that nobody has
// received yet collapse into one.
func (o *Outbox) Kick() {
	select {
	case o.wake <- struct{}{}:
	default:
	}
}

// Wait is signalled after Kick. Workers select on it together with a timer for retries
// whose time has come, since Retry does not Kick.
func (o *Outbox) Wait() <-chan struct{} { return o.wake }

func micros(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMicro()
}

func fromMicros(v int64) time.Time {
	if v == 0 {
		return time.Time{}
	}
	return time.UnixMicro(v).UTC()
}
