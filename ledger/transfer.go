package ledger

import (
	"context"
	"fmt"
	"math"

	"github.com/payswitch/payswitch/store"
)

// side is an account as a transfer needs it, read inside the writing transaction.
type side struct {
	id             string
	typ            AccountType
	currency       string
	status         Status
	debitsPosted   int64
	creditsPosted  int64
	debitsPending  int64
	creditsPending int64
}

func (s *side) posted() int64    { return s.creditsPosted - s.debitsPosted }
func (s *side) available() int64 { return s.posted() - s.debitsPending }

func checkRequest(key, debit, credit string, amount int64, kind string) error {
	switch {
	case key == "":
		return fmt.Errorf("%w: missing idempotency key", ErrInvalidRequest)
	case kind == "":
		return fmt.Errorf("%w: missing kind", ErrInvalidRequest)
	case kind == KindReversal:
		return fmt.Errorf("%w: only Reverse books kind %q", ErrInvalidRequest, KindReversal)
	case amount <= 0:
		return fmt.Errorf("%w: %d: must be more than zero", ErrInvalidAmount, amount)
	case debit == credit:
		return fmt.Errorf("%w: %s", ErrSameAccount, debit)
	}
	return nil
}

// checkMove says whether amount may move from d to c: both active, one currency, and,
// when spend is set, d may spend it. It also refuses totals that would overflow.
func checkMove(d, c *side, amount int64, spend bool) error {
	for _, s := range []*side{d, c} {
		if s.status != Active {
			return fmt.Errorf("%w: %s is %s", ErrAccountInactive, s.id, s.status)
		}
	}
	if d.currency != c.currency {
		return fmt.Errorf("%w: %s is in %s, %s in %s", ErrCurrencyMismatch, d.id, d.currency, c.id, c.currency)
	}
	if spend && !d.typ.MayGoNegative() && d.available() < amount {
		return fmt.Errorf("%w: %s has %d available, needs %d", ErrInsufficientFunds, d.id, d.available(), amount)
	}
	for _, total := range []int64{d.debitsPosted, d.debitsPending, c.creditsPosted, c.creditsPending} {
		if total > math.MaxInt64-amount {
			return fmt.Errorf("%w: %d would overflow an account total", ErrInvalidAmount, amount)
		}
	}
	return nil
}

func bothFound(d, c *side, debit, credit string) error {
	if d == nil || d.id == "" {
		return fmt.Errorf("%w: account %s", ErrNotFound, debit)
	}
	if c == nil || c.id == "" {
		return fmt.Errorf("%w: account %s", ErrNotFound, credit)
	}
	return nil
}

// decideTransfer applies every check of transfer request r to what the transaction
// knows: prev is the transfer r's key names (nil if none), isHold says the key names a
// hold instead, d and c are r's accounts (nil or blank if missing). It returns the earlier
// transfer when r repeats it (done), an error when r is refused, or neither when r may be
// booked. Both TransferBatch and Transfer decide with it, so that they agree.
func decideTransfer(r *TransferRequest, prev *Transfer, isHold bool, d, c *side) (_ Transfer, done bool, _ error) {
	switch {
	case prev != nil:
		if prev.Debit == r.Debit && prev.Credit == r.Credit && prev.Amount == r.Amount &&
			prev.Kind == r.Kind && prev.PaymentID == r.PaymentID && prev.Reverses == "" {
			return *prev, true, nil
		}
		return Transfer{}, false, fmt.Errorf("%w: key %q is transfer %s", ErrIdempotencyConflict, r.Key, prev.ID)
	case isHold:
		return Transfer{}, false, fmt.Errorf("%w: key %q is a hold", ErrIdempotencyConflict, r.Key)
	}
	if err := bothFound(d, c, r.Debit, r.Credit); err != nil {
		return Transfer{}, false, err
	}
	return Transfer{}, false, checkMove(d, c, r.Amount, true)
}

// toLock is what a booking from debit to credit locks before it checks: both accounts,
// or only the debit when the credit waits for the transaction's end (postgres_credits.go).
func (t *Tx) toLock(debit, credit string) []string {
	if t.creditsWait() {
		return []string{debit}
	}
	return []string{debit, credit}
}

