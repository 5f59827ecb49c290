package outbox

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/payswitch/payswitch/store"
)

// holdWriter occupies the store's writer until the returned release is called, so that
// the outbox's writes meanwhile wait for it together and share one operation.
func holdWriter(t *testing.T, db *store.DB) (release func()) {
	t.Helper()
	running, hold := make(chan struct{}), make(chan struct{})
	var once sync.Once
	done := make(chan error, 1)
	go func() {
		done <- db.Write(ctx, func(store.Tx) error {
			once.Do(func() { close(running) }) // it runs again if its group is redone
			<-hold
			return nil
		})
	}()
	<-running
	return func() {
		close(hold)
		if err := <-done; err != nil {
			t.Error(err)
		}
	}
}

// waitJoined polls until n writes wait in o's open batch.
func waitJoined(t *testing.T, o *Outbox, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		o.w.mu.Lock()
		got := 0
		if o.w.open != nil {
			got = len(o.w.open.calls)
		}
		o.w.mu.Unlock()
		if got == n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d writes joined the batch, want %d", got, n)
		}
		time.Sleep(time.Millisecond)
	}
}

// combined starts the writes one after another, each joining the batch of those before
// it while the writer is held, then lets them run and returns their errors in order. It
// also returns how many store operations they took.
func combined(t *testing.T, db *store.DB, m *meter, o *Outbox, writes ...func() error) ([]error, int64) {
	t.Helper()
	release := holdWriter(t, db)
	before := m.ops()
	errs := make([]error, len(writes))
	done := make(chan struct{}, len(writes))
	for i, w := range writes {
		go func() {
			errs[i] = w()
			done <- struct{}{}
		}()
		waitJoined(t, o, i+1)
	}
	release()
	for range writes {
		<-done
	}
	return errs, m.ops() - before - 1 // not the held writer's
}

