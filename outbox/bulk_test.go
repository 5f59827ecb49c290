package outbox

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/payswitch/payswitch/internal/pgtest"
	"github.com/payswitch/payswitch/store"
)

// A batch of MarkSents and one of receipts each take a few statements, whatever their
// number, and leave every message as the calls one by one would.
func TestBulkMarkSentAndReceiptsTakeFewStatements(t *testing.T) {
	pgtest.Both(t, func(t *testing.T) {
		const n = 8
		db, m := openMetered(t)
		o := New(db, nil)
		// Even messages ask for delivery receipts, odd ones do not (their parts are not
		// recorded).
		asked, not := queue(t, db, n/2, true), queue(t, db, n/2, false)
		var ids []int64
		for i := range asked {
			ids = append(ids, asked[i], not[i])
		}
		claim(t, o, n, time.Hour)
		var writes []func() error
		for i, id := range ids {
			msg := askedReceipts(id)
			msg.RequestReceipt = i%2 == 0
			parts := []string{fmt.Sprintf("p%d", i)}
			if i == 0 {
				parts = append(parts, "p0b") // a message of two parts
			}
			writes = append(writes, func() error { return o.MarkSent(ctx, msg, "carrier-a", parts) })
		}
		before := m.stmts.Load()
		errs, ops := combined(t, db, m, o, writes...)
		if err := errors.Join(errs...); err != nil || ops != 1 {
			t.Fatalf("MarkSent: errors %v in %d operations, want none in 1", err, ops)
		}
		// The early receipts' check, the UPDATE, the parts' INSERT (and on PostgreSQL first
		// the parts' locks): one by one it was 4 a message that asked for receipts and 1 one
		// that did not.
		wantStmts := int64(3)
		if driverOf(t) == store.Postgres {
			wantStmts = 4
		}
		if got := m.stmts.Load() - before; got != wantStmts {
			t.Errorf("%d statements for %d MarkSents, want %d", got, n, wantStmts)
		}
		for i, id := range ids {
			got := get(t, o, id)
			want := []string{fmt.Sprintf("p%d", i)}
			if i == 0 {
				want = append(want, "p0b")
			}
			if got.State != StateSent || got.Link != "carrier-a" || !reflect.DeepEqual(got.MessageIDs, want) {
				t.Errorf("message %d: %s on %q with %v, want sent on carrier-a with %v", i, got.State, got.Link, got.MessageIDs, want)
			}
		}

		// Receipts for the parts recorded, and one for a part of an SMS that asked for none.
		type result struct {
			r     Receipted
			found bool
			err   error
			seen  []Receipted // what the caller's work was handed, in the transaction
		}
		parts := []string{"p0", "p2", "p4", "p6", "p1"}
		status := []string{"DELIVRD", "UNDELIV", "ENROUTE", "DELIVRD", "DELIVRD"}
		res := make([]result, len(parts))
		writes = writes[:0]
		for i, part := range parts {
			writes = append(writes, func() error {
				r := &res[i]
				r.r, r.found, r.err = o.ReceiptThen(ctx, "carrier-a", part, status[i],
					func(_ context.Context, _ store.Tx, got Receipted) (func(), error) {
						r.seen = append(r.seen, got)
						return nil, nil
					})
				return r.err
			})
		}
		before = m.stmts.Load()
		errs, ops = combined(t, db, m, o, writes...)
		if err := errors.Join(errs...); err != nil || ops != 1 {
			t.Fatalf("receipts: errors %v in %d operations, want none in 1", err, ops)
		}
		// In bulk: the parts' statuses, the read, the settling; then the unknown part alone:
		// its part's UPDATE, the old early receipts' DELETE, its own INSERT. PostgreSQL
		// locks the parts first and the messages after the statuses, in bulk and alone.
		wantStmts = 3 + 3
		if driverOf(t) == store.Postgres {
			wantStmts = 5 + 4
		}
		if got := m.stmts.Load() - before; got != wantStmts {
			t.Errorf("%d statements for %d receipts, want %d", got, len(parts), wantStmts)
		}
		want := []struct {
			idx   int
			state string // the message's, after
		}{{0, StateSent}, {2, StateUndeliverable}, {4, StateSent}, {6, StateDelivered}}
		for i, w := range want {
			r := res[i]
			exp := Receipted{ID: ids[w.idx], Kind: KindSMS, To: fmt.Sprintf("2547%08d", w.idx/2), PaymentID: "PAYAAAAAAA",
				Purpose: "reply", State: w.state, Status: status[i]}
			if !r.found || r.r != exp || len(r.seen) != 1 || r.seen[0] != exp {
				t.Errorf("%s: got %+v (found %v), work saw %+v; want %+v once", parts[i], r.r, r.found, r.seen, exp)
			}
			if got := get(t, o, ids[w.idx]); got.State != w.state {
				t.Errorf("%s: stored state %s, want %s", parts[i], got.State, w.state)
			}
		}
		if r := res[4]; r.found || len(r.seen) != 0 {
			t.Errorf("p1 (no receipt asked): found %v, work saw %v; want unknown", r.found, r.seen)
		}
		if got := get(t, o, ids[1]); got.State != StateSent {
			t.Errorf("message 1 is %s, want sent", got.State)
		}
		// The second part of message 0 completes it.
		if got, found, err := o.Receipt(ctx, "carrier-a", "p0b", "DELIVRD"); err != nil || !found || got.State != StateDelivered {
			t.Errorf("p0b: %s, found %v, err %v; want delivered", got.State, found, err)
		}
	})
}