func (t *Tx) transfer(ctx context.Context, r TransferRequest) (Transfer, error) {
	if err := checkRequest(r.Key, r.Debit, r.Credit, r.Amount, r.Kind); err != nil {
		return Transfer{}, err
	}
	if err := t.lockKey(ctx, r.Key, t.toLock(r.Debit, r.Credit)...); err != nil {
		return Transfer{}, err
	}
	k, err := t.lookup(ctx, lookupTransfer, r.Key, r.Debit, r.Credit)
	if err != nil {
		return Transfer{}, err
	}
	d, c := k.account(r.Debit), k.account(r.Credit)
	prev, done, err := decideTransfer(&r, k.transfer(), k.hasHold, d, c)
	if err != nil || done {
		if err == nil {
			return t.appended(ctx, prev)
		}
		return prev, err
	}
	return t.book(ctx, k.head, r.Key, d, c, r.Amount, r.PaymentID, r.Kind, "", 0)
}

// journalTime is the time of entries that follow head: now, or head's time if the clock
// is behind it. The journal's time never runs backwards, even if the clock does, so that
// seq order is time order and a period of the journal is one run of seqs.
func (t *Tx) journalTime(head chainHead) string {
	ts := FormatTime(t.l.now())
	if ts < head.time {
		ts = head.time
	}
	return ts
}

// entriesOf returns the two journal entries of tr after head: its debit, which leaves the
// debit account at tr.DebitBalanceAfter, then its credit, which leaves the credit account
// at tr.CreditBalanceAfter. So the balances a booking call returns are those it wrote.
func entriesOf(head chainHead, ts string, tr *Transfer) (de, ce Entry) {
	de = Entry{Seq: head.seq + 1, TimeText: ts, TransferID: tr.ID, PaymentID: tr.PaymentID, AccountID: tr.Debit,
		Direction: Debit, Amount: tr.Amount, Currency: tr.Currency, BalanceAfter: tr.DebitBalanceAfter, PrevHash: head.hash}
	de.Hash = EntryHash(de)
	ce = Entry{Seq: head.seq + 2, TimeText: ts, TransferID: tr.ID, PaymentID: tr.PaymentID, AccountID: tr.Credit,
		Direction: Credit, Amount: tr.Amount, Currency: tr.Currency, BalanceAfter: tr.CreditBalanceAfter, PrevHash: de.Hash}
	ce.Hash = EntryHash(ce)
	return de, ce
}

// entryArgs appends e's columns in the order of insertEntriesColumns.
func entryArgs(args []any, e *Entry) []any {
	return append(args, e.Seq, e.TimeText, e.TransferID, e.PaymentID, e.AccountID, e.Direction, e.Amount,
		e.Currency, e.BalanceAfter, e.PrevHash, e.Hash)
}

// The ledger's writing statements. A transfer's two entries are inserted by one
// statement: each statement costs a round through database/sql and the driver whatever
// it does. Its two accounts are updated by two, though: SQLite runs an UPDATE of several
// rows (WHERE id IN (?, ?)) in two passes over temporary tables, which costs more than
// the second statement.
const (
	insertTransferRow = `INSERT INTO transfers (id, key, debit, credit, amount, currency, payment_id, kind, reverses, time)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING`
	insertEntriesColumns = `INSERT INTO entries (seq, time, transfer_id, payment_id, account_id, direction,
		amount, currency, balance_after, prev_hash, hash) VALUES `
	insertTwoEntries = insertEntriesColumns + `(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?), (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`
	// The amount posted, the amount a posted hold releases from pending, the account.
	postDebit  = `UPDATE accounts SET debits_posted = debits_posted + ?, debits_pending = debits_pending - ? WHERE id = ?`
	postCredit = `UPDATE accounts SET credits_posted = credits_posted + ?, credits_pending = credits_pending - ? WHERE id = ?`
	// The amount added to pending (negative to release), the account.
	holdDebit  = `UPDATE accounts SET debits_pending = debits_pending + ? WHERE id = ?`
	holdCredit = `UPDATE accounts SET credits_pending = credits_pending + ? WHERE id = ?`
)

