package outbox

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/payswitch/payswitch/internal/pgtest"

	"github.com/payswitch/payswitch/store"
)

// step is one thing that happens to message 0 or 1 of a receipt scenario.
type step struct {
	sent   []string // MarkSent of msg with these part IDs (on carrier-a)
	msg    int      // which message: 0 or 1
	force  string   // set msg's state to this in SQL (as a re-claim would)
	part   string   // a receipt for this part ID on carrier-a...
	status string   // ...with this stat
	// For a receipt: whether the part is known, and the state of the message it names
	// (wantMsg) as the receipt returns it; for every step, each message's stored state.
	found     bool
	wantMsg   int
	wantState string
	stored    [2]string
}

func TestReceiptSettlesMessages(t *testing.T) {
	pgtest.Both(t, func(t *testing.T) {
		const (
			sending = StateSending
			sent    = StateSent
			dlvd    = StateDelivered
			undlv   = StateUndeliverable
		)
		tests := []struct {
			name  string
			steps []step
		}{
			{"multi-part: undeliverable once a part failed, whatever the others say", []step{
				{sent: []string{"a", "b", "c"}, stored: [2]string{sent, sending}},
				{part: "a", status: "DELIVRD", found: true, wantState: sent, stored: [2]string{sent, sending}},
				{part: "b", status: "UNDELIV", found: true, wantState: undlv, stored: [2]string{undlv, sending}},
				{part: "c", status: "DELIVRD", found: true, wantState: undlv, stored: [2]string{undlv, sending}},
				{part: "c", status: "ENROUTE", found: true, wantState: undlv, stored: [2]string{undlv, sending}},
			}},
			{"multi-part: delivered once every part is, parts from two MarkSents", []step{
				{sent: []string{"a", "b"}, stored: [2]string{sent, sending}},
				{sent: []string{"b", "c"}, stored: [2]string{sent, sending}},
				{part: "a", status: "DELIVRD", found: true, wantState: sent, stored: [2]string{sent, sending}},
				{part: "c", status: "DELIVRD", found: true, wantState: sent, stored: [2]string{sent, sending}},
				{part: "b", status: "ENROUTE", found: true, wantState: sent, stored: [2]string{sent, sending}},
				{part: "b", status: "DELIVRD", found: true, wantState: dlvd, stored: [2]string{dlvd, sending}},
			}},
			{"multi-part: a failed part delivered after all leaves the verdict open", []step{
				{sent: []string{"a", "b"}, stored: [2]string{sent, sending}},
				{part: "a", status: "EXPIRED", found: true, wantState: undlv, stored: [2]string{undlv, sending}},
				// Not every part is delivered and none failed now: the state stays as it was.
				{part: "a", status: "DELIVRD", found: true, wantState: undlv, stored: [2]string{undlv, sending}},
				{part: "b", status: "DELIVRD", found: true, wantState: dlvd, stored: [2]string{dlvd, sending}},
			}},
			{"a message claimed again keeps its state, and its part the receipt", []step{
				{sent: []string{"a", "b"}, stored: [2]string{sent, sending}},
				{force: sending, stored: [2]string{sending, sending}},
				{part: "a", status: "DELIVRD", found: true, wantState: sending, stored: [2]string{sending, sending}},
				{force: StateQueued, stored: [2]string{StateQueued, sending}},
				{part: "a", status: "REJECTD", found: true, wantState: StateQueued, stored: [2]string{StateQueued, sending}},
				{force: StateFailed, stored: [2]string{StateFailed, sending}},
				{part: "a", status: "DELIVRD", found: true, wantState: StateFailed, stored: [2]string{StateFailed, sending}},
				// Sent again: the parts' receipts so far decide as soon as one more comes.
				{force: sent, stored: [2]string{sent, sending}},
				{part: "b", status: "DELIVRD", found: true, wantState: dlvd, stored: [2]string{dlvd, sending}},
			}},
			{"early receipt for one part of several", []step{
				{part: "b", status: "UNDELIV", stored: [2]string{sending, sending}},
				{sent: []string{"a", "b", "c"}, stored: [2]string{undlv, sending}},
				{part: "a", status: "DELIVRD", found: true, wantState: undlv, stored: [2]string{undlv, sending}},
			}},
			{"early receipts for every part", []step{
				{part: "b", status: "DELIVRD", stored: [2]string{sending, sending}},
				{part: "a", status: "delivrd", stored: [2]string{sending, sending}},
				{sent: []string{"a", "b"}, stored: [2]string{dlvd, sending}},
			}},
			{"early receipt for a part that a second MarkSent adds", []step{
				{part: "b", status: "DELETED", stored: [2]string{sending, sending}},
				{sent: []string{"a"}, stored: [2]string{sent, sending}},
				{part: "a", status: "DELIVRD", found: true, wantState: dlvd, stored: [2]string{dlvd, sending}},
				{sent: []string{"b"}, stored: [2]string{undlv, sending}},
			}},
			{"early receipt that settles nothing", []step{
				{part: "a", status: "ACCEPTD", stored: [2]string{sending, sending}},
				{sent: []string{"a"}, stored: [2]string{sent, sending}},
				{part: "a", status: "DELIVRD", found: true, wantState: dlvd, stored: [2]string{dlvd, sending}},
			}},
			{"a reused SMSC ID belongs to the message that sent it last", []step{
				{sent: []string{"r1"}, stored: [2]string{sent, sending}},
				{part: "r1", status: "DELIVRD", found: true, wantState: dlvd, stored: [2]string{dlvd, sending}},
				{msg: 1, sent: []string{"r1"}, stored: [2]string{dlvd, sent}},
				{part: "r1", status: "UNDELIV", found: true, wantMsg: 1, wantState: undlv, stored: [2]string{dlvd, undlv}},
			}},
		}
		for _, api := range []string{"Receipt", "ReceiptWith"} {
			for _, tc := range tests {
				t.Run(api+"/"+tc.name, func(t *testing.T) {
					db := mustOpen(t)
					o := New(db, newClock().Now)
					ids := queue(t, db, 2, true)
					claim(t, o, 2, time.Hour)
					for i, s := range tc.steps {
						id := ids[s.msg]
						switch {
						case s.sent != nil:
							if err := o.MarkSent(ctx, askedReceipts(id), "carrier-a", s.sent); err != nil {
								t.Fatalf("step %d: MarkSent: %v", i, err)
							}
						case s.force != "":
							force(t, db, id, s.force)
						default:
							var gotID int64
							var state string
							var found bool
							var err error
							if api == "Receipt" {
								var m Message
								m, found, err = o.Receipt(ctx, "carrier-a", s.part, s.status)
								gotID, state = m.ID, m.State
							} else {
								var calls int
								var r, seen Receipted
								r, found, err = o.ReceiptWith(ctx, "carrier-a", s.part, s.status, func(_ store.Tx, m Receipted) error {
									calls, seen = calls+1, m
									return nil
								})
								gotID, state = r.ID, r.State
								if want := map[bool]int{true: 1}[found]; calls != want || (found && seen != r) {
									t.Errorf("step %d: hook ran %d times and saw %+v; want %d, %+v", i, calls, seen, want, r)
								}
								if found && (r.Kind != KindSMS || r.To != fmt.Sprintf("2547%08d", s.wantMsg) ||
									r.PaymentID != "PAYAAAAAAA" || r.Purpose != "reply") {
									t.Errorf("step %d: receipt returned %+v", i, r)
								}
							}
							if err != nil || found != s.found {
								t.Fatalf("step %d: receipt for %s: found %v, err %v; want found %v", i, s.part, found, err, s.found)
							}
							if found && (gotID != ids[s.wantMsg] || state != s.wantState) {
								t.Errorf("step %d: receipt for %s returned message %d %s, want %d %s",
									i, s.part, gotID, state, ids[s.wantMsg], s.wantState)
							}
							if !found && (gotID != 0 || state != "") {
								t.Errorf("step %d: unknown part returned message %d %q", i, gotID, state)
							}
						}
						for j, want := range s.stored {
							if got := get(t, o, ids[j]); got.State != want {
								t.Errorf("step %d: message %d is %s, want %s", i, j, got.State, want)
							}
						}
					}
				})
			}
		}
	})
}

