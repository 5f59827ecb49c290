package ledger

import (
	"context"
	"database/sql"
	"fmt"
	"sort"
)

// maxProblems bounds a report: past the first few, more lines say nothing new.
const maxProblems = 100

// totals are an account's four sums, as stored or as recomputed.
type totals struct {
	debitsPosted, creditsPosted, debitsPending, creditsPending int64
}

type verifier struct {
	r        Report
	accounts map[string]*verifiedAccount
}

type verifiedAccount struct {
	typ      AccountType
	currency string
	stored   totals
	computed totals
	// stated is the balance_after of the account's last entry: each entry is checked
	// against it, so a wrong entry is named once rather than every later one.
	stated int64
}

func (v *verifier) problem(format string, args ...any) {
	if len(v.r.Problems) < maxProblems {
		v.r.Problems = append(v.r.Problems, fmt.Sprintf(format, args...))
	}
}

// Verify checks the whole ledger from one read snapshot, without trusting anything it
// derives: it walks the hash chain from the genesis hash (seqs gapless from 1, each
// prev_hash the hash before, each hash recomputed by EntryHash), checks every entry
// against its transfer (one debit and one credit, same amount, currency and payment) and
// its balance_after against the account's previous one, recomputes every account's posted
// totals from the entries and pending totals from the holds and compares them with the
// stored columns, checks no customer account is below zero, and checks debits equal
// credits per currency. Report.Problems names what is wrong, the first problem first.
// The error is only for failing to read.
func (l *Ledger) Verify(ctx context.Context) (Report, error) {
	tx, err := l.db.ReadSnapshot(ctx)
	if err != nil {
		return Report{}, fmt.Errorf("ledger: verify: %w", err)
	}
	defer tx.Rollback()
	v := &verifier{r: Report{Totals: map[string]Totals{}}, accounts: map[string]*verifiedAccount{}}
	if err := v.loadAccounts(ctx, tx); err != nil {
		return Report{}, err
	}
	if err := v.walkJournal(ctx, tx); err != nil {
		return Report{}, err
	}
	if err := v.loadHolds(ctx, tx); err != nil {
		return Report{}, err
	}
	if l.pg {
		if err := v.checkHead(ctx, tx); err != nil {
			return Report{}, err
		}
	}
	if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM transfers`).Scan(&v.r.Transfers); err != nil {
		return Report{}, fmt.Errorf("ledger: verify: count transfers: %w", err)
	}
	if v.r.Entries != 2*v.r.Transfers {
		v.problem("journal: %d entries for %d transfers, want two per transfer", v.r.Entries, v.r.Transfers)
	}
	v.compareAccounts()
	currencies := make([]string, 0, len(v.r.Totals))
	for cur := range v.r.Totals {
		currencies = append(currencies, cur)
	}
	sort.Strings(currencies)
	for _, cur := range currencies {
		if t := v.r.Totals[cur]; t.Debits != t.Credits {
			v.problem("currency %s: debits %d != credits %d", cur, t.Debits, t.Credits)
		}
	}
	v.r.OK = len(v.r.Problems) == 0
	return v.r, nil
}

func (v *verifier) loadAccounts(ctx context.Context, tx *sql.Tx) error {
	rows, err := tx.QueryContext(ctx, `SELECT id, type, currency, debits_posted, credits_posted,
		debits_pending, credits_pending FROM accounts`)
	if err != nil {
		return fmt.Errorf("ledger: verify: read accounts: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var id string
		a := &verifiedAccount{}
		if err := rows.Scan(&id, &a.typ, &a.currency, &a.stored.debitsPosted, &a.stored.creditsPosted,
			&a.stored.debitsPending, &a.stored.creditsPending); err != nil {
			return fmt.Errorf("ledger: verify: read accounts: %w", err)
		}
		v.accounts[id] = a
		v.r.Accounts++
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("ledger: verify: read accounts: %w", err)
	}
	return nil
}

func (v *verifier) walkJournal(ctx context.Context, tx *sql.Tx) error {
	rows, err := tx.QueryContext(ctx, `SELECT e.seq, e.time, e.transfer_id, e.payment_id, e.account_id,
			e.direction, e.amount, e.currency, e.balance_after, e.prev_hash, e.hash,
			COALESCE(t.debit, ''), COALESCE(t.credit, ''), COALESCE(t.amount, 0),
			COALESCE(t.currency, ''), COALESCE(t.payment_id, ''), t.id IS NOT NULL
		FROM entries e LEFT JOIN transfers t ON t.id = e.transfer_id ORDER BY e.seq`)
	if err != nil {
		return fmt.Errorf("ledger: verify: read journal: %w", err)
	}
	defer rows.Close()
	prevHash := GenesisHash
	var prevTime string
	var open *Entry // a debit entry waiting for its credit
	for rows.Next() {
		var e Entry
		var tDebit, tCredit, tCurrency, tPayment string
		var tAmount int64
		var tFound bool
		if err := rows.Scan(&e.Seq, &e.TimeText, &e.TransferID, &e.PaymentID, &e.AccountID, &e.Direction,
			&e.Amount, &e.Currency, &e.BalanceAfter, &e.PrevHash, &e.Hash,
			&tDebit, &tCredit, &tAmount, &tCurrency, &tPayment, &tFound); err != nil {
			return fmt.Errorf("ledger: verify: read journal: %w", err)
		}
		v.r.Entries++
		want := v.r.LastSeq + 1
		switch {
		case e.Seq != want:
			v.problem("entry seq %d: expected seq %d (journal has a gap)", e.Seq, want)
		case e.PrevHash != prevHash:
			v.problem("entry seq %d: prev_hash %s is not the hash of the entry before (%s)", e.Seq, e.PrevHash, prevHash)
		}
		if h := EntryHash(e); h != e.Hash {
			v.problem("entry seq %d: hash %s does not match its contents (want %s): entry altered", e.Seq, e.Hash, h)
		}
		if t := parseTime(e.TimeText); t.IsZero() || FormatTime(t) != e.TimeText {
			v.problem("entry seq %d: time %q is not in %s", e.Seq, e.TimeText, TimeLayout)
		} else if e.TimeText < prevTime {
			v.problem("entry seq %d: time %s is before the entry before it (%s)", e.Seq, e.TimeText, prevTime)
		}
		v.r.LastSeq, v.r.LastHash, prevHash, prevTime = e.Seq, e.Hash, e.Hash, e.TimeText

		v.checkEntryAgainstTransfer(&e, tFound, tDebit, tCredit, tAmount, tCurrency, tPayment)
		switch {
		case e.Direction == Debit && open != nil:
			v.problem("entry seq %d: debit of transfer %s follows an unmatched debit (seq %d)", e.Seq, e.TransferID, open.Seq)
			open = &e
		case e.Direction == Debit:
			open = &e
		case e.Direction == Credit && (open == nil || open.TransferID != e.TransferID || open.Amount != e.Amount):
			v.problem("entry seq %d: credit of transfer %s is not paired with its debit", e.Seq, e.TransferID)
			open = nil
		default:
			open = nil
		}

		t := v.r.Totals[e.Currency]
		a := v.accounts[e.AccountID]
		var delta int64
		switch e.Direction {
		case Debit:
			t.Debits += e.Amount
			delta = -e.Amount
			if a != nil {
				a.computed.debitsPosted += e.Amount
			}
		case Credit:
			t.Credits += e.Amount
			delta = e.Amount
			if a != nil {
				a.computed.creditsPosted += e.Amount
			}
		default:
			v.problem("entry seq %d: direction %q", e.Seq, e.Direction)
		}
		v.r.Totals[e.Currency] = t
		if a == nil {
			v.problem("entry seq %d: account %s does not exist", e.Seq, e.AccountID)
			continue
		}
		if a.currency != e.Currency {
			v.problem("entry seq %d: currency %s, account %s is in %s", e.Seq, e.Currency, e.AccountID, a.currency)
		}
		if want := a.stated + delta; e.BalanceAfter != want {
			v.problem("entry seq %d: balance_after %d, want %d (%s's balance before it was %d)", e.Seq, e.BalanceAfter, want, e.AccountID, a.stated)
		}
		a.stated = e.BalanceAfter
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("ledger: verify: read journal: %w", err)
	}
	if open != nil {
		v.problem("entry seq %d: debit of transfer %s has no credit", open.Seq, open.TransferID)
	}
	if v.r.LastHash == "" {
		v.r.LastHash = GenesisHash
	}
	return nil
}

func (v *verifier) checkEntryAgainstTransfer(e *Entry, found bool, debit, credit string, amount int64, currency, payment string) {
	if !found {
		v.problem("entry seq %d: transfer %s does not exist", e.Seq, e.TransferID)
		return
	}
	account := debit
	if e.Direction == Credit {
		account = credit
	}
	switch {
	case e.AccountID != account:
		v.problem("entry seq %d: account %s, transfer %s says %s", e.Seq, e.AccountID, e.TransferID, account)
	case e.Amount != amount:
		v.problem("entry seq %d: amount %d, transfer %s says %d", e.Seq, e.Amount, e.TransferID, amount)
	case e.Currency != currency:
		v.problem("entry seq %d: currency %s, transfer %s says %s", e.Seq, e.Currency, e.TransferID, currency)
	case e.PaymentID != payment:
		v.problem("entry seq %d: payment %q, transfer %s says %q", e.Seq, e.PaymentID, e.TransferID, payment)
	}
}

func (v *verifier) loadHolds(ctx context.Context, tx *sql.Tx) error {
	rows, err := tx.QueryContext(ctx, `SELECT key, debit, credit, amount FROM holds WHERE state = 'pending'`)
	if err != nil {
		return fmt.Errorf("ledger: verify: read holds: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var key, debit, credit string
		var amount int64
		if err := rows.Scan(&key, &debit, &credit, &amount); err != nil {
			return fmt.Errorf("ledger: verify: read holds: %w", err)
		}
		d, c := v.accounts[debit], v.accounts[credit]
		if d == nil || c == nil {
			v.problem("hold %s: account %s or %s does not exist", key, debit, credit)
			continue
		}
		d.computed.debitsPending += amount
		c.computed.creditsPending += amount
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("ledger: verify: read holds: %w", err)
	}
	return nil
}

func (v *verifier) compareAccounts() {
	ids := make([]string, 0, len(v.accounts))
	for id := range v.accounts {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		a := v.accounts[id]
		s, c := a.stored, a.computed
		if s != c {
			v.problem("account %s: stored debits/credits posted %d/%d, pending %d/%d; journal and holds give %d/%d, pending %d/%d",
				id, s.debitsPosted, s.creditsPosted, s.debitsPending, s.creditsPending,
				c.debitsPosted, c.creditsPosted, c.debitsPending, c.creditsPending)
		}
		if avail := c.creditsPosted - c.debitsPosted - c.debitsPending; !a.typ.MayGoNegative() && avail < 0 {
			v.problem("account %s: %s has available %d, below zero", id, a.typ, avail)
		}
	}
}

// checkHead compares PostgreSQL's journal head, which the next entry will chain to, with
// the last entry: a head that is not the last entry would fork the chain or leave a gap.
func (v *verifier) checkHead(ctx context.Context, tx *sql.Tx) error {
	var seq int64
	var hash string
	if err := tx.QueryRowContext(ctx, `SELECT seq, hash FROM ledger_head`).Scan(&seq, &hash); err != nil {
		return fmt.Errorf("ledger: verify: read the journal's head: %w", err)
	}
	last := v.r.LastHash
	if v.r.LastSeq == 0 {
		last = GenesisHash
	}
	if seq != v.r.LastSeq || hash != last {
		v.problem("journal head: seq %d hash %s, but the last entry is seq %d hash %s", seq, hash, v.r.LastSeq, last)
	}
	return nil
}
