package ledger

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
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

// Kinds of thing a key can name.
const (
	keyFree = iota
	keyTransfer
	keyHold
)

// lookup reads, in one statement, what a transfer needs to know before it writes: what
// key already names (a transfer, returned, or a hold that is not posted; a posted hold's
// key names its transfer) and the debit and credit accounts. An empty key or account id
// looks nothing up. The three parts share one row shape, so unused columns are blank.
func (t *Tx) lookup(ctx context.Context, key, debit, credit string) (prev Transfer, found int, d, c side, err error) {
	rows, err := t.tx.QueryContext(ctx, `
		SELECT 'a', id, type, currency, status, debits_posted, credits_posted, debits_pending, credits_pending,
			'', '', '', ''
		FROM accounts WHERE id IN (?2, ?3)
		UNION ALL
		SELECT 't', id, debit, credit, currency, amount, 0, 0, 0, payment_id, kind, COALESCE(reverses, ''), time
		FROM transfers WHERE key = ?1
		UNION ALL
		SELECT 'h', key, debit, credit, currency, amount, 0, 0, 0, payment_id, kind, '', created_at
		FROM holds WHERE key = ?1 AND state <> 'posted'`, key, debit, credit)
	if err != nil {
		return prev, found, d, c, fmt.Errorf("ledger: look up accounts and key: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var tag, id, s1, s2, s3, s4, s5, s6, s7 string
		var n1, n2, n3, n4 int64
		if err := rows.Scan(&tag, &id, &s1, &s2, &s3, &n1, &n2, &n3, &n4, &s4, &s5, &s6, &s7); err != nil {
			return prev, found, d, c, fmt.Errorf("ledger: look up accounts and key: %w", err)
		}
		switch tag {
		case "a":
			a := side{id: id, typ: AccountType(s1), currency: s2, status: Status(s3),
				debitsPosted: n1, creditsPosted: n2, debitsPending: n3, creditsPending: n4}
			if id == debit {
				d = a
			} else {
				c = a
			}
		case "t":
			prev = Transfer{ID: id, Key: key, Debit: s1, Credit: s2, Currency: s3, Amount: n1, PaymentID: s4,
				Kind: s5, Reverses: s6, Time: parseTime(s7)}
			found = keyTransfer
		case "h":
			found = keyHold
		}
	}
	if err := rows.Err(); err != nil {
		return prev, found, d, c, fmt.Errorf("ledger: look up accounts and key: %w", err)
	}
	return prev, found, d, c, nil
}

// byKey finds what key already names, see lookup.
func (t *Tx) byKey(ctx context.Context, key string) (Transfer, int, error) {
	prev, found, _, _, err := t.lookup(ctx, key, "", "")
	return prev, found, err
}

// pair reads the debit and credit accounts; a missing one is ErrNotFound.
func (t *Tx) pair(ctx context.Context, debit, credit string) (d, c side, err error) {
	_, _, d, c, err = t.lookup(ctx, "", debit, credit)
	if err != nil {
		return d, c, err
	}
	return d, c, bothFound(&d, &c, debit, credit)
}

func bothFound(d, c *side, debit, credit string) error {
	if d.id == "" {
		return fmt.Errorf("%w: account %s", ErrNotFound, debit)
	}
	if c.id == "" {
		return fmt.Errorf("%w: account %s", ErrNotFound, credit)
	}
	return nil
}

func (t *Tx) transfer(ctx context.Context, r TransferRequest) (Transfer, error) {
	if err := checkRequest(r.Key, r.Debit, r.Credit, r.Amount, r.Kind); err != nil {
		return Transfer{}, err
	}
	prev, found, d, c, err := t.lookup(ctx, r.Key, r.Debit, r.Credit)
	if err != nil {
		return Transfer{}, err
	}
	switch found {
	case keyTransfer:
		if prev.Debit == r.Debit && prev.Credit == r.Credit && prev.Amount == r.Amount &&
			prev.Kind == r.Kind && prev.PaymentID == r.PaymentID && prev.Reverses == "" {
			return prev, nil
		}
		return Transfer{}, fmt.Errorf("%w: key %q is transfer %s", ErrIdempotencyConflict, r.Key, prev.ID)
	case keyHold:
		return Transfer{}, fmt.Errorf("%w: key %q is a hold", ErrIdempotencyConflict, r.Key)
	}
	if err := bothFound(&d, &c, r.Debit, r.Credit); err != nil {
		return Transfer{}, err
	}
	if err := checkMove(&d, &c, r.Amount, true); err != nil {
		return Transfer{}, err
	}
	return t.book(ctx, r.Key, &d, &c, r.Amount, r.PaymentID, r.Kind, "", 0)
}

// chainHead returns the journal's last entry. A batch keeps it in t.head; otherwise it is
// read here, in the transaction, which is one step down the primary key.
func (t *Tx) chainHead(ctx context.Context) (chainHead, error) {
	if t.head != nil && t.head.seq >= 0 {
		return *t.head, nil
	}
	h := chainHead{hash: GenesisHash}
	err := t.tx.QueryRowContext(ctx, `SELECT seq, time, hash FROM entries ORDER BY seq DESC LIMIT 1`).Scan(&h.seq, &h.time, &h.hash)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return chainHead{}, fmt.Errorf("ledger: read journal head: %w", err)
	}
	if t.head != nil {
		*t.head = h
	}
	return h, nil
}

