package outbox

import (
	"fmt"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/payswitch/payswitch/store"
)

// The statements that look for unsent messages find them through messages_due (or,
// failed ones, messages_failed), whatever the number of messages sent: none reads the
// table, and Claim reads the index in its own order, with no sort.
func TestDueQueriesUseTheIndex(t *testing.T) {
	db := mustOpen(t)
	for _, tc := range []struct {
		name, query string
		args        int
		want        []string // each a line of the plan
	}{
		{"claim", claimSQL(16), 5, []string{"SEARCH messages USING INDEX messages_due (next_attempt_at<?)"}},
		{"claim of one", claimSQL(1), 5, []string{"SEARCH messages USING INDEX messages_due (next_attempt_at<?)"}},
		{"read a claim", readClaimSQL, 1, []string{"SEARCH messages USING INDEX messages_due (next_attempt_at=?)"}},
		// Walks the index: every message in it is queued or sending.
		{"release claims", releaseSQL, 2, []string{"SCAN messages USING INDEX messages_due"}},
		{"unsent", unsentSQL, 0, []string{"SCAN messages USING INDEX messages_due",
			"SCAN messages USING COVERING INDEX messages_failed"}},
		{"calls to a number", callsToQuery, 2, []string{"SEARCH messages USING INDEX calls_by_to (to_addr=?)"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			plan, err := db.QueryPlan(ctx, tc.query, make([]any, tc.args)...)
			if err != nil {
				t.Fatal(err)
			}
			for _, w := range tc.want {
				found := false
				for _, line := range plan {
					found = found || line == w
				}
				if !found {
					t.Errorf("plan %q has no %q", plan, w)
				}
			}
			for _, line := range plan {
				if line == "SCAN messages" || strings.Contains(line, "TEMP B-TREE") {
					t.Errorf("plan %q: %s", plan, line)
				}
			}
		})
	}
}

// lifecycle puts seven messages through their states and returns their IDs and the
// Stats they should give: 0 sent, 1 delivered, 2 undeliverable, 3 queued again to
// retry in an hour, 4 failed, 5 sending under a minute's lease, 6 queued.
func lifecycle(t *testing.T, db *store.DB, o *Outbox, c *clock) ([]int64, map[string]int64) {
	t.Helper()
	var ms []Message
	for i := range 7 {
		m := sms(fmt.Sprintf("2547000000%02d", i), "hi")
		m.RequestReceipt = true
		ms = append(ms, m)
	}
	ids := put(t, db, Enqueue, ms...)
	claimed := claim(t, o, 6, time.Minute) // ids[6] stays queued
	if len(claimed) != 6 {
		t.Fatalf("claimed %d, want 6", len(claimed))
	}
	for i, id := range ids[:3] {
		if err := o.MarkSent(ctx, askedReceipts(id), "carrier-a", []string{fmt.Sprint("p", i)}); err != nil {
			t.Fatal(err)
		}
	}
	for part, status := range map[string]string{"p1": "DELIVRD", "p2": "UNDELIV"} {
		if _, _, err := o.Receipt(ctx, "carrier-a", part, status); err != nil {
			t.Fatal(err)
		}
	}
	if err := o.Retry(ctx, ids[3], "throttled", c.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if err := o.Fail(ctx, ids[4], "invalid destination"); err != nil {
		t.Fatal(err)
	}
	return ids, map[string]int64{StateQueued: 2, StateSending: 1, StateSent: 1, StateDelivered: 1, StateUndeliverable: 1, StateFailed: 1}
}

// unsentOf is the part of stats that Unsent reports.
func unsentOf(stats map[string]int64) map[string]int64 {
	return map[string]int64{StateQueued: stats[StateQueued], StateSending: stats[StateSending], StateFailed: stats[StateFailed]}
}

// dueEntries is the number of entries in messages_due.
func dueEntries(t *testing.T, db *store.DB) int {
	t.Helper()
	return rows(t, db, `SELECT count(*) FROM messages INDEXED BY messages_due WHERE `+due)
}

// messages_due holds the queued and sending messages alone, and Unsent counts them and
// the failed ones as Stats does.
func TestUnsentCountsWhatIsLeftToSend(t *testing.T) {
	db, c := mustOpen(t), newClock()
	o := New(db, c.Now)
	if got, err := o.Unsent(ctx); err != nil || !reflect.DeepEqual(got, map[string]int64{StateQueued: 0, StateSending: 0, StateFailed: 0}) {
		t.Fatalf("empty outbox: Unsent = %v, %v", got, err)
	}
	_, want := lifecycle(t, db, o, c)
	stats, err := o.Stats(ctx)
	if err != nil || !reflect.DeepEqual(stats, want) {
		t.Fatalf("Stats = %v, %v; want %v", stats, err, want)
	}
	got, err := o.Unsent(ctx)
	if err != nil || !reflect.DeepEqual(got, unsentOf(want)) {
		t.Fatalf("Unsent = %v, %v; want %v", got, err, unsentOf(want))
	}
	if n := dueEntries(t, db); n != 3 {
		t.Fatalf("messages_due holds %d entries, want 3 (2 queued, 1 sending)", n)
	}
	if n, err := o.ReleaseClaims(ctx); err != nil || n != 1 {
		t.Fatalf("ReleaseClaims = %d, %v; want 1", n, err)
	}
	if got, _ := o.Unsent(ctx); got[StateQueued] != 3 || got[StateSending] != 0 || got[StateFailed] != 1 {
		t.Fatalf("after ReleaseClaims: Unsent = %v", got)
	}
}

// A database of the outbox's third migration upgrades: messages_due is rebuilt with
// the unsent messages alone, and they are claimed, in order, as before.
func TestDueIndexUpgrade(t *testing.T) {
	path := filepath.Join(t.TempDir(), "outbox.db")
	v3 := store.Schema{Component: Schema.Component, Migrations: Schema.Migrations[:3]}
	db, err := store.Open(path, store.Options{}, v3)
	if err != nil {
		t.Fatal(err)
	}
	c := newClock()
	ids, want := lifecycle(t, db, New(db, c.Now), c)
	db.Close()

	db, err = store.Open(path, store.Options{}, Schema)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	o := New(db, c.Now)
	if got, err := o.Unsent(ctx); err != nil || !reflect.DeepEqual(got, unsentOf(want)) {
		t.Fatalf("Unsent = %v, %v; want %v", got, err, unsentOf(want))
	}
	if n := dueEntries(t, db); n != 3 {
		t.Fatalf("messages_due holds %d entries, want 3", n)
	}
	var ok string
	if err := db.Reader().QueryRow(`PRAGMA integrity_check`).Scan(&ok); err != nil || ok != "ok" {
		t.Fatalf("integrity_check = %q, %v", ok, err)
	}
	// An hour on, the retry is due and the lease has run out: the queued message (due
	// since it was written), then the sending one, then the retry, by due time.
	c.Advance(time.Hour)
	for _, id := range []int64{ids[6], ids[5], ids[3]} {
		if got := claim(t, o, 1, time.Minute); len(got) != 1 || got[0].ID != id {
			t.Fatalf("claimed %v, want %d", got, id)
		}
	}
	if got := claim(t, o, 10, time.Minute); len(got) != 0 {
		t.Fatalf("claimed %v, want none", got)
	}
}
