package payswitch

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/payswitch/payswitch/ledger"
)

// AccountStatusChange is an operator's freeze or reactivation of an account.
type AccountStatusChange struct {
	Account string
	Status  ledger.Status // ledger.Frozen or ledger.Active
	Reason  string        // why, for the account's history; required
	Actor   string        // who: the name of the operator's token; required
}

// AccountChange is one entry of an account's history of operators' changes.
type AccountChange struct {
	ID       int64
	Account  string
	Field    string // "status"
	Old, New string
	Reason   string
	Actor    string
	At       time.Time
}

// SetAccountStatus freezes or reactivates an account and records who did it and why, in
// one write: the ledger's status, a row of account_changes and, when a freeze finds the
// account's payment waiting for its code, that payment cancelled and its hold released.
// It returns the account as it is after the change. An unknown account is ErrNotFound;
// a system account, a status other than frozen or active, or no reason is ErrInvalid;
// a closed account or one already in that status is ErrConflict.
func (e *Engine) SetAccountStatus(ctx context.Context, c AccountStatusChange) (ledger.Account, error) {
	var a ledger.Account
	err := e.write(ctx, func(o *op) error {
		s, err := o.statusSnapshot(c.Account)
		if err != nil {
			return err
		}
		d := e.rules.accountStatus(s, c)
		if d.Err != nil {
			return d.Err
		}
		if _, err := o.apply(d); err != nil {
			return err
		}
		a, err = o.lt.Account(o.ctx, c.Account)
		return err
	})
	return a, err
}

// statusSnapshot reads what accountStatus decides on: the account named id (none when
// unknown) and the payment its number has waiting, if any.
func (o *op) statusSnapshot(id string) (statusSnapshot, error) {
	s := statusSnapshot{Now: o.now}
	a, err := o.lt.Account(o.ctx, id)
	switch {
	case errors.Is(err, ledger.ErrNotFound):
		return s, nil
	case err != nil:
		return s, err
	}
	s.Account = &a
	if a.MSISDN != "" {
		if s.Waiting, err = o.snap.pending(a.MSISDN); err != nil {
			return s, err
		}
	}
	return s, nil
}

// changeAccount writes an operator's change c: the ledger's status and the row of the
// account's history, in o's transaction, and logs it once it is durable.
func (o *op) changeAccount(c accountChange) error {
	if c.Field != "status" {
		return fmt.Errorf("change of %s: unknown field %q", c.Account, c.Field)
	}
	if err := o.lt.SetStatus(o.ctx, c.Account, ledger.Status(c.New)); err != nil {
		return fmt.Errorf("set status of %s: %w", c.Account, err)
	}
	return o.recordChange(c)
}

// AccountChanges returns the operators' changes of account id, newest first, at most
// limit (1 to 100; otherwise 20).
func (e *Engine) AccountChanges(ctx context.Context, id string, limit int) ([]AccountChange, error) {
	if limit <= 0 || limit > 100 {
		limit = 20
	}
	rows, err := e.db.Reader().QueryContext(ctx, `SELECT id, account_id, field, old_value, new_value, reason, actor, at
		FROM account_changes WHERE account_id = ? ORDER BY id DESC LIMIT ?`, id, limit)
	if err != nil {
		return nil, fmt.Errorf("read changes of %s: %w", id, err)
	}
	defer rows.Close()
	var out []AccountChange
	for rows.Next() {
		var c AccountChange
		var at int64
		if err := rows.Scan(&c.ID, &c.Account, &c.Field, &c.Old, &c.New, &c.Reason, &c.Actor, &at); err != nil {
			return nil, fmt.Errorf("read changes of %s: %w", id, err)
		}
		c.At = time.UnixMicro(at).UTC()
		out = append(out, c)
	}
	return out, rows.Err()
}