// book writes a transfer of amount from d to c that the caller has checked: the transfer
// row, both accounts' totals (pending is the amount a posted hold releases, else 0), and
// the two chained journal entries.
func (t *Tx) book(ctx context.Context, key string, d, c *side, amount int64, paymentID, kind, reverses string, pending int64) (Transfer, error) {
	head, err := t.chainHead(ctx)
	if err != nil {
		return Transfer{}, err
	}
	// Journal time never runs backwards, even if the clock does, so that seq order is
	// time order and a period of the journal is one run of seqs.
	ts := FormatTime(t.l.now())
	if ts < head.time {
		ts = head.time
	}
	tr := Transfer{Key: key, Debit: d.id, Credit: c.id, Amount: amount, Currency: d.currency,
		PaymentID: paymentID, Kind: kind, Reverses: reverses, Time: parseTime(ts)}
	for attempt := 0; ; attempt++ {
		tr.ID = NewTransferID()
		_, err = t.exec(ctx, `INSERT INTO transfers (id, key, debit, credit, amount, currency, payment_id, kind, reverses, time)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			tr.ID, key, d.id, c.id, amount, tr.Currency, paymentID, kind, nullable(reverses), ts)
		if err == nil {
			break
		}
		switch constraintColumn(err) {
		case "transfers.id":
			if attempt < 3 {
				continue // 36^12 ids: a collision is a fluke, another draw settles it
			}
		case "transfers.key":
			return Transfer{}, fmt.Errorf("%w: key %q is another transfer", ErrIdempotencyConflict, key)
		}
		return Transfer{}, fmt.Errorf("ledger: insert transfer: %w", err)
	}
	// One row per statement: SQLite gives a multi-row statement its own statement
	// journal, and inside a long batch closing one costs time in proportion to the
	// batch so far.
	if _, err := t.exec(ctx, `UPDATE accounts SET debits_posted = debits_posted + ?, debits_pending = debits_pending - ?
		WHERE id = ?`, amount, pending, d.id); err != nil {
		return Transfer{}, fmt.Errorf("ledger: update balance of %s: %w", d.id, err)
	}
	if _, err := t.exec(ctx, `UPDATE accounts SET credits_posted = credits_posted + ?, credits_pending = credits_pending - ?
		WHERE id = ?`, amount, pending, c.id); err != nil {
		return Transfer{}, fmt.Errorf("ledger: update balance of %s: %w", c.id, err)
	}
	de := Entry{Seq: head.seq + 1, TimeText: ts, TransferID: tr.ID, PaymentID: paymentID, AccountID: d.id,
		Direction: Debit, Amount: amount, Currency: tr.Currency, BalanceAfter: d.posted() - amount, PrevHash: head.hash}
	de.Hash = EntryHash(de)
	ce := Entry{Seq: head.seq + 2, TimeText: ts, TransferID: tr.ID, PaymentID: paymentID, AccountID: c.id,
		Direction: Credit, Amount: amount, Currency: tr.Currency, BalanceAfter: c.posted() + amount, PrevHash: de.Hash}
	ce.Hash = EntryHash(ce)
	for _, e := range []*Entry{&de, &ce} {
		if _, err := t.exec(ctx, `INSERT INTO entries (seq, time, transfer_id, payment_id, account_id, direction,
				amount, currency, balance_after, prev_hash, hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			e.Seq, ts, tr.ID, paymentID, e.AccountID, e.Direction, amount, tr.Currency, e.BalanceAfter, e.PrevHash, e.Hash); err != nil {
			return Transfer{}, fmt.Errorf("ledger: append entry %d: %w", e.Seq, err)
		}
	}
	if t.head != nil {
		*t.head = chainHead{seq: ce.Seq, time: ts, hash: ce.Hash}
	}
	return tr, nil
}

func (t *Tx) hold(ctx context.Context, r HoldRequest) (Hold, error) {
	if err := checkRequest(r.Key, r.Debit, r.Credit, r.Amount, r.Kind); err != nil {
		return Hold{}, err
	}
	prev, err := holdByKey(ctx, t.tx, r.Key)
	switch {
	case err == nil:
		if prev.Debit == r.Debit && prev.Credit == r.Credit && prev.Amount == r.Amount &&
			prev.Kind == r.Kind && prev.PaymentID == r.PaymentID {
			return prev, nil
		}
		return Hold{}, fmt.Errorf("%w: key %q is another hold", ErrIdempotencyConflict, r.Key)
	case !errors.Is(err, ErrNotFound):
		return Hold{}, err
	}
	if _, found, err := t.byKey(ctx, r.Key); err != nil {
		return Hold{}, err
	} else if found != keyFree {
		return Hold{}, fmt.Errorf("%w: key %q is a transfer", ErrIdempotencyConflict, r.Key)
	}
	d, c, err := t.pair(ctx, r.Debit, r.Credit)
	if err != nil {
		return Hold{}, err
	}
	if err := checkMove(&d, &c, r.Amount, true); err != nil {
		return Hold{}, err
	}
	now := FormatTime(t.l.now())
	if _, err := t.exec(ctx, `INSERT INTO holds (key, debit, credit, amount, currency, payment_id, kind, state, created_at, updated_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, 'pending', ?, ?)`,
		r.Key, r.Debit, r.Credit, r.Amount, d.currency, r.PaymentID, r.Kind, now, now); err != nil {
		return Hold{}, fmt.Errorf("ledger: insert hold: %w", err)
	}
	if err := t.movePending(ctx, d.id, c.id, r.Amount); err != nil {
		return Hold{}, err
	}
	return Hold{Key: r.Key, Debit: r.Debit, Credit: r.Credit, Amount: r.Amount, Currency: d.currency,
		PaymentID: r.PaymentID, Kind: r.Kind, State: HoldPending, CreatedAt: parseTime(now)}, nil
}

// movePending adds amount (negative to release) to the debit's and the credit's pending
// totals.
func (t *Tx) movePending(ctx context.Context, debit, credit string, amount int64) error {
	if _, err := t.exec(ctx, `UPDATE accounts SET debits_pending = debits_pending + ? WHERE id = ?`, amount, debit); err != nil {
		return fmt.Errorf("ledger: update pending total of %s: %w", debit, err)
	}
	if _, err := t.exec(ctx, `UPDATE accounts SET credits_pending = credits_pending + ? WHERE id = ?`, amount, credit); err != nil {
		return fmt.Errorf("ledger: update pending total of %s: %w", credit, err)
	}
	return nil
}

func (t *Tx) post(ctx context.Context, key string) (Transfer, error) {
	h, err := holdByKey(ctx, t.tx, key)
	if err != nil {
		return Transfer{}, err
	}
	switch h.State {
	case HoldVoided:
		return Transfer{}, fmt.Errorf("%w: %s", ErrHoldVoided, key)
	case HoldPosted:
		return transferBy(ctx, t.tx, "id", h.TransferID)
	}
	d, c, err := t.pair(ctx, h.Debit, h.Credit)
	if err != nil {
		return Transfer{}, err
	}
	// The funds are reserved already: posting moves held to posted and leaves available
	// as it is, so only status and overflow are checked again.
	if err := checkMove(&d, &c, h.Amount, false); err != nil {
		return Transfer{}, err
	}
	tr, err := t.book(ctx, h.Key, &d, &c, h.Amount, h.PaymentID, h.Kind, "", h.Amount)
	if err != nil {
		return Transfer{}, err
	}
	if _, err := t.exec(ctx, `UPDATE holds SET state = 'posted', transfer_id = ?, updated_at = ? WHERE key = ?`,
		tr.ID, FormatTime(tr.Time), key); err != nil {
		return Transfer{}, fmt.Errorf("ledger: mark hold posted: %w", err)
	}
	return tr, nil
}

func (t *Tx) void(ctx context.Context, key string) (Hold, error) {
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
	if err := t.movePending(ctx, h.Debit, h.Credit, -h.Amount); err != nil {
		return Hold{}, err
	}
	if _, err := t.exec(ctx, `UPDATE holds SET state = 'voided', updated_at = ? WHERE key = ?`,
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
	prev, found, err := t.byKey(ctx, key)
	if err != nil {
		return Transfer{}, err
	}
	switch found {
	case keyTransfer:
		if prev.Reverses == transferID {
			return prev, nil
		}
		return Transfer{}, fmt.Errorf("%w: key %q is transfer %s", ErrIdempotencyConflict, key, prev.ID)
	case keyHold:
		return Transfer{}, fmt.Errorf("%w: key %q is a hold", ErrIdempotencyConflict, key)
	}
	orig, err := transferBy(ctx, t.tx, "id", transferID)
	if err != nil {
		return Transfer{}, err
	}
	if orig.Reverses != "" {
		return Transfer{}, fmt.Errorf("%w: %s is a reversal; book a new transfer instead", ErrInvalidRequest, transferID)
	}
	var by string
	err = t.tx.QueryRowContext(ctx, `SELECT id FROM transfers WHERE reverses = ?`, transferID).Scan(&by)
	switch {
	case err == nil:
		return Transfer{}, fmt.Errorf("%w: %s by %s", ErrAlreadyReversed, transferID, by)
	case !errors.Is(err, sql.ErrNoRows):
		return Transfer{}, fmt.Errorf("ledger: look up reversal: %w", err)
	}
	d, c, err := t.pair(ctx, orig.Credit, orig.Debit)
	if err != nil {
		return Transfer{}, err
	}
	if err := checkMove(&d, &c, orig.Amount, true); err != nil {
		return Transfer{}, err
	}
	return t.book(ctx, key, &d, &c, orig.Amount, orig.PaymentID, KindReversal, orig.ID, 0)
}
