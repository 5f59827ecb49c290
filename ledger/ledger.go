package ledger

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/payswitch/payswitch/store"
)

// Ledger is the double-entry ledger over a store.DB. Writes go through the store's single
// writer, so every check (funds, idempotency, status) happens in the transaction that
// writes; reads use the store's reader pool.
type Ledger struct {
	db    *store.DB
	now   func() time.Time
	owned bool // Close closes db: Open made it
}

// New returns a ledger over db, whose file must have Schema applied. now is the clock of
// the journal (nil means time.Now). Close does not close db.
func New(db *store.DB, now func() time.Time) *Ledger {
	if now == nil {
		now = time.Now
	}
	return &Ledger{db: db, now: now}
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
	tx *sql.Tx
	// head is the journal's last entry, known only inside a batch, which alone decides
	// whether each of its savepoints commits or rolls back. Elsewhere it is read in the
	// transaction, because a caller's rollback would make a remembered head wrong.
	head *chainHead
	// writes counts statements run by exec (the writing ones), so that a batch can tell
	// whether a failed request had written anything before it failed.
	writes int
}

// In returns the ledger working inside tx, a transaction of l.DB().Write.
func (l *Ledger) In(tx *sql.Tx) *Tx { return &Tx{l: l, tx: tx} }

// sqlCtx strips cancellation: the store runs a write function to completion once it has
// started (its caller then waits for the outcome), and a cancellable context would make
// the driver start a watcher goroutine for every statement.
func sqlCtx(ctx context.Context) context.Context { return context.WithoutCancel(ctx) }

func (t *Tx) exec(ctx context.Context, q string, args ...any) (res sql.Result, err error) {
	res, err = t.tx.ExecContext(ctx, q, args...)
	if err == nil {
		t.writes++
	}
	return res, err
}

