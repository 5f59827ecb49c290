package ledger

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
)

// Before it writes, an operation reads everything it will check in one statement: the
// accounts, what its key already names, and the journal's head. The parts of such a
// lookup are SELECTs of one row shape joined by UNION ALL, each row tagged with what it
// is; a part's unused columns are blank:
//
//	tag, id, s1, s2, s3, n1, n2, n3, n4, s4, s5, s6, s7, s8
//
// Post, which every payment makes, reads one row of its own instead (lookupPostQuery).
const (
	// An account a; join it or add WHERE a.id = ?. Each account is a part of its own:
	// a.id IN (?, ?) would cost a temporary table for the list.
	accountsAsRows = `SELECT 'a', a.id, a.type, a.currency, a.status, a.debits_posted, a.credits_posted,
		a.debits_pending, a.credits_pending, '', '', '', '', '' FROM accounts a`
	// The transfer a key names (a posted hold's key is also its transfer's), with the
	// balances after it (n2 debit, n3 credit; n4 is 1 when both entries were found), so
	// that a repeated request returns it as the first one did. The joins run only for a
	// transfer found, so a new request pays nothing for them. A WHERE after it names
	// columns by t.
	transferWithBalancesAsRow = `t.id, t.debit, t.credit, t.currency, t.amount,
		COALESCE(d.balance_after, 0), COALESCE(c.balance_after, 0), CAST(d.seq IS NOT NULL AND c.seq IS NOT NULL AS INTEGER),
		t.payment_id, t.kind, COALESCE(t.reverses, ''), t.time, t.key FROM ` + transfersAndEntries
	// A transfer without its balances (n2 to n4 are 0), for one that is only checked: the
	// one a reversal undoes.
	transferColumnsAsRow = `id, debit, credit, currency, amount, 0, 0, 0,
		payment_id, kind, COALESCE(reverses, ''), time, key FROM transfers`
	holdColumnsAsRow = `key, debit, credit, currency, amount, 0, 0, 0,
		payment_id, kind, state, created_at, COALESCE(transfer_id, '') FROM holds`
	partTransferByKey = `SELECT 't', ` + transferWithBalancesAsRow + ` WHERE t.key = ?1`
	partHoldByKey     = `SELECT 'h', ` + holdColumnsAsRow + ` WHERE key = ?1`
	partHead          = `SELECT 'e', '', '', '', '', seq, 0, 0, 0, time, hash, '', '', ''
		FROM (SELECT seq, time, hash FROM entries ORDER BY seq DESC LIMIT 1) AS head`
)

// The lookups. Arguments: ?1 the key, then as the name says.
const (
	// lookupTransfer(key, debit, credit): the accounts, the key's transfer or hold, the head.
	lookupTransfer = accountsAsRows + ` WHERE a.id = ?2 UNION ALL ` + accountsAsRows + ` WHERE a.id = ?3 UNION ALL ` +
		partTransferByKey + ` UNION ALL ` + partHoldByKey + ` UNION ALL ` + partHead
	// lookupHold(key, debit, credit): the accounts and the key's hold or transfer.
	lookupHold = accountsAsRows + ` WHERE a.id = ?2 UNION ALL ` + accountsAsRows + ` WHERE a.id = ?3 UNION ALL ` +
		partTransferByKey + ` UNION ALL ` + partHoldByKey
	// lookupReverse(key, transfer id): the key's transfer or hold, the original transfer
	// ('o'), a reversal of it ('r'), its accounts and the head.
	lookupReverse = partTransferByKey + ` UNION ALL ` + partHoldByKey + ` UNION ALL ` +
		`SELECT 'o', ` + transferColumnsAsRow + ` WHERE id = ?2 UNION ALL ` +
		`SELECT 'r', id, '', '', '', 0, 0, 0, 0, '', '', '', '', '' FROM transfers WHERE reverses = ?2 UNION ALL ` +
		accountsAsRows + ` JOIN transfers t ON a.id = t.debit WHERE t.id = ?2 UNION ALL ` +
		accountsAsRows + ` JOIN transfers t ON a.id = t.credit WHERE t.id = ?2 UNION ALL ` + partHead
)

// looked is what a lookup found.
type looked struct {
	accounts    [2]side
	nAccounts   int
	hasTransfer bool
	tr          Transfer // the key's transfer
	hasHold     bool
	hold        Hold // the key's hold
	head        chainHead
	hasOrig     bool
	orig        Transfer // the transfer to reverse
	reversedBy  string   // the id of a reversal of orig
}

// account returns the account with id, or nil if the lookup did not find it.
func (k *looked) account(id string) *side {
	for i := range k.nAccounts {
		if k.accounts[i].id == id {
			return &k.accounts[i]
		}
	}
	return nil
}

// transfer returns the transfer the key names, or nil.
func (k *looked) transfer() *Transfer {
	if k.hasTransfer {
		return &k.tr
	}
	return nil
}

// lookupRow is one row of a lookup, in its shape.
type lookupRow struct {
	tag, id, s1, s2, s3 string
	n1, n2, n3, n4      int64
	s4, s5, s6, s7, s8  string
}

func (r *lookupRow) side() side {
	return side{id: r.id, typ: AccountType(r.s1), currency: r.s2, status: Status(r.s3),
		debitsPosted: r.n1, creditsPosted: r.n2, debitsPending: r.n3, creditsPending: r.n4}
}

