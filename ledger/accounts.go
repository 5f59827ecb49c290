package ledger

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"

	"github.com/payswitch/payswitch/internal/mask"
)

const accountColumns = `id, type, currency, name, COALESCE(msisdn, ''), COALESCE(code, ''), status,
	created_at, debits_posted, credits_posted, debits_pending`

// accountQueries are the lookups by each unique column; the column is never user input.
var accountQueries = map[string]string{
	"id":     `SELECT ` + accountColumns + ` FROM accounts WHERE id = ?`,
	"msisdn": `SELECT ` + accountColumns + ` FROM accounts WHERE msisdn = ?`,
	"code":   `SELECT ` + accountColumns + ` FROM accounts WHERE code = ?`,
}

type scanner interface{ Scan(dest ...any) error }

func scanAccount(s scanner) (Account, error) {
	var a Account
	var created string
	var debits, credits, pending int64
	if err := s.Scan(&a.ID, &a.Type, &a.Currency, &a.Name, &a.MSISDN, &a.Code, &a.Status,
		&created, &debits, &credits, &pending); err != nil {
		return Account{}, err
	}
	a.CreatedAt = parseTime(created)
	a.Balance = balance(debits, credits, pending)
	return a, nil
}

func balance(debitsPosted, creditsPosted, debitsPending int64) Balance {
	posted := creditsPosted - debitsPosted
	return Balance{Posted: posted, Held: debitsPending, Available: posted - debitsPending}
}

func accountBy(ctx context.Context, q querier, col, val string) (Account, error) {
	if val == "" {
		return Account{}, fmt.Errorf("%w: account with empty %s", ErrNotFound, col)
	}
	a, err := scanAccount(q.QueryRowContext(ctx, accountQueries[col], val))
	if errors.Is(err, sql.ErrNoRows) {
		shown := val
		if col == "msisdn" {
			shown = mask.MSISDN(val)
		}
		return Account{}, fmt.Errorf("%w: account with %s %s", ErrNotFound, col, shown)
	}
	if err != nil {
		return Account{}, fmt.Errorf("ledger: read account: %w", err)
	}
	return a, nil
}

// validCurrency accepts an ISO 4217 code: three upper-case letters.
func validCurrency(c string) bool {
	if len(c) != 3 {
		return false
	}
	for i := 0; i < 3; i++ {
		if c[i] < 'A' || c[i] > 'Z' {
			return false
		}
	}
	return true
}

// validID accepts caller-chosen ids that cannot be confused with a system account's
// "<type>:<name>" and that print safely in a CSV.
func validID(id string) bool {
	if id == "" || len(id) > 64 {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return false
		}
	}
	return true
}

func nullable(s string) any {
	if s == "" {
		return nil
	}
	return s
}

func (t *Tx) createAccount(ctx context.Context, a NewAccount) (Account, error) {
	switch {
	case !a.Type.Valid():
		return Account{}, fmt.Errorf("%w: unknown type %q", ErrInvalidAccount, a.Type)
	case a.Type.IsSystem():
		return Account{}, fmt.Errorf("%w: %s is a system type: use SystemAccount", ErrInvalidAccount, a.Type)
	case !validCurrency(a.Currency):
		return Account{}, fmt.Errorf("%w: currency %q is not an ISO 4217 code", ErrInvalidAccount, a.Currency)
	case a.ID != "" && !validID(a.ID):
		return Account{}, fmt.Errorf("%w: id %q: want 1-64 letters, digits, '-', '_' or '.'", ErrInvalidAccount, a.ID)
	case a.Type == Merchant && a.Code == "":
		return Account{}, fmt.Errorf("%w: a merchant needs a code", ErrInvalidAccount)
	case a.Type != Merchant && a.Code != "":
		return Account{}, fmt.Errorf("%w: only merchants have a code", ErrInvalidAccount)
	}
	acc := Account{ID: a.ID, Type: a.Type, Currency: a.Currency, Name: a.Name, MSISDN: a.MSISDN,
		Code: a.Code, Status: Active}
	created := FormatTime(t.l.now())
	acc.CreatedAt = parseTime(created)
	for attempt := 0; ; attempt++ {
		generated := a.ID == ""
		if generated {
			acc.ID = NewAccountID()
		}
		// A taken id inserts nothing rather than failing: on PostgreSQL a failed
		// statement aborts the transaction, and a generated id could not be drawn again.
		res, err := t.tx.ExecContext(ctx, `INSERT INTO accounts (id, type, currency, name, msisdn, code, status, created_at)
			VALUES (?, ?, ?, ?, ?, ?, 'active', ?) ON CONFLICT (id) DO NOTHING`,
			acc.ID, string(acc.Type), acc.Currency, acc.Name, nullable(acc.MSISDN), nullable(acc.Code), created)
		if err == nil {
			n, err := res.RowsAffected()
			switch {
			case err != nil:
				return Account{}, fmt.Errorf("ledger: create account: %w", err)
			case n == 1:
				return acc, nil
			case generated && attempt < 3:
				continue // 36^10 ids: a collision is a fluke, another draw settles it
			}
			return Account{}, fmt.Errorf("%w: account id %s", ErrDuplicate, acc.ID)
		}
		switch constraintColumn(err) {
		case "accounts.msisdn":
			return Account{}, fmt.Errorf("%w: msisdn %s has an account", ErrDuplicate, mask.MSISDN(acc.MSISDN))
		case "accounts.code":
			return Account{}, fmt.Errorf("%w: merchant code %s is taken", ErrDuplicate, acc.Code)
		}
		return Account{}, fmt.Errorf("ledger: create account: %w", err)
	}
}

