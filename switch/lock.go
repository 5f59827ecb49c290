package payswitch

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
)

// LockWallet answers a LOCK <wallet number> <id number> from the number from, by SMS or
// the IVR (ch): when the id number matches the one recorded at the wallet's tier 2, the
// wallet is frozen at once, its waiting payment cancelled with its hold released, a
// merchant's request to it declined, and its own number told; see decide_lock.go for
// the answer, the limits and the history. id must be ValidIDNumber (the parser and the
// IVR check it); another is ErrBadIDNumber and changes nothing.
func (e *Engine) LockWallet(ctx context.Context, ch Channel, from, wallet, id string) (Outcome, error) {
	if !ValidIDNumber(id) {
		return Outcome{}, ErrBadIDNumber
	}
	var out Outcome
	var locked bool
	err := e.write(ctx, func(o *op) error {
		s, err := o.lockSnapshot(ch, from, wallet, id)
		if err != nil {
			return err
		}
		d := e.rules.lockWallet(s)
		locked = d.Change != nil
		out, err = o.apply(d)
		return err
	})
	if err != nil {
		return Outcome{}, err
	}
	if locked {
		e.log.Warn().Str("msisdn", Mask(e.replyTo(wallet))).Str("from", Mask(e.replyTo(from))).Str("channel", string(ch)).
			Str("event", "wallet_locked").Msg("wallet locked by LOCK")
	}
	return out, nil
}

// lockSnapshot reads what a LOCK decides on, inside the write, after deleting the rows
// of lock_attempts whose window has passed (through their index: what is deleted is
// what earlier LOCKs wrote).
func (o *op) lockSnapshot(ch Channel, from, wallet, id string) (lockSnapshot, error) {
	s := lockSnapshot{Now: o.now, Channel: ch, From: o.e.replyTo(from), ID: id, Tier: DefaultTier}
	if err := o.snap.serialise(lockLockAttempts, ""); err != nil { // the counts, one global
		return s, err
	}
	if _, err := o.tx.ExecContext(o.ctx, `DELETE FROM lock_attempts WHERE window_start <= ?`,
		o.now.Add(-lockWindow).UnixMicro()); err != nil {
		return s, fmt.Errorf("forget old LOCK attempts: %w", err)
	}
	n, err := o.e.Normalize(wallet)
	if err != nil {
		return s, nil // not a number: refused for that
	}
	s.Wallet = n
	if err := o.snap.serialise(lockNumber, n); err != nil { // before its tier is read
		return s, err
	}
	s.Sender, s.Target, s.Senders = lockCount{Subject: lockSenderSubject(s.From)},
		lockCount{Subject: lockWalletSubject(n)}, lockCount{Subject: lockSendersSubject}
	for _, c := range []*lockCount{&s.Sender, &s.Target, &s.Senders} {
		err := o.tx.QueryRowContext(o.ctx, `SELECT window_start, count FROM lock_attempts WHERE subject = ?`,
			c.Subject).Scan(&c.Start, &c.Count)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return s, fmt.Errorf("LOCK attempts: %w", err)
		}
	}
	if s.Account, err = o.accountOrNil(o.lt.AccountByMSISDN(o.ctx, n)); err != nil || s.Account == nil {
		return s, err
	}
	// The wallet's tier and id number's digest, as the tiers' PATCH wrote them.
	k, err := o.snap.kyc(s.Account.ID)
	if err != nil {
		return s, err
	}
	s.Tier, s.Digest = k.Tier, k.Digest
	if s.Pending, err = o.snap.pending(n); err != nil {
		return s, err
	}
	s.Requested, err = o.snap.requested(n)
	return s, err
}

// storeLockCounts writes the LOCK attempts a decision counted: each subject's window and
// its count in it.
func (o *op) storeLockCounts(counts []lockCount) error {
	for _, c := range counts {
		if _, err := o.tx.ExecContext(o.ctx, `INSERT INTO lock_attempts (subject, window_start, count)
			VALUES (?1, ?2, ?3) ON CONFLICT (subject) DO UPDATE SET
				window_start = excluded.window_start, count = excluded.count`,
			c.Subject, c.Start, c.Count); err != nil {
			return fmt.Errorf("count LOCK attempt: %w", err)
		}
	}
	return nil
}