// The calls bulk does not cover run alone in the same batch, as they always did.
func TestBulkLeavesItsExceptionsToRunAlone(t *testing.T) {
	pgtest.Both(t, func(t *testing.T) {
		db, m := openMetered(t)
		o := New(db, nil)
		ids := queue(t, db, 5, true)
		claim(t, o, 5, time.Hour)
		// Message 4 was sent once already: its MarkSent now is a second one.
		if err := o.MarkSent(ctx, askedReceipts(ids[4]), "carrier-a", []string{"first"}); err != nil {
			t.Fatal(err)
		}
		// An SMSC's IDs that are not UTF-8 or hold a NUL are kept quoted (storable), on
		// both drivers, in bulk as one by one.
		bad, nul := "\xff\xfe", "a\x003"
		badIDs := [][]string{{`"\xff\xfe"`}, {`"a\x003"`}}
		writes := []func() error{
			func() error { return o.MarkSent(ctx, askedReceipts(ids[0]), "carrier-a", []string{"a0"}) },
			func() error { return o.MarkSent(ctx, askedReceipts(9999), "carrier-a", []string{"x"}) },
			func() error { return o.MarkSent(ctx, askedReceipts(ids[1]), "carrier-a", []string{bad}) },
			func() error { return o.MarkSent(ctx, Message{ID: ids[2]}, "carrier-a", []string{"a2"}) }, // receipts not said
			func() error { return o.MarkSent(ctx, askedReceipts(ids[3]), "carrier-a", []string{nul}) },
			func() error { return o.MarkSent(ctx, askedReceipts(ids[4]), "carrier-a", []string{"second"}) },
		}
		errs, ops := combined(t, db, m, o, writes...)
		if ops != 1 {
			t.Errorf("%d store operations, want 1", ops)
		}
		for i, err := range errs {
			if wantErr := i == 1; (err != nil) != wantErr || wantErr && !errors.Is(err, ErrNotFound) {
				t.Errorf("write %d: err %v, want not found: %v", i, err, wantErr)
			}
		}
		wantIDs := [][]string{{"a0"}, badIDs[0], {"a2"}, badIDs[1], {"first", "second"}}
		for i, id := range ids {
			got := get(t, o, id)
			if got.State != StateSent || !reflect.DeepEqual(got.MessageIDs, wantIDs[i]) {
				t.Errorf("message %d: %s %q, want sent %q", i, got.State, got.MessageIDs, wantIDs[i])
			}
		}
		// Every part is where a receipt with the SMSC's bytes finds it.
		for i, part := range []string{"a0", bad, "a2", nul, "second"} {
			if got, found, err := o.Receipt(ctx, "carrier-a", part, "DELIVRD"); err != nil || !found || got.ID != ids[i] {
				t.Errorf("receipt for %q: message %d, found %v, err %v; want %d", part, got.ID, found, err, ids[i])
			}
		}
	})
}