func (t *Tx) systemAccount(ctx context.Context, typ AccountType, name, currency string) (Account, error) {
	switch {
	case !typ.IsSystem():
		return Account{}, fmt.Errorf("%w: %q is not a system type", ErrInvalidAccount, typ)
	case name == "" || strings.ContainsAny(name, ":,\n\r\""):
		return Account{}, fmt.Errorf("%w: system account name %q", ErrInvalidAccount, name)
	case !validCurrency(currency):
		return Account{}, fmt.Errorf("%w: currency %q is not an ISO 4217 code", ErrInvalidAccount, currency)
	}
	id := string(typ) + ":" + name
	acc, err := accountBy(ctx, t.tx, "id", id)
	if errors.Is(err, ErrNotFound) {
		created := FormatTime(t.l.now())
		// On PostgreSQL another process may create it at the same moment: its insert
		// waits for the other's commit and then inserts nothing, and the account is
		// read as that one made it.
		res, ierr := t.tx.ExecContext(ctx, `INSERT INTO accounts (id, type, currency, name, status, created_at)
			VALUES (?, ?, ?, ?, 'active', ?) ON CONFLICT (id) DO NOTHING`, id, string(typ), currency, name, created)
		var n int64
		if ierr == nil {
			n, ierr = res.RowsAffected()
		}
		if ierr != nil {
			return Account{}, fmt.Errorf("ledger: create %s: %w", id, ierr)
		}
		if n == 1 {
			return Account{ID: id, Type: typ, Currency: currency, Name: name, Status: Active,
				CreatedAt: parseTime(created)}, nil
		}
		acc, err = accountBy(ctx, t.tx, "id", id)
	}
	if err != nil {
		return Account{}, err
	}
	if acc.Currency != currency {
		return Account{}, fmt.Errorf("%w: %s is in %s, not %s", ErrCurrencyMismatch, id, acc.Currency, currency)
	}
	return acc, nil
}

func (t *Tx) setStatus(ctx context.Context, id string, s Status) error {
	if !s.Valid() {
		return fmt.Errorf("%w: unknown status %q", ErrInvalidAccount, s)
	}
	if err := t.lockAccounts(ctx, id); err != nil { // closing checks it is empty
		return err
	}
	acc, err := accountBy(ctx, t.tx, "id", id)
	if err != nil {
		return err
	}
	switch {
	case acc.Status == s:
		return nil
	case acc.Type.IsSystem():
		return fmt.Errorf("%w: system account %s is always active", ErrInvalidAccount, id)
	case acc.Status == Closed:
		return fmt.Errorf("%w: %s is closed for good", ErrAccountInactive, id)
	case s == Closed:
		var creditsPending int64
		if err := t.tx.QueryRowContext(ctx, `SELECT credits_pending FROM accounts WHERE id = ?`, id).Scan(&creditsPending); err != nil {
			return fmt.Errorf("ledger: read account: %w", err)
		}
		if acc.Balance.Posted != 0 || acc.Balance.Held != 0 || creditsPending != 0 {
			return fmt.Errorf("%w: %s has posted %d, held %d, incoming %d", ErrNotEmpty, id,
				acc.Balance.Posted, acc.Balance.Held, creditsPending)
		}
	}
	if _, err := t.tx.ExecContext(ctx, `UPDATE accounts SET status = ? WHERE id = ?`, string(s), id); err != nil {
		return fmt.Errorf("ledger: set status of %s: %w", id, err)
	}
	return nil
}
