package payswitch

import (
	"context"

	"github.com/payswitch/payswitch/ledger"
)

// What the external tests (package payswitch_test) reach inside the engine: the parts
// of a command worked out before its write (see ahead), to check that the write decides
// on what it reads itself; the engine's caches and ID generator; its hot queries. Only
// the test binary has these.

// Draft is a request's draft.
type Draft = draft

// PaymentID is the ID of the payment d drafted.
func (d *Draft) PaymentID() string { return d.p.ID }

// DraftRequest drafts r as Request does before its write.
func (e *Engine) DraftRequest(ctx context.Context, r Request) (*Draft, error) {
	return e.draft(ctx, r, nil)
}

// RequestDrafted runs r's write with d, a draft made earlier.
func (e *Engine) RequestDrafted(ctx context.Context, r Request, d *Draft) (out Outcome, err error) {
	err = e.write(ctx, func(o *op) (err error) {
		out, err = o.request(requestSnapshot{Request: r, ReplyTo: e.replyTo(r.Payer), Draft: d})
		return err
	})
	return out, err
}

// CodeAhead is a code given for a number's waiting payments, worked out before the write
// that checks it.
type CodeAhead = codeAheads

// ConfirmAhead works out code for msisdn's waiting payment as Confirm does before its write.
func (e *Engine) ConfirmAhead(ctx context.Context, msisdn, code string) *CodeAhead {
	return e.confirmAhead(ctx, msisdn, code)
}

// ConfirmWithAhead runs a confirmation's write with a, worked out earlier.
func (e *Engine) ConfirmWithAhead(ctx context.Context, ch Channel, msisdn, code string, a *CodeAhead) (out Outcome, err error) {
	err = e.write(ctx, func(o *op) (err error) {
		out, err = o.confirm(ch, msisdn, "", code, a)
		return err
	})
	return out, err
}

// BalanceAfter is the applier's balanceAfter in a write of its own.
func (e *Engine) BalanceAfter(ctx context.Context, tr *ledger.Transfer, id string) (balance int64, err error) {
	err = e.write(ctx, func(o *op) (err error) {
		balance, err = o.balanceAfter(tr, id)
		return err
	})
	return balance, err
}

// CachedPayee is what the payee cache keeps under key, if anything.
func (e *Engine) CachedPayee(key string) (ledger.Account, bool) {
	e.payees.mu.RLock()
	defer e.payees.mu.RUnlock()
	a, ok := e.payees.m[key]
	return a, ok
}

// IDState and SetIDState read and set the engine's payment ID generator, to play a
// restart that draws the same IDs.
func (e *Engine) IDState() (started bool, tick, seq int64) { return e.ids.State() }

func (e *Engine) SetIDState(started bool, tick, seq int64) { e.ids.SetState(started, tick, seq) }

// PaymentIDLayout and IDLetters are how payment IDs are made.
var (
	PaymentIDLayout = paymentIDLayout
	IDLetters       = idLetters
)

// The engine's hot reads, with how many arguments each takes.
var HotQueries = []struct {
	Name, Query string
	Args        int
}{
	{"number state", numberStateQuery, 3},
	{"waiting payment", waitingQuery, 2},
	{"pending payment", pendingQuery, 1},
	{"payment by id", paymentQuery, 1},
	{"payments of a number", paymentsOfQuery, 2},
	{"waiting payments", waitingPaymentsQuery, 1},
	{"waiting request", requestedQuery, 1},
	{"request state", requestStateQuery, 4},
	{"stop state", stopStateQuery, 2},
	{"items of a payment", itemsQuery, 1},
	{"due for expiry", dueQuery, 1},
	{"next expiry", nextDueQuery, 0},
}

// PaymentColumns are the payments table's columns that the engine reads.
const PaymentColumns = paymentColumns

// IDNumberDigest is the keyed digest of an id number that wallet_kyc keeps (contract
// section 14), for tests that record a tier 2 directly.
var IDNumberDigest = idNumberDigest

// WaitingHints are the payments this engine keeps as msisdn's waiting ones
// (waitingHints); nil when it keeps none, and always on PostgreSQL.
func (e *Engine) WaitingHints(msisdn string) []*Payment { return e.waiting.of(msisdn) }

// SetWaitingHints replaces msisdn's hints, as an engine that started other payments
// would hold them.
func (e *Engine) SetWaitingHints(msisdn string, ps []*Payment) {
	e.waiting.forget(msisdn)
	for _, p := range ps {
		e.waiting.add(p)
	}
}

// ReadWaiting is msisdn's waiting payments, with their items, as the reader pool reads
// them.
func (e *Engine) ReadWaiting(ctx context.Context, msisdn string) ([]*Payment, error) {
	ps, err := loadWaiting(ctx, e.db.Reader(), msisdn)
	if err != nil {
		return nil, err
	}
	return ps, withItems(ctx, e.db.Reader(), ps)
}