// force sets message id's state as nothing in the API does to a sent message: a test
// stand-in for a message claimed again.
func force(t *testing.T, db *store.DB, id int64, state string) {
	t.Helper()
	err := db.Write(ctx, func(tx store.Tx) error {
		_, err := tx.ExecContext(context.Background(), `UPDATE messages SET state = ? WHERE id = ?`, state, id)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestReceiptStatements pins how many statements a receipt runs inside its store
// operation: the writer runs two receipts per payment, and each statement costs it a
// few microseconds whatever it does. Change the numbers only on purpose, with
// BenchmarkReceiptWriter to show it pays.
func TestReceiptStatements(t *testing.T) {
	db, statements := statementLog(t)
	o := New(db, newClock().Now)
	ids := queue(t, db, 3, true)
	claim(t, o, 3, time.Hour)
	for i, parts := range [][]string{{"one"}, {"two.0", "two.1"}, {"again"}} {
		if err := o.MarkSent(ctx, askedReceipts(ids[i]), "carrier-a", parts); err != nil {
			t.Fatal(err)
		}
	}
	force(t, db, ids[2], StateSending)
	for _, tc := range []struct {
		name, part, status string
		want               int
	}{
		// The part's status, the message and its verdict, the message's new state.
		{"one part delivered", "one", "DELIVRD", 3},
		{"a report that settles nothing", "one", "ENROUTE", 2},
		{"first of two parts delivered", "two.0", "DELIVRD", 2},
		{"last of two parts delivered", "two.1", "DELIVRD", 3},
		{"message claimed again", "again", "DELIVRD", 2},
		// The part, expired early receipts, this one kept.
		{"unknown part", "early", "DELIVRD", 3},
	} {
		got := statements(func() {
			if _, _, err := o.ReceiptWith(ctx, "carrier-a", tc.part, tc.status, nil); err != nil {
				t.Fatalf("%s: %v", tc.name, err)
			}
		})
		// A store operation that does not fail runs without a savepoint.
		if n := len(got); n != tc.want {
			t.Errorf("%s: %d statements, want %d:\n%s", tc.name, n, tc.want, strings.Join(got, "\n"))
		}
	}
}

// The cleanup every unknown receipt runs finds old early receipts through their index,
// not by reading every one kept (up to a day of them).
func TestEarlyReceiptCleanupUsesItsIndex(t *testing.T) {
	db := mustOpen(t)
	o := New(db, newClock().Now)
	for i := range 50 {
		if _, known, err := o.Receipt(ctx, "carrier-a", fmt.Sprintf("unknown-%d", i), "DELIVRD"); err != nil || known {
			t.Fatalf("receipt %d: known %v, %v", i, known, err)
		}
	}
	plan, err := db.QueryPlan(ctx, `DELETE FROM early_receipts WHERE received_at < ?`, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(plan) != 1 || !strings.Contains(plan[0], "early_receipts_by_age (received_at<?)") {
		t.Fatalf("plan %q, want a search of early_receipts_by_age", plan)
	}
	var n int
	if err := db.Reader().QueryRowContext(ctx, `SELECT count(*) FROM early_receipts`).Scan(&n); err != nil || n != 50 {
		t.Fatalf("%d early receipts kept (%v), want 50", n, err)
	}
}

// statementLog opens a store that records the statements it runs, and returns it with a
// function that runs f and returns the statements f ran.
func statementLog(t *testing.T) (*store.DB, func(f func()) []string) {
	t.Helper()
	var (
		mu    sync.Mutex
		texts []string
	)
	db, err := store.Open(filepath.Join(t.TempDir(), "outbox.db"), store.Options{OnStatement: func(q string) {
		mu.Lock()
		texts = append(texts, q)
		mu.Unlock()
	}}, Schema)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db, func(f func()) []string {
		mu.Lock()
		texts = nil
		mu.Unlock()
		f()
		mu.Lock()
		defer mu.Unlock()
		return texts
	}
}

// A message of one part takes its verdict from that part's status (readPart) without
// reading its parts: the same verdict as the one read from every part, which a
// message whose one ID holds a comma still gets.
func TestOnePartVerdictIsThePartsVerdict(t *testing.T) {
	pgtest.Both(t, func(t *testing.T) {
		for _, prior := range []string{StateSent, StateDelivered, StateUndeliverable, StateSending} {
			for _, tc := range []struct{ status, want string }{
				{"DELIVRD", StateDelivered},
				{"delivrd", StateDelivered},
				{"UNDELIV", StateUndeliverable},
				{"REJECTD", StateUndeliverable},
				{"EXPIRED", StateUndeliverable},
				{"DELETED", StateUndeliverable},
				{"ENROUTE", ""},
				{"ACCEPTD", ""},
				{"UNKNOWN", ""},
				{"", ""},
			} {
				t.Run(prior+"/"+tc.status, func(t *testing.T) {
					want := tc.want
					if want == "" || prior == StateSending { // no verdict, or claimed again
						want = prior
					}
					db := mustOpen(t)
					o := New(db, newClock().Now)
					ids := queue(t, db, 2, true)
					claim(t, o, 2, time.Hour)
					parts := []string{"x", "y,z"} // the second reads its parts
					for i, id := range ids {
						if err := o.MarkSent(ctx, askedReceipts(id), "carrier-a", parts[i:i+1]); err != nil {
							t.Fatal(err)
						}
						force(t, db, id, prior)
					}
					for i, id := range ids {
						r, found, err := o.ReceiptWith(ctx, "carrier-a", parts[i], tc.status, nil)
						if err != nil || !found || r.ID != id || r.State != want {
							t.Errorf("receipt for %q: %+v, found %v, %v; want message %d %s", parts[i], r, found, err, id, want)
						}
						if got := get(t, o, id); got.State != want {
							t.Errorf("message with part %q is %s, want %s", parts[i], got.State, want)
						}
					}
				})
			}
		}
	})
}

// A message whose one ID was reused by another message (so it has no part left) and
// that a second MarkSent then gives a new part has two IDs and one part: its verdict
// is that part's.
func TestVerdictOfAMessageWithFewerPartsThanIDs(t *testing.T) {
	pgtest.Both(t, func(t *testing.T) {
		db := mustOpen(t)
		o := New(db, newClock().Now)
		ids := queue(t, db, 2, true)
		claim(t, o, 2, time.Hour)
		for _, s := range []struct {
			id    int64
			parts []string
		}{{ids[0], []string{"r1"}}, {ids[1], []string{"r1"}}, {ids[0], []string{"r2"}}} {
			if err := o.MarkSent(ctx, askedReceipts(s.id), "carrier-a", s.parts); err != nil {
				t.Fatal(err)
			}
		}
		if n := rows(t, db, `SELECT count(*) FROM message_parts WHERE outbox_id = ?`, ids[0]); n != 1 {
			t.Fatalf("message has %d parts, want 1", n)
		}
		m, found, err := o.Receipt(ctx, "carrier-a", "r2", "DELIVRD")
		if err != nil || !found || m.ID != ids[0] || m.State != StateDelivered || len(m.MessageIDs) != 2 {
			t.Fatalf("receipt: %+v, found %v, %v; want message %d delivered with 2 IDs", m, found, err, ids[0])
		}
		if m := get(t, o, ids[1]); m.State != StateSent {
			t.Fatalf("the other message is %s, want sent", m.State)
		}
	})
}