// atomic runs fn in a savepoint so that a failing method leaves the caller's transaction
// as it found it.
func (t *Tx) atomic(ctx context.Context, fn func(ctx context.Context) error) error {
	ctx = sqlCtx(ctx)
	if _, err := t.exec(ctx, "SAVEPOINT ledger_op"); err != nil {
		return fmt.Errorf("ledger: savepoint: %w", err)
	}
	if err := fn(ctx); err != nil {
		if _, rerr := t.exec(ctx, "ROLLBACK TO ledger_op"); rerr != nil {
			return errors.Join(err, fmt.Errorf("ledger: rollback: %w", rerr))
		}
		t.exec(ctx, "RELEASE ledger_op")
		return err
	}
	if _, err := t.exec(ctx, "RELEASE ledger_op"); err != nil {
		return fmt.Errorf("ledger: release savepoint: %w", err)
	}
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

// Account returns the account with id, as the transaction sees it.
func (t *Tx) Account(ctx context.Context, id string) (Account, error) {
	return accountBy(sqlCtx(ctx), t.tx, "id", id)
}

// AccountByMSISDN returns the account whose msisdn is msisdn.
func (t *Tx) AccountByMSISDN(ctx context.Context, msisdn string) (Account, error) {
	return accountBy(sqlCtx(ctx), t.tx, "msisdn", msisdn)
}

// AccountByCode returns the merchant account whose code is code.
func (t *Tx) AccountByCode(ctx context.Context, code string) (Account, error) {
	return accountBy(sqlCtx(ctx), t.tx, "code", code)
}

// HoldByKey returns the hold with key.
func (t *Tx) HoldByKey(ctx context.Context, key string) (Hold, error) {
	return holdByKey(sqlCtx(ctx), t.tx, key)
}

// TransferByID returns the transfer with id.
func (t *Tx) TransferByID(ctx context.Context, id string) (Transfer, error) {
	return transferBy(sqlCtx(ctx), t.tx, "id", id)
}

// TransfersOfPayment returns the transfers booked for paymentID, oldest first.
func (t *Tx) TransfersOfPayment(ctx context.Context, paymentID string) ([]Transfer, error) {
	return transfersOfPayment(sqlCtx(ctx), t.tx, paymentID)
}

// write runs fn in its own store transaction.
func (l *Ledger) write(ctx context.Context, fn func(ctx context.Context, t *Tx) error) error {
	return l.db.Write(ctx, func(tx *sql.Tx) error { return fn(sqlCtx(ctx), l.In(tx)) })
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

// TransferBatch books many transfers with one durable commit, for bulk work (settlement,
// imports, load) where a commit per transfer would cost more than the transfers.
//
// The requests run in order inside one store.Write, and each fails alone: a request that
// is refused (insufficient funds, an idempotency conflict, an unknown account, ...) is
// reported in errs[i], writes nothing, and the others commit. A request sees the effects
// of the earlier ones: a wallet credited by request 1 can spend in request 2, and a key
// repeated in the batch returns the first transfer. transfers[i] is the zero Transfer
// when errs[i] is not nil. If the commit itself fails, nothing was booked and every
// errs[i] is that error. Both slices have len(rs) entries.
//
// How: every check of a transfer happens before its first write, so a refused request
// has nothing to undo. The batch therefore runs under one savepoint (ledger_batch)
// instead of one per request, because SQLite's in-memory sub-journal makes each nested
// savepoint's release cost time in proportion to the batch so far (quadratic per batch;
// a quarter of the CPU at 500 per batch). Should a request fail after it started writing
// (an I/O error, say), the batch is rolled back to ledger_batch and run again with each
// request inside its own savepoint (ledger_item), so that it still fails alone.
func (l *Ledger) TransferBatch(ctx context.Context, rs []TransferRequest) ([]Transfer, []error) {
	trs := make([]Transfer, len(rs))
	errs := make([]error, len(rs))
	if len(rs) == 0 {
		return trs, errs
	}
	err := l.db.Write(ctx, func(tx *sql.Tx) error {
		ctx := sqlCtx(ctx)
		t := &Tx{l: l, tx: tx, head: &chainHead{seq: -1}}
		if _, err := t.exec(ctx, "SAVEPOINT ledger_batch"); err != nil {
			return fmt.Errorf("ledger: batch savepoint: %w", err)
		}
		clean := true
		for i, r := range rs {
			before := t.writes
			trs[i], errs[i] = t.transfer(ctx, r)
			if errs[i] != nil && t.writes != before {
				clean = false
				break
			}
		}
		if clean {
			if _, err := t.exec(ctx, "RELEASE ledger_batch"); err != nil {
				return fmt.Errorf("ledger: batch release: %w", err)
			}
			return nil
		}
		if _, err := t.exec(ctx, "ROLLBACK TO ledger_batch"); err != nil {
			return fmt.Errorf("ledger: batch rollback: %w", err)
		}
		if _, err := t.exec(ctx, "RELEASE ledger_batch"); err != nil {
			return fmt.Errorf("ledger: batch release: %w", err)
		}
		t.head.seq = -1 // the head was rolled back too: read it again
		for i, r := range rs {
			trs[i], errs[i] = t.transferAlone(ctx, r)
			if errors.Is(errs[i], errTxBroken) {
				return errs[i]
			}
		}
		return nil
	})
	if err != nil {
		for i := range rs {
			trs[i], errs[i] = Transfer{}, err
		}
	}
	for i := range rs {
		if errs[i] != nil {
			trs[i] = Transfer{}
		}
	}
	return trs, errs
}

// errTxBroken marks a failure to roll back a savepoint: the transaction is in an unknown
// state and nothing more may be done in it.
var errTxBroken = errors.New("ledger: transaction broken")

// transferAlone books r inside its own savepoint (ledger_item), so that a failure after
// it started writing undoes only its own writes.
func (t *Tx) transferAlone(ctx context.Context, r TransferRequest) (Transfer, error) {
	if _, err := t.exec(ctx, "SAVEPOINT ledger_item"); err != nil {
		return Transfer{}, fmt.Errorf("%w: savepoint: %w", errTxBroken, err)
	}
	saved := *t.head
	tr, err := t.transfer(ctx, r)
	if err != nil {
		*t.head = saved
		if _, rerr := t.exec(ctx, "ROLLBACK TO ledger_item"); rerr != nil {
			return Transfer{}, fmt.Errorf("%w: rollback: %w", errTxBroken, rerr)
		}
	}
	if _, rerr := t.exec(ctx, "RELEASE ledger_item"); rerr != nil {
		return Transfer{}, fmt.Errorf("%w: release: %w", errTxBroken, rerr)
	}
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
	var se *sqlite.Error
	if !errors.As(err, &se) {
		return ""
	}
	if c := se.Code(); c != sqlite3.SQLITE_CONSTRAINT_UNIQUE && c != sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY {
		return ""
	}
	msg := se.Error()
	if i := strings.LastIndex(msg, "failed: "); i >= 0 {
		msg = msg[i+len("failed: "):]
	}
	if i := strings.IndexAny(msg, " ("); i >= 0 {
		msg = msg[:i]
	}
	return msg
}

// maskMSISDN shows a phone number as people may see it in errors and logs: 2547****001.
func maskMSISDN(s string) string {
	if len(s) <= 7 {
		return "****"
	}
	return s[:4] + "****" + s[len(s)-3:]
}