// failOn makes the database refuse any part whose SMSC ID is mid, as a full disk or a
// broken constraint would fail a statement halfway through a write.
func failOn(t *testing.T, db *store.DB, mid string) {
	t.Helper()
	err := db.Write(ctx, func(tx store.Tx) error {
		_, err := tx.ExecContext(context.Background(), fmt.Sprintf(`CREATE TEMP TRIGGER fail_%[1]s BEFORE INSERT ON message_parts
			WHEN new.message_id = '%[1]s' BEGIN SELECT RAISE(ABORT, 'part %[1]s refused'); END`, mid))
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestCombinedMarkSentFailsAlone(t *testing.T) {
	type write struct {
		id      int // index into the queued messages; -1: an ID that does not exist
		part    string
		retry   bool // Retry instead of MarkSent
		wantErr error
	}
	tests := []struct {
		name     string
		broken   string // a part ID the database refuses
		writes   []write
		wantOps  int64
		wantSent []bool // per queued message
	}{
		{
			name: "unknown message refused, the rest in one operation",
			writes: []write{
				{id: 0, part: "a"},
				{id: -1, part: "x", wantErr: ErrNotFound},
				{id: 1, part: "b"},
				{id: 2, part: "c"},
			},
			wantOps:  1,
			wantSent: []bool{true, true, true},
		},
		{
			name: "retry of a message sent meanwhile refused",
			writes: []write{
				{id: 0, part: "a"},
				{id: 0, retry: true, wantErr: ErrState},
				{id: 1, part: "b"},
			},
			wantOps:  1,
			wantSent: []bool{true, true, false},
		},
		{
			name:   "a statement that fails halfway undoes only its own write",
			broken: "boom",
			writes: []write{
				{id: 0, part: "a"},
				{id: 1, part: "boom", wantErr: errors.New("part boom refused")},
				{id: 2, part: "c"},
			},
			// The combined operation is rolled back; each write then runs alone.
			wantOps:  1 + 3,
			wantSent: []bool{true, false, true},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			db, m := openMetered(t)
			o := New(db, nil)
			ids := queue(t, db, 3, true)
			claim(t, o, 3, time.Hour)
			if tc.broken != "" {
				failOn(t, db, tc.broken)
			}
			var writes []func() error
			for _, w := range tc.writes {
				id := int64(999)
				if w.id >= 0 {
					id = ids[w.id]
				}
				writes = append(writes, func() error {
					if w.retry {
						return o.Retry(ctx, id, "throttled", time.Time{})
					}
					return o.MarkSent(ctx, askedReceipts(id), "carrier-a", []string{w.part})
				})
			}
			errs, ops := combined(t, db, m, o, writes...)
			for i, w := range tc.writes {
				switch {
				case w.wantErr == nil && errs[i] != nil:
					t.Errorf("write %d: %v", i, errs[i])
				case w.wantErr != nil && !errors.Is(errs[i], w.wantErr) &&
					(errs[i] == nil || !strings.Contains(errs[i].Error(), w.wantErr.Error())):
					t.Errorf("write %d: err = %v, want %v", i, errs[i], w.wantErr)
				}
			}
			if ops != tc.wantOps {
				t.Errorf("%d store operations, want %d", ops, tc.wantOps)
			}
			for i, want := range tc.wantSent {
				got := get(t, o, ids[i])
				if (got.State == StateSent) != want {
					t.Errorf("message %d is %s (ids %v), want sent %v", i, got.State, got.MessageIDs, want)
				}
				if !want && len(got.MessageIDs) > 0 {
					t.Errorf("message %d not sent but has parts %v", i, got.MessageIDs)
				}
			}
		})
	}
}

func TestCombinedReceiptsReturnTheirOwn(t *testing.T) {
	tests := []struct {
		name    string
		failing string // ReceiptWith's hook fails (or panics) for this part
		panics  bool
		wantOps int64
	}{
		{name: "all succeed", wantOps: 1},
		{name: "hook fails for one", failing: "p2", wantOps: 1 + 5},
		{name: "hook panics for one", failing: "p3", panics: true, wantOps: 1 + 5},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			db, m := openMetered(t)
			o := New(db, nil)
			ids := queue(t, db, 4, true)
			claim(t, o, 4, time.Hour)
			for i, id := range ids {
				if err := o.MarkSent(ctx, askedReceipts(id), "carrier-a", []string{fmt.Sprintf("p%d", i)}); err != nil {
					t.Fatal(err)
				}
			}
			type result struct {
				m     Receipted
				ok    bool
				err   error
				calls int
			}
			parts := []string{"p0", "p1", "p2", "p3", "unknown"}
			status := []string{"DELIVRD", "UNDELIV", "DELIVRD", "ENROUTE", "DELIVRD"}
			res := make([]result, len(parts))
			var writes []func() error
			for i, part := range parts {
				writes = append(writes, func() error {
					r := &res[i]
					r.m, r.ok, r.err = o.ReceiptWith(ctx, "carrier-a", part, status[i], func(tx store.Tx, m Receipted) error {
						r.calls++
						if part != tc.failing {
							return nil
						}
						if tc.panics {
							panic("hook broke")
						}
						return errors.New("hook failed")
					})
					return r.err
				})
			}
			_, ops := combined(t, db, m, o, writes...)
			if ops != tc.wantOps {
				t.Errorf("%d store operations, want %d", ops, tc.wantOps)
			}
			wantState := []string{StateDelivered, StateUndeliverable, StateDelivered, StateSent}
			for i, part := range parts {
				r := res[i]
				switch {
				case part == "unknown":
					if r.ok || r.err != nil || r.calls != 0 {
						t.Errorf("%s: ok %v, err %v, hook calls %d; want false, nil, 0", part, r.ok, r.err, r.calls)
					}
				case part == tc.failing:
					if r.err == nil || r.ok {
						t.Errorf("%s: ok %v, err %v; want the hook's error", part, r.ok, r.err)
					}
					if got := get(t, o, ids[i]); got.State != StateSent {
						t.Errorf("%s: message is %s after its receipt was undone, want sent", part, got.State)
					}
				default:
					if r.err != nil || !r.ok || r.m.ID != ids[i] || r.m.State != wantState[i] {
						t.Errorf("%s: got message %d %s, ok %v, err %v; want %d %s", part, r.m.ID, r.m.State, r.ok, r.err,
							ids[i], wantState[i])
					}
					want := Receipted{ID: ids[i], Kind: KindSMS, To: fmt.Sprintf("2547%08d", i), PaymentID: "PAYAAAAAAA",
						Purpose: "reply", State: wantState[i], Status: status[i]}
					if r.m != want {
						t.Errorf("%s: got %+v, want %+v", part, r.m, want)
					}
					if got := get(t, o, ids[i]); got.State != wantState[i] {
						t.Errorf("%s: stored state %s, want %s", part, got.State, wantState[i])
					}
				}
			}
		})
	}
}

func TestCombinedReceiptAndMarkSentInEitherOrder(t *testing.T) {
	for _, receiptFirst := range []bool{true, false} {
		t.Run(fmt.Sprintf("receipt first %v", receiptFirst), func(t *testing.T) {
			db, m := openMetered(t)
			o := New(db, nil)
			id := queue(t, db, 1, true)[0]
			claim(t, o, 1, time.Hour)
			var found bool
			receipt := func() (err error) {
				_, found, err = o.Receipt(ctx, "carrier-a", "abc", "DELIVRD")
				return err
			}
			sent := func() error { return o.MarkSent(ctx, askedReceipts(id), "carrier-a", []string{"abc"}) }
			writes := []func() error{sent, receipt}
			if receiptFirst {
				writes = []func() error{receipt, sent}
			}
			errs, ops := combined(t, db, m, o, writes...)
			if err := errors.Join(errs...); err != nil || ops != 1 {
				t.Fatalf("errors %v in %d operations", err, ops)
			}
			if found == receiptFirst {
				t.Errorf("Receipt found the part: %v, want %v", found, !receiptFirst)
			}
			if got := get(t, o, id); got.State != StateDelivered || !reflect.DeepEqual(got.MessageIDs, []string{"abc"}) {
				t.Errorf("message is %s %v, want delivered [abc]", got.State, got.MessageIDs)
			}
		})
	}
}

