package ledger

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/payswitch/payswitch/internal/timeid"
	"github.com/payswitch/payswitch/store"
)

// Ledger is the double-entry ledger over a store.DB. Every check (funds, idempotency,
// status) happens in the transaction that writes, on what that transaction has locked
// (see postgres.go); reads use the store's reader pool.
type Ledger struct {
	db    *store.DB
	now   func() time.Time
	owned bool              // Close closes db: Open made it
	ids   *timeid.Generator // of transfer ids (transferIDLayout)
	pg    bool              // db is on PostgreSQL: lock what is checked (postgres.go)
	// lastTime is the latest journal time this ledger booked or appended (PostgreSQL,
	// where a booking does not read the head: postgres_append.go).
	lastTime atomic.Value // string
}

// New returns a ledger over db, whose file must have Schema applied. now is the clock of
// the journal (nil means time.Now). Close does not close db.
func New(db *store.DB, now func() time.Time) *Ledger {
	if now == nil {
		now = time.Now
	}
	return &Ledger{db: db, now: now, ids: timeid.New(transferIDLayout), pg: db != nil && db.Dialect() == store.Postgres}
}

// Open opens the SQLite file at path as a store with only the ledger's schema, for tools
// and tests that use the ledger alone. Close closes the store.
func Open(path string, opts store.Options) (*Ledger, error) {
	db, err := store.Open(path, opts, Schema)
	if err != nil {
		return nil, fmt.Errorf("ledger: open: %w", err)
	}
	l := New(db, nil)
	l.owned = true
	return l, nil
}

// NewTransferID returns a new transfer id in the form the ledger books transfers with:
// "TR" and 12 letters or digits that sort by the time they were made. A ledger never
// returns the same id twice.
func (l *Ledger) NewTransferID() string { return l.ids.Next(l.now()) }

// DB is the store the ledger writes to.
func (l *Ledger) DB() *store.DB { return l.db }

// Close closes the store if Open opened it; for a ledger made by New it does nothing.
func (l *Ledger) Close() error {
	if !l.owned {
		return nil
	}
	return l.db.Close()
}

// Tx is the ledger inside one store.Write transaction, so that a caller commits its own
// rows and the ledger's together. Each mutating method is atomic on its own: when it
// returns an error it has changed nothing, and the caller may go on and commit.
//
// A Tx lives only as long as the Write function that made it.
type Tx struct {
	l  *Ledger
	tx store.Tx
	// bare is set when the caller undoes a failed operation itself (a Ledger method's own
	// Write, a batch's savepoint): the operation then takes no savepoint of its own.
	bare bool
	// saved is set once the running operation has taken its savepoint (see writing).
	saved bool
	// wrote is set once the running operation, in a PostgreSQL group's transaction, is
	// about to write (see writing): it takes no savepoint there.
	wrote bool
}

// In returns the ledger working inside tx, a transaction of l.DB().Write.
func (l *Ledger) In(tx store.Tx) *Tx { return &Tx{l: l, tx: tx} }

// sqlCtx strips cancellation: the store runs a write function to completion once it has
// started (its caller then waits for the outcome), and a cancellable context would make
// the driver start a watcher goroutine for every statement.
func sqlCtx(ctx context.Context) context.Context { return context.WithoutCancel(ctx) }

// atomic runs operation fn so that, if it fails, the caller's transaction is as fn found
// it. Every check comes before an operation's first write, and a refused operation has
// nothing to undo, so no savepoint is taken up front: an operation that writes more than
// one statement calls writing just before its first write, and only then is there a
// savepoint (ledger_op) to roll back to. One statement is atomic by itself, so an
// operation that writes once (creating an account, say) needs none. A savepoint costs two
// statements, a third of a hold's.
//
// On PostgreSQL any failed statement, a lock that timed out or an insert refused by a
// constraint, aborts the caller's whole transaction, so the savepoint comes first there.
// A group's transaction (store.Optimistic: PostgreSQL's groups, SQLite's bare groups)
// takes none: an operation that fails half done sends its group to run again, with
// savepoints.
func (t *Tx) atomic(ctx context.Context, fn func(ctx context.Context) error) error {
	ctx = sqlCtx(ctx)
	t.saved, t.wrote = false, false
	if store.Optimistic(t.tx) {
		// In a group a failed statement aborts the group, whose Writes then run alone,
		// each with its savepoints; an operation that fails after it began to write
		// sends the group so too, since nothing here can undo its writes.
		err := fn(ctx)
		if err != nil && t.wrote {
			store.RunAlone(t.tx)
		}
		t.wrote = false
		return err
	}
	mark := t.marked()
	if t.l.pg {
		if err := t.writing(ctx); err != nil {
			return err
		}
	}
	err := fn(ctx)
	if !t.saved {
		return err
	}
	t.saved = false
	if err != nil {
		if _, rerr := t.tx.ExecContext(ctx, "ROLLBACK TO ledger_op"); rerr != nil {
			return errors.Join(err, fmt.Errorf("ledger: rollback: %w", rerr))
		}
		t.truncate(mark)
	}
	// Released at once: a savepoint left open would keep its copies of the pages it
	// changed until the caller's own savepoint ends.
	if _, rerr := t.tx.ExecContext(ctx, "RELEASE ledger_op"); rerr != nil && err == nil {
		return fmt.Errorf("ledger: release savepoint: %w", rerr)
	}
	return err
}

