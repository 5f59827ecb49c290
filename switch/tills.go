package payswitch

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/payswitch/payswitch/ledger"
	"github.com/payswitch/payswitch/store"
)

// ErrUnknownTill: no store has that till (Tills answers it).
var ErrUnknownTill = errors.New("payswitch: unknown till")

// ProblemStoreClosed refuses a payment to the till of a closed store (ErrStoreClosed).
const ProblemStoreClosed Problem = "store_closed"

// Till is a merchant's store as a payment to its till needs it (contract section 11).
// A till is paid exactly like a merchant code; the money lands in the merchant's account.
type Till struct {
	Code     string // the till: digits, unique among tills and merchant codes
	Store    string // the store's ID, recorded on the payment
	Merchant string // the merchant's account ID
	Name     string // the store's name
	MSISDN   string // the store's phone, where the payee's notice goes; "" for none
	Closed   bool   // as last read: a payment reads StoreOpen in its transaction
}

// Tills finds stores by till or phone (package merchant has them). Everything but the
// status never changes, so the engine keeps it; the status is read in each payment's
// transaction.
type Tills interface {
	Till(ctx context.Context, code string) (Till, error)           // none: ErrUnknownTill
	TillByMSISDN(ctx context.Context, msisdn string) (Till, error) // none: ErrUnknownTill
	StoreOpen(ctx context.Context, tx store.Tx, storeID string) (bool, error)
}

// tillCache keeps the tills that were found: what never changes of a store. Like
// payeeCache it has a cap, and a full cache starts again empty.
type tillCache struct {
	mu sync.RWMutex // guards m
	m  map[string]Till
}

func (c *tillCache) get(code string) (Till, bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	t, ok := c.m[code]
	return t, ok
}

func (c *tillCache) put(t Till) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil || len(c.m) >= payeeCacheMax {
		c.m = make(map[string]Till)
	}
	t.Closed = false // never kept: the transaction reads it
	c.m[t.Code] = t
}

// merchantByCode returns the merchant account a code pays: the merchant whose code it
// is, or the merchant of the store whose till it is (with the till). Neither is
// ledger.ErrNotFound. Tills and codes never overlap (package merchant's schema), so the
// cache of tills is asked first: a till costs no read once it was seen.
func (e *Engine) merchantByCode(ctx context.Context, code string) (ledger.Account, Till, error) {
	if t, ok := e.tillsSeen.get(code); ok {
		a, err := e.merchantOfTill(ctx, t)
		return a, t, err
	}
	a, err := e.payees.account(ctx, "code:"+code, func(ctx context.Context) (ledger.Account, error) {
		return e.ledger.AccountByCode(ctx, code)
	})
	if !errors.Is(err, ledger.ErrNotFound) || e.tills == nil {
		return a, Till{}, err
	}
	t, terr := e.tills.Till(ctx, code)
	switch {
	case errors.Is(terr, ErrUnknownTill):
		return a, Till{}, err
	case terr != nil:
		return ledger.Account{}, Till{}, terr
	}
	e.tillsSeen.put(t)
	a, err = e.merchantOfTill(ctx, t)
	return a, t, err
}

func (e *Engine) merchantOfTill(ctx context.Context, t Till) (ledger.Account, error) {
	return e.payees.account(ctx, "id:"+t.Merchant, func(ctx context.Context) (ledger.Account, error) {
		return e.ledger.Account(ctx, t.Merchant)
	})
}

// payTill names till's store on p, a payment to its merchant: the payer reads
// "Merchant - Store (till)" (a hyphen: the GSM alphabet has no dash), the payment
// records the store, and the store's phone, when it has one, gets the payee's notice
// instead of the merchant's phone.
func payTill(p *Payment, t Till) {
	if t.Store == "" {
		return
	}
	p.Store, p.PayeeCode, p.PayeeName = t.Store, t.Code, p.PayeeName+" - "+t.Name
	if t.MSISDN != "" {
		p.PayeeMSISDN = t.MSISDN
	}
}

// storeClosed reads, in the request's transaction, whether the drafted payment's store
// is closed; a payment to a merchant's own code has none.
func (o *op) storeClosed(d *draft) (bool, error) {
	if d == nil || d.p == nil || d.p.Store == "" || o.e.tills == nil {
		return false, nil
	}
	open, err := o.e.tills.StoreOpen(o.ctx, o.tx, d.p.Store)
	if err != nil {
		return false, fmt.Errorf("store of %s: %w", d.p.ID, err)
	}
	return !open, nil
}

// SalesTotals are a merchant's (or a store's) takings over a time range, as the ledger
// has them: Gross from merchant_payment and escrow_release credits, Refunds from refund
// and reversal debits, Net = Gross - Refunds.
type SalesTotals struct {
	Payments            int64
	Gross, Refunds, Net int64
}

// SalesReader answers SALES (package sales has it): the takings of merchantID, or of
// its store storeID when not "", in [from, to).
type SalesReader interface {
	Totals(ctx context.Context, merchantID, storeID string, from, to time.Time) (SalesTotals, error)
}
