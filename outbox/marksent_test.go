package outbox

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/payswitch/payswitch/internal/pgtest"

	"github.com/payswitch/payswitch/store"
)

// rows counts the rows of query (a count(*)) as committed.
func rows(t *testing.T, db *store.DB, query string, args ...any) int {
	t.Helper()
	var n int
	if err := db.Reader().QueryRowContext(ctx, query, args...).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// MarkSent records parts, and applies early receipts, only for messages that can get
// delivery receipts: calls and SMS that asked for them. Every message keeps its IDs.
func TestMarkSentRecordsPartsOnlyForReceipts(t *testing.T) {
	pgtest.Both(t, func(t *testing.T) {
		type receipt struct {
			part, status string
			found        bool   // the part is known (else the receipt waits in early_receipts)
			state        string // the message's stored state after it
		}
		noReceipts := sms("254700000001", "Mama Mboga received KES 1,500.00")
		noReceipts.Purpose = "notice"
		asked := sms("254700000002", "Confirmed. PAYAAAAAAA KES 1,500.00 paid.")
		asked.RequestReceipt = true
		call := Message{Kind: KindCall, To: "254700000003", PaymentID: "PAYAAAAAAA", Purpose: "merchant_notice"}
		tests := []struct {
			name  string
			m     Message
			wrong bool      // the worker's Message says the opposite of m about receipts
			early []receipt // before the first MarkSent
			sent  [][]string
			after []receipt
			// At the end: the message's state and IDs, its parts and the receipts left
			// waiting in early_receipts.
			state string
			ids   []string
			parts int
			kept  int
		}{
			{
				// What it costs: an SMSC that reports on every SMS gets its report on this
				// one kept as unknown for a day, and the message stays sent.
				name: "sms without receipts: IDs kept, no parts; a receipt sent anyway is unknown",
				m:    noReceipts, sent: [][]string{{"a", "b"}},
				after: []receipt{{part: "a", status: "DELIVRD", state: StateSent}},
				state: StateSent, ids: []string{"a", "b"}, parts: 0, kept: 1,
			},
			{
				name: "sms without receipts sent twice: both MarkSents' IDs, no parts",
				m:    noReceipts, sent: [][]string{{"a"}, {"b", "a"}},
				state: StateSent, ids: []string{"a", "b"}, parts: 0, kept: 0,
			},
			{
				name: "sms without receipts: an early receipt is not applied and stays unknown",
				m:    noReceipts, early: []receipt{{part: "a", status: "UNDELIV", state: StateSending}},
				sent:  [][]string{{"a"}},
				state: StateSent, ids: []string{"a"}, parts: 0, kept: 1,
			},
			{
				name: "sms asking for receipts: delivered once every part is",
				m:    asked, sent: [][]string{{"a", "b"}},
				after: []receipt{
					{part: "a", status: "DELIVRD", found: true, state: StateSent},
					{part: "b", status: "DELIVRD", found: true, state: StateDelivered},
				},
				state: StateDelivered, ids: []string{"a", "b"}, parts: 2, kept: 0,
			},
			{
				name: "sms asking for receipts: undeliverable",
				m:    asked, sent: [][]string{{"a"}},
				after: []receipt{{part: "a", status: "UNDELIV", found: true, state: StateUndeliverable}},
				state: StateUndeliverable, ids: []string{"a"}, parts: 1, kept: 0,
			},
			{
				name: "sms asking for receipts: early receipts apply",
				m:    asked, early: []receipt{
					{part: "b", status: "DELIVRD", state: StateSending},
					{part: "a", status: "DELIVRD", state: StateSending},
				},
				sent:  [][]string{{"a", "b"}},
				state: StateDelivered, ids: []string{"a", "b"}, parts: 2, kept: 0,
			},
			{
				name: "sms asking for receipts, sent twice: both MarkSents' parts",
				m:    asked, sent: [][]string{{"a"}, {"b"}},
				after: []receipt{
					{part: "b", status: "DELIVRD", found: true, state: StateSent},
					{part: "a", status: "EXPIRED", found: true, state: StateUndeliverable},
				},
				state: StateUndeliverable, ids: []string{"a", "b"}, parts: 2, kept: 0,
			},
			{
				name: "call: parts recorded, a receipt settles it",
				m:    call, sent: [][]string{{"session-1"}},
				after: []receipt{{part: "session-1", status: "DELIVRD", found: true, state: StateDelivered}},
				state: StateDelivered, ids: []string{"session-1"}, parts: 1, kept: 0,
			},
			{
				name: "call: an early receipt applies",
				m:    call, early: []receipt{{part: "session-1", status: "REJECTD", state: StateSending}},
				sent:  [][]string{{"session-1"}},
				state: StateUndeliverable, ids: []string{"session-1"}, parts: 1, kept: 0,
			},
			{
				name: "the queued message decides: no receipts though the worker says so",
				m:    noReceipts, wrong: true, sent: [][]string{{"a"}},
				after: []receipt{{part: "a", status: "DELIVRD", state: StateSent}},
				state: StateSent, ids: []string{"a"}, parts: 0, kept: 1,
			},
			{
				name: "the queued message decides: receipts though the worker says none",
				m:    asked, wrong: true, early: []receipt{{part: "b", status: "DELIVRD", state: StateSending}},
				sent:  [][]string{{"a", "b"}},
				after: []receipt{{part: "a", status: "DELIVRD", found: true, state: StateDelivered}},
				state: StateDelivered, ids: []string{"a", "b"}, parts: 2, kept: 0,
			},
			{
				name: "the queued message decides: a call named by its ID alone",
				m:    call, wrong: true, sent: [][]string{{"session-1"}},
				after: []receipt{{part: "session-1", status: "UNDELIV", found: true, state: StateUndeliverable}},
				state: StateUndeliverable, ids: []string{"session-1"}, parts: 1, kept: 0,
			},
		}
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				db := mustOpen(t)
				o := New(db, newClock().Now)
				put(t, db, Enqueue, tc.m)
				ms, err := o.Claim(ctx, "", 1, time.Hour)
				if err != nil || len(ms) != 1 {
					t.Fatalf("claimed %d: %v", len(ms), err)
				}
				m := ms[0] // what a worker has, and passes MarkSent
				if tc.wrong {
					receipts := m.Kind == KindCall || m.RequestReceipt
					m = Message{ID: m.ID, RequestReceipt: !receipts}
				}
				apply := func(when string, rs []receipt) {
					t.Helper()
					for _, r := range rs {
						got, found, err := o.Receipt(ctx, "carrier-a", r.part, r.status)
						if err != nil || found != r.found {
							t.Fatalf("%s receipt %s %s: found %v, err %v; want found %v", when, r.part, r.status, found, err, r.found)
						}
						if found && (got.ID != m.ID || got.State != r.state) {
							t.Errorf("%s receipt %s %s returned message %d %s; want %d %s",
								when, r.part, r.status, got.ID, got.State, m.ID, r.state)
						}
						if stored := get(t, o, m.ID); stored.State != r.state {
							t.Errorf("%s receipt %s %s: message is %s, want %s", when, r.part, r.status, stored.State, r.state)
						}
					}
				}
				apply("early", tc.early)
				for _, ids := range tc.sent {
					if err := o.MarkSent(ctx, m, "carrier-a", ids); err != nil {
						t.Fatalf("MarkSent %v: %v", ids, err)
					}
				}
				apply("later", tc.after)
				got := get(t, o, m.ID)
				if got.State != tc.state || got.Link != "carrier-a" || !reflect.DeepEqual(got.MessageIDs, tc.ids) {
					t.Errorf("message is %s on %q with IDs %v; want %s on carrier-a with %v",
						got.State, got.Link, got.MessageIDs, tc.state, tc.ids)
				}
				if n := rows(t, db, `SELECT count(*) FROM message_parts WHERE outbox_id = ?`, m.ID); n != tc.parts {
					t.Errorf("%d parts recorded, want %d", n, tc.parts)
				}
				if n := rows(t, db, `SELECT count(*) FROM early_receipts`); n != tc.kept {
					t.Errorf("%d receipts waiting as unknown, want %d", n, tc.kept)
				}
			})
		}
	})
}