// writing is called by an operation right before the first of its several writes: it
// takes the savepoint that atomic rolls back to if a later write fails.
func (t *Tx) writing(ctx context.Context) error {
	if t.bare || t.saved {
		return nil
	}
	if store.Optimistic(t.tx) {
		t.wrote = true
		return nil
	}
	if _, err := t.tx.ExecContext(ctx, "SAVEPOINT ledger_op"); err != nil {
		return fmt.Errorf("ledger: savepoint: %w", err)
	}
	t.saved = true
	return nil
}

// CreateAccount opens a customer account (wallet, merchant or agent). A taken id, msisdn
// or code is ErrDuplicate.
func (t *Tx) CreateAccount(ctx context.Context, a NewAccount) (acc Account, err error) {
	err = t.atomic(ctx, func(ctx context.Context) error {
		acc, err = t.createAccount(ctx, a)
		return err
	})
	return acc, err
}

// SystemAccount returns the system account of type typ named name, creating it in
// currency if it does not exist. Its id is "<type>:<name>", e.g. "cash:KES" or
// "airtime_clearing:carrier-a". An existing one in another currency is
// ErrCurrencyMismatch.
func (t *Tx) SystemAccount(ctx context.Context, typ AccountType, name, currency string) (acc Account, err error) {
	err = t.atomic(ctx, func(ctx context.Context) error {
		acc, err = t.systemAccount(ctx, typ, name, currency)
		return err
	})
	return acc, err
}

// SetStatus freezes, reactivates or closes a customer account. Closing is final and needs
// a zero balance and no pending holds (ErrNotEmpty); system accounts stay active.
func (t *Tx) SetStatus(ctx context.Context, id string, s Status) error {
	return t.atomic(ctx, func(ctx context.Context) error { return t.setStatus(ctx, id, s) })
}

// Transfer books r at once: it debits r.Debit and credits r.Credit and writes the two
// journal entries. The same key again returns the first transfer and writes nothing; the
// same key with other accounts, amount, kind or payment id is ErrIdempotencyConflict.
func (t *Tx) Transfer(ctx context.Context, r TransferRequest) (tr Transfer, err error) {
	err = t.atomic(ctx, func(ctx context.Context) error {
		tr, err = t.transfer(ctx, r)
		return err
	})
	return tr, err
}

// Hold reserves r.Amount on r.Debit for a later transfer to r.Credit: the debit
// account's available balance drops, its posted balance does not, and no entry is
// written until Post. The same key again returns the hold as it is now.
func (t *Tx) Hold(ctx context.Context, r HoldRequest) (h Hold, err error) {
	err = t.atomic(ctx, func(ctx context.Context) error {
		h, err = t.hold(ctx, r)
		return err
	})
	return h, err
}

// Post books a pending hold as a transfer whose key is the hold's key. Posting a posted
// hold returns the same transfer; posting a voided one is ErrHoldVoided. Both accounts
// must still be active.
func (t *Tx) Post(ctx context.Context, holdKey string) (tr Transfer, err error) {
	err = t.atomic(ctx, func(ctx context.Context) error {
		tr, err = t.post(ctx, holdKey)
		return err
	})
	return tr, err
}

// Void releases a pending hold. Voiding a voided hold returns it unchanged; voiding a
// posted one is ErrHoldPosted.
func (t *Tx) Void(ctx context.Context, holdKey string) (h Hold, err error) {
	err = t.atomic(ctx, func(ctx context.Context) error {
		h, err = t.void(ctx, holdKey)
		return err
	})
	return h, err
}

// Reverse books a new transfer that undoes transferID: same amount and payment id, the
// accounts swapped, kind "reversal", linked by Reverses. The original is never edited.
// The same key again returns the reversal; reversing under another key is
// ErrAlreadyReversed; a payee that no longer has the funds is ErrInsufficientFunds.
func (t *Tx) Reverse(ctx context.Context, transferID, key string) (tr Transfer, err error) {
	err = t.atomic(ctx, func(ctx context.Context) error {
		tr, err = t.reverse(ctx, transferID, key)
		return err
	})
	return tr, err
}

// Account returns the account with id, as the transaction sees it (with the credits it
// booked that wait for its end applied first).
func (t *Tx) Account(ctx context.Context, id string) (Account, error) {
	return t.accountBy(sqlCtx(ctx), "id", id)
}