// book writes a transfer of amount from d to c that the caller has checked, after head:
// the transfer row, both accounts' totals (pending is the amount a posted hold releases,
// else 0), and the two chained journal entries. On PostgreSQL bookPG does it.
func (t *Tx) book(ctx context.Context, head chainHead, key string, d, c *side, amount int64, paymentID, kind, reverses string, pending int64) (Transfer, error) {
	if err := t.writing(ctx); err != nil {
		return Transfer{}, err
	}
	if t.l.pg {
		return t.bookPG(ctx, key, d, c, amount, paymentID, kind, reverses, pending)
	}
	ts := t.journalTime(head)
	tr := newTransfer(ts, key, d, c, amount, paymentID, kind, reverses)
	if err := t.insertTransfer(ctx, &tr, ts); err != nil {
		return Transfer{}, err
	}
	if err := t.updateAccount(ctx, postDebit, d.id, amount, pending); err != nil {
		return Transfer{}, err
	}
	if err := t.updateAccount(ctx, postCredit, c.id, amount, pending); err != nil {
		return Transfer{}, err
	}
	de, ce := entriesOf(head, ts, &tr)
	args := entryArgs(entryArgs(make([]any, 0, 22), &de), &ce)
	if _, err := t.tx.ExecContext(ctx, insertTwoEntries, args...); err != nil {
		return Transfer{}, fmt.Errorf("ledger: append entries %d and %d: %w", de.Seq, ce.Seq, err)
	}
	return tr, nil
}

// newTransfer is the transfer book writes at journal time ts, without its id.
func newTransfer(ts, key string, d, c *side, amount int64, paymentID, kind, reverses string) Transfer {
	return Transfer{Key: key, Debit: d.id, Credit: c.id, Amount: amount, Currency: d.currency,
		PaymentID: paymentID, Kind: kind, Reverses: reverses, Time: parseTime(ts),
		DebitBalanceAfter: d.posted() - amount, CreditBalanceAfter: c.posted() + amount, BalancesAfterKnown: true}
}

// insertTransfer writes tr's row at journal time ts with a new id, which it sets.
func (t *Tx) insertTransfer(ctx context.Context, tr *Transfer, ts string) error {
	for attempt := 0; ; attempt++ {
		tr.ID = t.l.NewTransferID()
		// A taken id inserts nothing rather than failing, because on PostgreSQL a failed
		// statement would abort the transaction and there would be no drawing again.
		res, err := t.tx.ExecContext(ctx, insertTransferRow,
			tr.ID, tr.Key, tr.Debit, tr.Credit, tr.Amount, tr.Currency, tr.PaymentID, tr.Kind, nullable(tr.Reverses), ts)
		if err != nil {
			return transferInsertError(err, tr.Key)
		}
		n, err := res.RowsAffected()
		if err != nil {
			return fmt.Errorf("ledger: insert transfer: %w", err)
		}
		if n == 1 {
			return nil
		}
		if attempt == 3 {
			return fmt.Errorf("ledger: insert transfer: id %s and three more drawn were taken", tr.ID)
		}
		t.l.ids.Reseed() // another ledger made it: see transferIDLayout
	}
}

// transferInsertError is the error of a failed insert of the transfer keyed key: a key
// taken already is an idempotency conflict.
func transferInsertError(err error, key string) error {
	if constraintColumn(err) == "transfers.key" {
		return fmt.Errorf("%w: key %q is another transfer", ErrIdempotencyConflict, key)
	}
	return fmt.Errorf("ledger: insert transfer: %w", err)
}

