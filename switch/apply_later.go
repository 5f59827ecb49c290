package payswitch

import (
	"context"

	"github.com/payswitch/payswitch/ledger"
	"github.com/payswitch/payswitch/store"
)

// On PostgreSQL the ledger applies a booking's credit at the end of the transaction
// (ledger/postgres_credits.go), so that a merchant's row, which every payment to it
// credits, stays locked only for the end and the COMMIT. A message that shows the
// credited account's balance (the payee's notice, a deposit's notice) would read it now
// and so lock the row at once; it is rendered and queued at the transaction's end
// instead, after the ledger's own end, with the messages of its decision that follow it,
// so that they keep their order. On SQLite nothing waits and every message is queued at
// once.

// laterKey is the key of a transaction's messages queued at its end (store.Deferred).
type laterKey struct{}

// laterMessages are the messages queued at the end of a PostgreSQL Write.
type laterMessages struct {
	batches []laterBatch
}

// laterBatch is the rest of one decision's messages, from the first that waits.
type laterBatch struct {
	o    *op
	msgs []Message
	tr   *ledger.Transfer
}

// waitsFrom reports whether msgs, the rest of a decision's messages, wait for the
// transaction's end: the first shows a balance the ledger applies only then. None of
// them may be the decision's answer, which is returned before the end; then they are all
// queued now, and the balance read applies the credit at once.
func (o *op) waitsFrom(msgs []Message) bool {
	b := msgs[0].Balance
	if msgs[0].Key == "" || b.Var == "" || !o.lt.CreditWaits(b.Account) {
		return false
	}
	for _, m := range msgs {
		if m.Answer {
			return false
		}
	}
	return true
}

// enqueueLater queues msgs at the end of o's transaction, when the store can defer
// (PostgreSQL), and reports whether it will.
func (o *op) enqueueLater(msgs []Message, tr *ledger.Transfer) bool {
	f, ok := store.Deferred(o.tx, laterKey{}, func() store.Finisher { return &laterMessages{} })
	if !ok {
		return false
	}
	l := f.(*laterMessages)
	l.batches = append(l.batches, laterBatch{o: o, msgs: msgs, tr: tr})
	return true
}

// Finish renders and queues the messages (store.Finisher). It runs after the ledger's
// Finish, registered by the booking before: the balances are applied by then.
func (l *laterMessages) Finish(context.Context, store.Tx) error {
	for _, b := range l.batches {
		for _, m := range b.msgs {
			if m.Key != "" {
				if err := b.o.render(&m, b.tr); err != nil {
					return err
				}
			}
			if err := b.o.enqueue(m); err != nil {
				return err
			}
		}
	}
	l.batches = nil
	return nil
}