// TestMarkSentStatements pins how many statements MarkSent runs inside its store
// operation, as TestReceiptStatements does for receipts: a message that can get no
// receipt costs one, whatever its parts.
func TestMarkSentStatements(t *testing.T) {
	db, statements := statementLog(t)
	o := New(db, newClock().Now)
	none := sms("254700000001", "no receipts")
	asked := sms("254700000002", "receipts")
	asked.RequestReceipt = true
	ids := put(t, db, Enqueue, none, none, asked, asked, none, asked)
	claim(t, o, len(ids), time.Hour)
	for _, tc := range []struct {
		name  string
		m     Message
		parts []string
		want  int
	}{
		{"no receipts, two parts", Message{ID: ids[0], Kind: KindSMS}, []string{"n0.0", "n0.1"}, 1},
		// The message, then for each part the early receipts and the part.
		{"receipts, one part", askedReceipts(ids[2]), []string{"r2"}, 3},
		{"receipts, two parts", askedReceipts(ids[3]), []string{"r3.0", "r3.1"}, 5},
		// The first try, the message's IDs so far, the message.
		{"no receipts, second MarkSent", Message{ID: ids[0], Kind: KindSMS}, []string{"n0.2"}, 3},
		{"no receipts, the worker says otherwise", askedReceipts(ids[4]), []string{"n4"}, 3},
		{"receipts, the worker says otherwise", Message{ID: ids[5]}, []string{"r5"}, 5},
	} {
		got := statements(func() {
			if err := o.MarkSent(ctx, tc.m, "carrier-a", tc.parts); err != nil {
				t.Fatalf("%s: %v", tc.name, err)
			}
		})
		if n := len(got); n != tc.want {
			t.Errorf("%s: %d statements, want %d:\n%s", tc.name, n, tc.want, strings.Join(got, "\n"))
		}
	}
}