func TestCombinedWriteLeavesWhenItsContextEnds(t *testing.T) {
	// Writes join in order (the first leads the batch); those marked leave, by their
	// context ending, before the writer takes the batch.
	tests := []struct {
		name    string
		leaves  []bool
		wantOps int64
	}{
		{name: "the leader leaves, the others commit", leaves: []bool{true, false, false}, wantOps: 1},
		{name: "a member leaves, the others commit", leaves: []bool{false, true, false}, wantOps: 1},
		{name: "the leader alone leaves: nothing runs", leaves: []bool{true}, wantOps: 0},
		{name: "everyone leaves: nothing runs", leaves: []bool{true, true, true}, wantOps: 0},
		{name: "members leave, the leader commits", leaves: []bool{false, true, true}, wantOps: 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			db, m := openMetered(t)
			o := New(db, nil)
			ids := queue(t, db, len(tc.leaves), true)
			claim(t, o, len(ids), time.Hour)
			release := holdWriter(t, db)
			before := m.ops()
			cctx, cancel := context.WithCancel(ctx)
			errs := make([]chan error, len(tc.leaves))
			for i, leaves := range tc.leaves {
				errs[i] = make(chan error, 1)
				wctx := ctx
				if leaves {
					wctx = cctx
				}
				go func() { errs[i] <- o.MarkSent(wctx, askedReceipts(ids[i]), "carrier-a", []string{fmt.Sprint("m", i)}) }()
				waitJoined(t, o, i+1)
			}
			cancel()
			for i, leaves := range tc.leaves {
				if leaves {
					if err := <-errs[i]; !errors.Is(err, context.Canceled) {
						t.Errorf("write %d: err = %v, want context.Canceled", i, err)
					}
				}
			}
			release()
			for i, leaves := range tc.leaves {
				if !leaves {
					if err := <-errs[i]; err != nil {
						t.Errorf("write %d: %v", i, err)
					}
				}
			}
			// A write after them proves the store has run whatever was queued.
			if _, err := o.Claim(ctx, KindSMS, 1, time.Hour); err != nil {
				t.Fatal(err)
			}
			if ops := m.ops() - before - 2; ops != tc.wantOps { // not the held writer's nor the claim
				t.Errorf("%d store operations, want %d", ops, tc.wantOps)
			}
			for i, leaves := range tc.leaves {
				want := StateSent
				if leaves {
					want = StateSending
				}
				if got := get(t, o, ids[i]); got.State != want {
					t.Errorf("message %d is %s, want %s", i, got.State, want)
				}
			}
		})
	}
}

func TestCombinedPlainReceiptsReturnTheirMessages(t *testing.T) {
	db, m := openMetered(t)
	o := New(db, nil)
	ids := queue(t, db, 4, true)
	claim(t, o, 4, time.Hour)
	for i, id := range ids {
		if err := o.MarkSent(ctx, askedReceipts(id), "carrier-b", []string{fmt.Sprintf("q%d", i)}); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		part, status, wantState string
	}{
		{"q0", "DELIVRD", StateDelivered},
		{"q1", "REJECTD", StateUndeliverable},
		{"q2", "ACCEPTD", StateSent},
		{"q3", "delivrd", StateDelivered},
	}
	got := make([]Message, len(tests))
	found := make([]bool, len(tests))
	var writes []func() error
	for i, tc := range tests {
		writes = append(writes, func() (err error) {
			got[i], found[i], err = o.Receipt(ctx, "carrier-b", tc.part, tc.status)
			return err
		})
	}
	errs, ops := combined(t, db, m, o, writes...)
	if ops != 1 {
		t.Errorf("%d store operations, want 1", ops)
	}
	for i, tc := range tests {
		t.Run(tc.part, func(t *testing.T) {
			want := get(t, o, ids[i])
			if errs[i] != nil || !found[i] {
				t.Fatalf("found %v, err %v", found[i], errs[i])
			}
			if got[i].ID != ids[i] || got[i].State != tc.wantState || !reflect.DeepEqual(got[i], want) {
				t.Errorf("got %+v\nwant %+v in state %s", got[i], want, tc.wantState)
			}
		})
	}
}
