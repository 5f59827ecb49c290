package payswitch

import (
	"context"
	"errors"
	"fmt"

	"github.com/payswitch/payswitch/store"
)

// An MO that a channel may hand the engine again after a crash (serve's spool applies
// what it holds at least once, and what it had applied just before a kill is still
// there) must not be decided twice: a PAY would make a second payment and hold its
// funds, a wrong code would count twice towards a lock. So the channel names the MO
// with a key that it never gives another (DecideOnce), and the engine records the key
// in the same transaction as the decision (sms_decided): a second time, the decision is
// not made, and HandleSMS answers nil, as it did the first time.

// migrationDecided adds the keys of the MOs decided under DecideOnce. The keys
// increase, so that each insert lands on the table's last page.
const migrationDecided = `
CREATE TABLE sms_decided (
	key INTEGER PRIMARY KEY
) STRICT;
`

const migrationDecidedPG = `
CREATE TABLE sms_decided (
	key BIGINT PRIMARY KEY
);
`

// onceKey is DecideOnce's key in a context: recorded once a write under it committed,
// before when that write found it recorded by an earlier one.
type onceKey struct {
	key      int64
	recorded bool
	before   bool
}

type onceKeyCtx struct{}

// DecideOnce returns ctx for HandleSMS of the MO named key: the first engine write
// made under it records key in its transaction, and if key is recorded already, the
// decision is not made and HandleSMS returns nil. key must never name another MO.
// The context is for one goroutine.
func DecideOnce(ctx context.Context, key int64) context.Context {
	return context.WithValue(ctx, onceKeyCtx{}, &onceKey{key: key})
}

// errDecidedBefore: the MO of the write's DecideOnce key was decided by an earlier
// write; nothing was written.
var errDecidedBefore = errors.New("payswitch: this MO was decided before")

// recordOnce records ctx's DecideOnce key in tx, unless there is none or it is recorded
// already by this context's earlier write, and reports whether an earlier write (an
// earlier process's) had recorded it: then the decision must not be made. That is an
// answer, not a failure: the operation ends with nothing written and nil, since a
// failing one sends its whole store group through the redo (store/writer.go), which at
// a start that replays many MOs would be one redo per MO.
func recordOnce(ctx context.Context, tx store.Tx) (before bool, err error) {
	k, _ := ctx.Value(onceKeyCtx{}).(*onceKey)
	if k == nil || k.recorded {
		return false, nil
	}
	res, err := tx.ExecContext(ctx, `INSERT INTO sms_decided (key) VALUES (?) ON CONFLICT DO NOTHING`, k.key)
	if err != nil {
		return false, fmt.Errorf("payswitch: record MO %d: %w", k.key, err)
	}
	n, err := res.RowsAffected()
	k.before = err == nil && n == 0
	return k.before, err
}

// onceRecorded notes that the write under ctx committed, and returns errDecidedBefore
// when it wrote nothing because an earlier write had decided its MO.
func onceRecorded(ctx context.Context) error {
	k, _ := ctx.Value(onceKeyCtx{}).(*onceKey)
	if k == nil {
		return nil
	}
	if k.before {
		return errDecidedBefore
	}
	k.recorded = true
	return nil
}

// ForgetDecidedBelow deletes the recorded keys below key: the channel will hand none
// of those MOs again.
func (e *Engine) ForgetDecidedBelow(ctx context.Context, key int64) error {
	return e.db.Write(ctx, func(tx store.Tx) error {
		_, err := tx.ExecContext(ctx, `DELETE FROM sms_decided WHERE key < ?`, key)
		return err
	})
}

// LastDecidedKey is the highest key recorded, 0 for none: a channel starts its keys
// above it.
func (e *Engine) LastDecidedKey(ctx context.Context) (int64, error) {
	var k int64
	err := e.db.Reader().QueryRowContext(ctx, `SELECT coalesce(max(key), 0) FROM sms_decided`).Scan(&k)
	return k, err
}