// updateAccount runs one of the statements that change account id's totals, with args
// before the id, and makes sure it found the account. On PostgreSQL the account is
// locked already (lockAccounts; a missing one is refused before), so the statement
// cannot miss it or wait, and it rides in the next statement's round trip (store.Later).
func (t *Tx) updateAccount(ctx context.Context, q, id string, args ...any) error {
	if t.l.pg {
		if err := store.Later(ctx, t.tx, q, append(args, id)...); err != nil {
			return fmt.Errorf("ledger: update balance of %s: %w", id, err)
		}
		return nil
	}
	res, err := t.tx.ExecContext(ctx, q, append(args, id)...)
	if err != nil {
		return fmt.Errorf("ledger: update balance of %s: %w", id, err)
	}
	if n, err := res.RowsAffected(); err != nil || n != 1 {
		return fmt.Errorf("ledger: update balance of %s: %d rows changed (%v)", id, n, err)
	}
	return nil
}

func (t *Tx) hold(ctx context.Context, r HoldRequest) (Hold, error) {
	if err := checkRequest(r.Key, r.Debit, r.Credit, r.Amount, r.Kind); err != nil {
		return Hold{}, err
	}
	if err := t.lockKey(ctx, r.Key, t.toLock(r.Debit, r.Credit)...); err != nil {
		return Hold{}, err
	}
	k, err := t.lookup(ctx, lookupHold, r.Key, r.Debit, r.Credit)
	if err != nil {
		return Hold{}, err
	}
	switch {
	case k.hasHold:
		prev := k.hold
		if prev.Debit == r.Debit && prev.Credit == r.Credit && prev.Amount == r.Amount &&
			prev.Kind == r.Kind && prev.PaymentID == r.PaymentID {
			return prev, nil
		}
		return Hold{}, fmt.Errorf("%w: key %q is another hold", ErrIdempotencyConflict, r.Key)
	case k.hasTransfer:
		return Hold{}, fmt.Errorf("%w: key %q is a transfer", ErrIdempotencyConflict, r.Key)
	}
	d, c := k.account(r.Debit), k.account(r.Credit)
	if err := bothFound(d, c, r.Debit, r.Credit); err != nil {
		return Hold{}, err
	}
	if err := checkMove(d, c, r.Amount, true); err != nil {
		return Hold{}, err
	}
	now := FormatTime(t.l.now())
	if err := t.writing(ctx); err != nil {
		return Hold{}, err
	}
	if _, err := t.tx.ExecContext(ctx, `INSERT INTO holds (key, debit, credit, amount, currency, payment_id, kind, state, created_at, updated_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, 'pending', ?, ?)`,
		r.Key, r.Debit, r.Credit, r.Amount, d.currency, r.PaymentID, r.Kind, now, now); err != nil {
		if constraintColumn(err) == "holds.key" {
			return Hold{}, fmt.Errorf("%w: key %q is another hold", ErrIdempotencyConflict, r.Key)
		}
		return Hold{}, fmt.Errorf("ledger: insert hold: %w", err)
	}
	if err := t.updateAccount(ctx, holdDebit, d.id, r.Amount); err != nil {
		return Hold{}, err
	}
	if !t.deferCredit(c.id, 0, r.Amount, true, -1) {
		if err := t.updateAccount(ctx, holdCredit, c.id, r.Amount); err != nil {
			return Hold{}, err
		}
	}
	return Hold{Key: r.Key, Debit: r.Debit, Credit: r.Credit, Amount: r.Amount, Currency: d.currency,
		PaymentID: r.PaymentID, Kind: r.Kind, State: HoldPending, CreatedAt: parseTime(now)}, nil
}

