package payswitch

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/payswitch/payswitch/ledger"
)

// The KYC tiers of contract section 14 in the store: wallet_kyc holds a wallet's tier
// and the keyed digest of its id number; a wallet without a row is at DefaultTier.

// SetAccountTier changes a wallet's KYC tier and records who did it and why, in one
// write: the wallet's row of wallet_kyc and the rows of account_changes (the tier's; the
// id number's, saying only whether one is on file). It returns the account. An unknown
// account is ErrNotFound; a tier other than 0, 1 or 2, tier 2 without an id number, an id
// number that is not 5 to 20 digits, an account that is not a wallet, or no reason is
// ErrInvalid; a closed account or one already at that tier is ErrConflict.
func (e *Engine) SetAccountTier(ctx context.Context, c AccountTierChange) (ledger.Account, error) {
	var a ledger.Account
	err := e.write(ctx, func(o *op) error {
		s := tierSnapshot{}
		acct, err := o.lt.Account(o.ctx, c.Account)
		switch {
		case errors.Is(err, ledger.ErrNotFound):
		case err != nil:
			return err
		default:
			// The wallet's own decisions read its tier under its number's lock, and
			// credits checked against its cap under the account's (payeeRoom).
			if acct.MSISDN != "" {
				if err := o.snap.serialise(lockNumber, acct.MSISDN); err != nil {
					return err
				}
			}
			if err := o.snap.serialise(lockAccount, acct.ID); err != nil {
				return err
			}
			s.Account = &acct
			if s.KYC, err = o.snap.kyc(acct.ID); err != nil {
				return err
			}
		}
		d := e.rules.accountTier(s, c)
		if d.Err != nil {
			return d.Err
		}
		if _, err := o.apply(d); err != nil {
			return err
		}
		a = acct
		return nil
	})
	return a, err
}

// AccountTier is the KYC tier of the wallet id as last committed (DefaultTier when it has
// no row). It does not look at the account's type: only a wallet's tier means anything.
func (e *Engine) AccountTier(ctx context.Context, id string) (int, error) {
	k, err := readKYC(ctx, e.db.Reader(), id)
	return k.Tier, err
}

// kycReader is what readKYC reads through: the reader pool or the write's transaction.
type kycReader interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// readKYC reads account id's row of wallet_kyc; none is DefaultTier with no id number.
func readKYC(ctx context.Context, q kycReader, id string) (walletKYC, error) {
	k := walletKYC{Tier: DefaultTier}
	err := q.QueryRowContext(ctx, `SELECT tier, id_digest FROM wallet_kyc WHERE account_id = ?`, id).Scan(&k.Tier, &k.Digest)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return walletKYC{}, fmt.Errorf("tier of %s: %w", id, err)
	}
	return k, nil
}

// kyc reads account id's row of wallet_kyc in the write (snapshotSource).
func (q sqliteSnapshots) kyc(id string) (walletKYC, error) { return readKYC(q.ctx, q.tx, id) }

// payeeRoom reads what a credit to account id is checked against (overCap): the account
// with its posted balance and, for a wallet, its tier, both inside the write.
func (o *op) payeeRoom(id string) (payeeRoom, error) {
	// Two credits checked against one cap must not both read the balance before either
	// books: the second reads after the first's commit.
	if err := o.snap.serialise(lockAccount, id); err != nil {
		return payeeRoom{}, err
	}
	a, err := o.lt.Account(o.ctx, id)
	if err != nil {
		return payeeRoom{}, fmt.Errorf("payee %s: %w", id, err)
	}
	room := payeeRoom{Account: a, Tier: -1}
	if a.Type == ledger.Wallet {
		k, err := o.snap.kyc(id)
		if err != nil {
			return payeeRoom{}, err
		}
		room.Tier = k.Tier
	}
	return room, nil
}

// changeTier writes a decided change of a tier in o's transaction: the wallet's row of
// wallet_kyc and its history, and logs it (never the id number, nor its digest) once it
// is durable.
func (o *op) changeTier(c tierChange) error {
	if _, err := o.tx.ExecContext(o.ctx, `INSERT INTO wallet_kyc (account_id, tier, id_digest, updated_at)
		VALUES (?1, ?2, ?3, ?4) ON CONFLICT (account_id) DO UPDATE SET
			tier = excluded.tier, id_digest = excluded.id_digest, updated_at = excluded.updated_at`,
		c.Account, c.Tier, c.Digest, o.now.UnixMicro()); err != nil {
		return fmt.Errorf("set tier of %s: %w", c.Account, err)
	}
	for _, h := range c.History {
		if err := o.recordChange(h); err != nil {
			return err
		}
	}
	return nil
}

// recordChange writes one row of an account's history of operators' changes and logs it
// once it is durable.
func (o *op) recordChange(c accountChange) error {
	if _, err := o.tx.ExecContext(o.ctx, `INSERT INTO account_changes (account_id, field, old_value, new_value,
		reason, actor, at) VALUES (?, ?, ?, ?, ?, ?, ?)`,
		c.Account, c.Field, c.Old, c.New, c.Reason, c.Actor, o.now.UnixMicro()); err != nil {
		return fmt.Errorf("record change of %s: %w", c.Account, err)
	}
	e := o.e
	o.after = append(o.after, func() {
		e.log.Info().Str("account", c.Account).Str("event", "account_"+c.Field).Str("from", c.Old).Str("to", c.New).
			Str("actor", c.Actor).Str("reason", c.Reason).Msg("account changed by an operator")
	})
	return nil
}