// transfer is the transfer in r; its balances after are known only when r was read with
// transferWithBalancesAsRow.
func (r *lookupRow) transfer() Transfer {
	return Transfer{ID: r.id, Key: r.s8, Debit: r.s1, Credit: r.s2, Currency: r.s3, Amount: r.n1,
		PaymentID: r.s4, Kind: r.s5, Reverses: r.s6, Time: parseTime(r.s7),
		DebitBalanceAfter: r.n2, CreditBalanceAfter: r.n3, BalancesAfterKnown: r.n4 == 1}
}

func (r *lookupRow) hold() Hold {
	return Hold{Key: r.id, Debit: r.s1, Credit: r.s2, Currency: r.s3, Amount: r.n1, PaymentID: r.s4,
		Kind: r.s5, State: r.s6, CreatedAt: parseTime(r.s7), TransferID: r.s8}
}

// scanLookup runs lookup query q and calls fn with each row.
func (t *Tx) scanLookup(ctx context.Context, q string, fn func(r *lookupRow), args ...any) error {
	rows, err := t.tx.QueryContext(ctx, q, args...)
	if err != nil {
		return fmt.Errorf("ledger: look up accounts and key: %w", err)
	}
	defer rows.Close()
	var r lookupRow
	for rows.Next() {
		if err := rows.Scan(&r.tag, &r.id, &r.s1, &r.s2, &r.s3, &r.n1, &r.n2, &r.n3, &r.n4,
			&r.s4, &r.s5, &r.s6, &r.s7, &r.s8); err != nil {
			return fmt.Errorf("ledger: look up accounts and key: %w", err)
		}
		fn(&r)
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("ledger: look up accounts and key: %w", err)
	}
	return nil
}

// lookup runs one of the lookup queries.
func (t *Tx) lookup(ctx context.Context, q string, args ...any) (looked, error) {
	k := looked{head: chainHead{hash: GenesisHash}}
	err := t.scanLookup(ctx, q, func(r *lookupRow) {
		switch r.tag {
		case "a":
			if k.nAccounts < len(k.accounts) {
				k.accounts[k.nAccounts] = r.side()
				k.nAccounts++
			}
		case "t":
			k.hasTransfer, k.tr = true, r.transfer()
		case "h":
			k.hasHold, k.hold = true, r.hold()
		case "e":
			k.head = chainHead{seq: r.n1, time: r.s4, hash: r.s5}
		case "o":
			k.hasOrig, k.orig = true, r.transfer()
		case "r":
			k.reversedBy = r.id
		}
	}, args...)
	return k, err
}

// lookupPostQuery reads what posting hold ?1 needs as one row: the hold, its two accounts
// (blank when missing) and the journal's head (blank when the journal is empty). One row
// of the columns needed, not four rows of the lookup shape: a lookup's cost is mostly
// handing columns over (every column of every row is a few calls into SQLite and often
// a Go string), not its B-tree seeks, and the four-row form also sought the hold three
// times. A posted hold's transfer is not read here; posting it again reads it by id.
const lookupPostQuery = `SELECT h.state, h.debit, h.credit, h.amount, h.payment_id, h.kind, COALESCE(h.transfer_id, ''),
	COALESCE(d.id, ''), COALESCE(d.type, ''), COALESCE(d.currency, ''), COALESCE(d.status, ''),
	COALESCE(d.debits_posted, 0), COALESCE(d.credits_posted, 0), COALESCE(d.debits_pending, 0), COALESCE(d.credits_pending, 0),
	COALESCE(c.id, ''), COALESCE(c.type, ''), COALESCE(c.currency, ''), COALESCE(c.status, ''),
	COALESCE(c.debits_posted, 0), COALESCE(c.credits_posted, 0), COALESCE(c.debits_pending, 0), COALESCE(c.credits_pending, 0),
	COALESCE((SELECT seq FROM entries ORDER BY seq DESC LIMIT 1), 0),
	COALESCE((SELECT time FROM entries ORDER BY seq DESC LIMIT 1), ''),
	COALESCE((SELECT hash FROM entries ORDER BY seq DESC LIMIT 1), '')
	FROM holds h LEFT JOIN accounts d ON d.id = h.debit LEFT JOIN accounts c ON c.id = h.credit
	WHERE h.key = ?1`

// posting is what lookupPost found: the hold (the fields post uses), its accounts and the
// journal's head.
type posting struct {
	hold Hold
	d, c side // id blank when missing
	head chainHead
}

// lookupPost reads hold key for posting it; found is false when there is no such hold.
func (t *Tx) lookupPost(ctx context.Context, key string) (p posting, found bool, err error) {
	h, d, c := &p.hold, &p.d, &p.c
	err = t.tx.QueryRowContext(ctx, lookupPostQuery, key).Scan(&h.State, &h.Debit, &h.Credit, &h.Amount, &h.PaymentID, &h.Kind, &h.TransferID,
		&d.id, &d.typ, &d.currency, &d.status, &d.debitsPosted, &d.creditsPosted, &d.debitsPending, &d.creditsPending,
		&c.id, &c.typ, &c.currency, &c.status, &c.debitsPosted, &c.creditsPosted, &c.debitsPending, &c.creditsPending,
		&p.head.seq, &p.head.time, &p.head.hash)
	if errors.Is(err, sql.ErrNoRows) {
		return posting{}, false, nil
	}
	if err != nil {
		return posting{}, false, fmt.Errorf("ledger: look up hold %s: %w", key, err)
	}
	h.Key = key
	if p.head.hash == "" {
		p.head = chainHead{hash: GenesisHash}
	}
	return p, true, nil
}