func (t *Tx) post(ctx context.Context, key string) (Transfer, error) {
	if err := t.lockHold(ctx, key); err != nil {
		return Transfer{}, err
	}
	k, found, err := t.lookupPost(ctx, key)
	if err != nil {
		return Transfer{}, err
	}
	if !found {
		return Transfer{}, fmt.Errorf("%w: hold %s", ErrNotFound, key)
	}
	h := &k.hold
	switch h.State {
	case HoldVoided:
		return Transfer{}, fmt.Errorf("%w: %s", ErrHoldVoided, key)
	case HoldPosted:
		tr, err := transferBy(ctx, t.tx, "id", h.TransferID)
		if err != nil {
			return tr, err
		}
		return t.appended(ctx, tr)
	}
	d, c := &k.d, &k.c
	if err := bothFound(d, c, h.Debit, h.Credit); err != nil {
		return Transfer{}, err
	}
	// The funds are reserved already: posting moves held to posted and leaves available
	// as it is, so only status and overflow are checked again.
	if err := checkMove(d, c, h.Amount, false); err != nil {
		return Transfer{}, err
	}
	tr, err := t.book(ctx, k.head, h.Key, d, c, h.Amount, h.PaymentID, h.Kind, "", h.Amount)
	if err != nil {
		return Transfer{}, err
	}
	// The hold is locked (lockHold) and read: nothing is read back from this UPDATE, so on
	// PostgreSQL it rides in the next statement's round trip (store.Later).
	if err := store.Later(ctx, t.tx, `UPDATE holds SET state = 'posted', transfer_id = ?, updated_at = ? WHERE key = ?`,
		tr.ID, FormatTime(tr.Time), key); err != nil {
		return Transfer{}, fmt.Errorf("ledger: mark hold posted: %w", err)
	}
	return tr, nil
}

func (t *Tx) void(ctx context.Context, key string) (Hold, error) {
	if err := t.lockHold(ctx, key); err != nil {
		return Hold{}, err
	}
	h, err := holdByKey(ctx, t.tx, key)
	if err != nil {
		return Hold{}, err
	}
	switch h.State {
	case HoldPosted:
		return Hold{}, fmt.Errorf("%w: %s is transfer %s", ErrHoldPosted, key, h.TransferID)
	case HoldVoided:
		return h, nil
	}
	if err := t.writing(ctx); err != nil {
		return Hold{}, err
	}
	if err := t.updateAccount(ctx, holdDebit, h.Debit, -h.Amount); err != nil {
		return Hold{}, err
	}
	if !t.deferCredit(h.Credit, 0, -h.Amount, false, -1) {
		if err := t.updateAccount(ctx, holdCredit, h.Credit, -h.Amount); err != nil {
			return Hold{}, err
		}
	}
	if _, err := t.tx.ExecContext(ctx, `UPDATE holds SET state = 'voided', updated_at = ? WHERE key = ?`,
		FormatTime(t.l.now()), key); err != nil {
		return Hold{}, fmt.Errorf("ledger: mark hold voided: %w", err)
	}
	h.State = HoldVoided
	return h, nil
}

func (t *Tx) reverse(ctx context.Context, transferID, key string) (Transfer, error) {
	if key == "" {
		return Transfer{}, fmt.Errorf("%w: missing idempotency key", ErrInvalidRequest)
	}
	if err := t.lockReversal(ctx, key, transferID); err != nil {
		return Transfer{}, err
	}
	k, err := t.lookup(ctx, lookupReverse, key, transferID)
	if err != nil {
		return Transfer{}, err
	}
	switch {
	case k.hasTransfer:
		if k.tr.Reverses == transferID {
			return t.appended(ctx, k.tr)
		}
		return Transfer{}, fmt.Errorf("%w: key %q is transfer %s", ErrIdempotencyConflict, key, k.tr.ID)
	case k.hasHold:
		return Transfer{}, fmt.Errorf("%w: key %q is a hold", ErrIdempotencyConflict, key)
	case !k.hasOrig:
		return Transfer{}, fmt.Errorf("%w: transfer %s", ErrNotFound, transferID)
	}
	orig := &k.orig
	if orig.Reverses != "" {
		return Transfer{}, fmt.Errorf("%w: %s is a reversal; book a new transfer instead", ErrInvalidRequest, transferID)
	}
	if k.reversedBy != "" {
		return Transfer{}, fmt.Errorf("%w: %s by %s", ErrAlreadyReversed, transferID, k.reversedBy)
	}
	d, c := k.account(orig.Credit), k.account(orig.Debit)
	if err := bothFound(d, c, orig.Credit, orig.Debit); err != nil {
		return Transfer{}, err
	}
	if err := checkMove(d, c, orig.Amount, true); err != nil {
		return Transfer{}, err
	}
	return t.book(ctx, k.head, key, d, c, orig.Amount, orig.PaymentID, KindReversal, orig.ID, 0)
}
