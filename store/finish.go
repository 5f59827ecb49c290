package store

import "context"

// A Finisher completes, at the end of a PostgreSQL Write, work that a package put off
// during it: its Finish runs after the Write function returned nil and before COMMIT, on
// the same transaction. The ledger appends its journal entries so: the journal's head is
// one row that every booking locks until its commit, and taken at the end the lock is
// held for the append and the COMMIT only, not for everything the rest of the Write does
// after its booking.
type Finisher interface {
	Finish(ctx context.Context, tx Tx) error
}

// Deferred returns tx's Finisher registered under key, made by mk and registered the
// first time. ok is false when tx cannot defer work (SQLite's writer, where one writer
// already serialises everything, or a transaction that is not a PostgreSQL Write's): the
// caller then does the work at once. Finishers run in the order they were registered.
// A nil mk only asks: f is nil when none is registered under key.
func Deferred(tx Tx, key any, mk func() Finisher) (f Finisher, ok bool) {
	g, isGroup := tx.(*groupTx)
	if !isGroup || !g.finishing {
		return nil, false
	}
	for _, kf := range g.finishers {
		if kf.key == key {
			return kf.f, true
		}
	}
	if mk == nil { // only asking
		return nil, true
	}
	f = mk()
	g.finishers = append(g.finishers, keyedFinisher{key, f})
	return f, true
}

type keyedFinisher struct {
	key any
	f   Finisher
}

// finish runs tx's finishers.
func (g *groupTx) finish(ctx context.Context) error {
	for _, kf := range g.finishers {
		if err := kf.f.Finish(ctx, g); err != nil {
			return err
		}
	}
	return nil
}