// A receipt that overtook its MarkSent waits; a batch of MarkSents that includes its
// part runs alone, so that the MarkSent applies it and hands it to the caller's work.
func TestBulkMarkSentAppliesEarlyReceipts(t *testing.T) {
	pgtest.Both(t, func(t *testing.T) {
		db, m := openMetered(t)
		o := New(db, nil)
		ids := queue(t, db, 3, true)
		claim(t, o, 3, time.Hour)
		if _, found, err := o.Receipt(ctx, "carrier-a", "e1", "DELIVRD"); err != nil || found {
			t.Fatalf("early receipt: found %v, err %v", found, err)
		}
		var early []Receipted
		then := func(_ context.Context, _ store.Tx, r Receipted) (func(), error) {
			early = append(early, r)
			return nil, nil
		}
		var writes []func() error
		for i, id := range ids {
			writes = append(writes, func() error {
				return o.MarkSentThen(ctx, askedReceipts(id), "carrier-a", []string{fmt.Sprintf("e%d", i)}, then)
			})
		}
		errs, ops := combined(t, db, m, o, writes...)
		if err := errors.Join(errs...); err != nil || ops != 1 {
			t.Fatalf("errors %v in %d operations", err, ops)
		}
		if len(early) != 1 || early[0].ID != ids[1] || !early[0].Early || early[0].State != StateDelivered {
			t.Errorf("early receipts applied: %+v, want message %d delivered, once", early, ids[1])
		}
		for i, want := range []string{StateSent, StateDelivered, StateSent} {
			if got := get(t, o, ids[i]); got.State != want {
				t.Errorf("message %d is %s, want %s", i, got.State, want)
			}
		}
	})
}

// Two receipts for parts of one message in a batch: the batch runs again one by one, so
// that each receipt's caller hears of the message's state after its own, as it would
// have (in bulk both would have heard "delivered").
func TestBulkReceiptsOfOneMessageRunOneByOne(t *testing.T) {
	pgtest.Both(t, func(t *testing.T) {
		db, m := openMetered(t)
		o := New(db, nil)
		ids := queue(t, db, 2, true)
		claim(t, o, 2, time.Hour)
		if err := o.MarkSent(ctx, askedReceipts(ids[0]), "carrier-a", []string{"m1", "m2"}); err != nil {
			t.Fatal(err)
		}
		if err := o.MarkSent(ctx, askedReceipts(ids[1]), "carrier-a", []string{"n1"}); err != nil {
			t.Fatal(err)
		}
		var mu sync.Mutex
		states := map[string]string{}
		var writes []func() error
		for _, part := range []string{"m1", "n1", "m2"} {
			writes = append(writes, func() error {
				r, found, err := o.ReceiptWith(ctx, "carrier-a", part, "DELIVRD", nil)
				if err == nil && !found {
					err = fmt.Errorf("%s not found", part)
				}
				mu.Lock()
				states[part] = r.State
				mu.Unlock()
				return err
			})
		}
		errs, ops := combined(t, db, m, o, writes...)
		if err := errors.Join(errs...); err != nil {
			t.Fatal(err)
		}
		// PostgreSQL counts only the operations committed: the batch's, rolled back, is
		// not one there.
		wantOps := int64(1 + 3)
		if driverOf(t) == store.Postgres {
			wantOps = 3
		}
		if ops != wantOps {
			t.Errorf("%d store operations, want %d (the batch, then each alone)", ops, wantOps)
		}
		// Alone, the two of message m run in either order: the first sees it still sent.
		first, second := states["m1"], states["m2"]
		if states["n1"] != StateDelivered || first == second || first != StateSent && second != StateSent ||
			first != StateDelivered && second != StateDelivered {
			t.Errorf("states after each receipt %v, want n1 delivered and m sent after one, delivered after the other", states)
		}
	})
}