// AccountByMSISDN returns the account whose msisdn is msisdn.
func (t *Tx) AccountByMSISDN(ctx context.Context, msisdn string) (Account, error) {
	return t.accountBy(sqlCtx(ctx), "msisdn", msisdn)
}

// AccountByCode returns the merchant account whose code is code.
func (t *Tx) AccountByCode(ctx context.Context, code string) (Account, error) {
	return t.accountBy(sqlCtx(ctx), "code", code)
}

// accountBy is accountBy in t, read again once its waiting credits are applied.
func (t *Tx) accountBy(ctx context.Context, col, val string) (Account, error) {
	a, err := accountBy(ctx, t.tx, col, val)
	if err != nil || !t.CreditWaits(a.ID) {
		return a, err
	}
	if err := t.applyCredits(ctx, []string{a.ID}); err != nil {
		return Account{}, err
	}
	return accountBy(ctx, t.tx, "id", a.ID)
}

// HoldByKey returns the hold with key.
func (t *Tx) HoldByKey(ctx context.Context, key string) (Hold, error) {
	return holdByKey(sqlCtx(ctx), t.tx, key)
}

// TransferByID returns the transfer with id.
func (t *Tx) TransferByID(ctx context.Context, id string) (Transfer, error) {
	if err := t.appendNow(ctx); err != nil {
		return Transfer{}, err
	}
	return transferBy(sqlCtx(ctx), t.tx, "id", id)
}

// TransfersOfPayment returns the transfers booked for paymentID, oldest first.
func (t *Tx) TransfersOfPayment(ctx context.Context, paymentID string) ([]Transfer, error) {
	if err := t.appendNow(ctx); err != nil {
		return nil, err
	}
	return transfersOfPayment(sqlCtx(ctx), t.tx, paymentID)
}

// write runs fn in its own store transaction.
func (l *Ledger) write(ctx context.Context, fn func(ctx context.Context, t *Tx) error) error {
	return l.db.Write(ctx, func(tx store.Tx) error { return fn(sqlCtx(ctx), &Tx{l: l, tx: tx, bare: true}) })
}

// CreateAccount is Tx.CreateAccount in its own transaction.
func (l *Ledger) CreateAccount(ctx context.Context, a NewAccount) (acc Account, err error) {
	err = l.write(ctx, func(ctx context.Context, t *Tx) error {
		acc, err = t.createAccount(ctx, a)
		return err
	})
	return acc, err
}

// SystemAccount is Tx.SystemAccount in its own transaction.
func (l *Ledger) SystemAccount(ctx context.Context, typ AccountType, name, currency string) (acc Account, err error) {
	err = l.write(ctx, func(ctx context.Context, t *Tx) error {
		acc, err = t.systemAccount(ctx, typ, name, currency)
		return err
	})
	return acc, err
}

// SetStatus is Tx.SetStatus in its own transaction.
func (l *Ledger) SetStatus(ctx context.Context, id string, s Status) error {
	return l.write(ctx, func(ctx context.Context, t *Tx) error { return t.setStatus(ctx, id, s) })
}

// Transfer is Tx.Transfer in its own transaction.
func (l *Ledger) Transfer(ctx context.Context, r TransferRequest) (tr Transfer, err error) {
	err = l.write(ctx, func(ctx context.Context, t *Tx) error {
		tr, err = t.transfer(ctx, r)
		return err
	})
	return tr, err
}

// Hold is Tx.Hold in its own transaction.
func (l *Ledger) Hold(ctx context.Context, r HoldRequest) (h Hold, err error) {
	err = l.write(ctx, func(ctx context.Context, t *Tx) error {
		h, err = t.hold(ctx, r)
		return err
	})
	return h, err
}

// Post is Tx.Post in its own transaction.
func (l *Ledger) Post(ctx context.Context, holdKey string) (tr Transfer, err error) {
	err = l.write(ctx, func(ctx context.Context, t *Tx) error {
		tr, err = t.post(ctx, holdKey)
		return err
	})
	return tr, err
}

// Void is Tx.Void in its own transaction.
func (l *Ledger) Void(ctx context.Context, holdKey string) (h Hold, err error) {
	err = l.write(ctx, func(ctx context.Context, t *Tx) error {
		h, err = t.void(ctx, holdKey)
		return err
	})
	return h, err
}

// Reverse is Tx.Reverse in its own transaction.
func (l *Ledger) Reverse(ctx context.Context, transferID, key string) (tr Transfer, err error) {
	err = l.write(ctx, func(ctx context.Context, t *Tx) error {
		tr, err = t.reverse(ctx, transferID, key)
		return err
	})
	return tr, err
}

// querier is what reads need: the writer's transaction or the reader pool.
type querier interface {
	QueryContext(ctx context.Context, q string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, q string, args ...any) *sql.Row
}

// constraintColumn returns the "table.column" of a UNIQUE or PRIMARY KEY violation, or ""
// when err is not one.
func constraintColumn(err error) string {
	name, _ := store.UniqueViolation(err)
	return name
}