// An SMSC may answer with any bytes. Message IDs and stats that are not UTF-8 or hold a
// NUL are recorded on both drivers (PostgreSQL's text refused them, and the message was
// sent again when its lease ran out), and a receipt with the same bytes finds its part;
// an error text of such bytes is recorded readable.
func TestMarkSentAndReceiptTakeAnySMSCBytes(t *testing.T) {
	pgtest.Both(t, func(t *testing.T) {
		db := mustOpen(t)
		o := New(db, newClock().Now)
		ids := queue(t, db, 3, true)
		claim(t, o, 3, time.Hour)
		odd := []string{"\xff\xfe", "a\x00b"}
		for i, mid := range odd {
			if err := o.MarkSent(ctx, askedReceipts(ids[i]), "carrier-a", []string{mid}); err != nil {
				t.Fatalf("MarkSent %q: %v", mid, err)
			}
		}
		for i, mid := range odd {
			m, found, err := o.Receipt(ctx, "carrier-a", mid, "DELIVRD")
			if err != nil || !found || m.ID != ids[i] || m.State != StateDelivered {
				t.Errorf("receipt for %q: message %d %s, found %v, err %v; want %d delivered", mid, m.ID, m.State, found, err, ids[i])
			}
		}
		// A receipt that overtook its MarkSent, with a stat of odd bytes, waits and is
		// applied.
		if _, found, err := o.Receipt(ctx, "carrier-a", "c\xff", "EN\x00ROUTE\xff"); err != nil || found {
			t.Fatalf("early receipt: found %v, err %v", found, err)
		}
		if err := o.MarkSent(ctx, askedReceipts(ids[2]), "carrier-a", []string{"c\xff"}); err != nil {
			t.Fatal(err)
		}
		if got := get(t, o, ids[2]); got.State != StateSent || !reflect.DeepEqual(got.MessageIDs, []string{`"c\xff"`}) {
			t.Errorf("message 2: %s %q, want sent with its ID quoted", got.State, got.MessageIDs)
		}
		if left := rows(t, db, `SELECT count(*) FROM early_receipts`); left != 0 {
			t.Errorf("%d early receipts left, want the one applied", left)
		}

		more := queue(t, db, 1, false)
		claim(t, o, 1, time.Hour)
		if err := o.Retry(ctx, more[0], "refused: \xff\x00!", time.Time{}); err != nil {
			t.Fatalf("Retry: %v", err)
		}
		if got := get(t, o, more[0]); got.State != StateQueued || got.LastError != "refused: \ufffd!" {
			t.Errorf("retried: %s %q, want queued with the error readable", got.State, got.LastError)
		}
	})
}
