package outbox

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/payswitch/payswitch/internal/dbtest"

	"github.com/payswitch/payswitch/internal/pgtest"
	"github.com/payswitch/payswitch/store"
)

var ctx = context.Background()

// clock is a test clock: time moves only when the test says so.
type clock struct {
	mu sync.Mutex // guards t
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func newClock() *clock { return &clock{t: time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)} }

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

// driverOf is the driver of the pgtest.Both subtest tb is, or runs inside.
var driverOf = dbtest.Dialect

// mustOpen opens a new database of tb's driver (driverOf) with the outbox's schema.
func mustOpen(tb testing.TB) *store.DB {
	tb.Helper()
	return dbtest.Open(tb, store.Options{}, Schema)
}

// openNodes opens n nodes on one new database of tb's driver (dbtest.Nodes).
func openNodes(tb testing.TB, n int) []*store.DB { return dbtest.Nodes(tb, n, store.Options{}, Schema) }

func sms(to, text string) Message {
	return Message{Kind: KindSMS, To: to, From: "22333", Text: text, PaymentID: "PAYAAAAAAA", Purpose: "reply"}
}

// put writes ms in one transaction through enq (Enqueue or an Outbox's method).
func put(tb testing.TB, db *store.DB, enq func(context.Context, store.Tx, Message) (int64, error), ms ...Message) []int64 {
	tb.Helper()
	var ids []int64
	err := db.Write(ctx, func(tx store.Tx) error {
		ids = nil
		for _, m := range ms {
			id, err := enq(ctx, tx, m)
			if err != nil {
				return err
			}
			ids = append(ids, id)
		}
		return nil
	})
	if err != nil {
		tb.Fatal(err)
	}
	return ids
}

// askedReceipts is how a worker names message id, an SMS that asked for delivery
// receipts, to MarkSent.
func askedReceipts(id int64) Message { return Message{ID: id, Kind: KindSMS, RequestReceipt: true} }

func claim(tb testing.TB, o *Outbox, limit int, lease time.Duration) []Message {
	tb.Helper()
	ms, err := o.Claim(ctx, KindSMS, limit, lease)
	if err != nil {
		tb.Fatal(err)
	}
	return ms
}

func ids(ms []Message) []int64 {
	var out []int64
	for _, m := range ms {
		out = append(out, m.ID)
	}
	return out
}

func get(tb testing.TB, o *Outbox, id int64) Message {
	tb.Helper()
	m, err := o.Get(ctx, id)
	if err != nil {
		tb.Fatal(err)
	}
	return m
}

func TestEnqueueRolledBackLeavesNothing(t *testing.T) {
	pgtest.Both(t, func(t *testing.T) {
		db := mustOpen(t)
		o := New(db, newClock().Now)
		errAbort := errors.New("abort")
		err := db.Write(ctx, func(tx store.Tx) error {
			if _, err := Enqueue(ctx, tx, sms("254700000001", "hello")); err != nil {
				return err
			}
			return errAbort
		})
		if !errors.Is(err, errAbort) {
			t.Fatal(err)
		}
		if ms, err := o.List(ctx, "", 10); err != nil || len(ms) != 0 {
			t.Fatalf("after rollback: %d messages, %v; want none", len(ms), err)
		}
		if ms := claim(t, o, 10, time.Minute); len(ms) != 0 {
			t.Fatalf("claimed %d messages after rollback", len(ms))
		}
	})
}

func TestEnqueueValidates(t *testing.T) {
	pgtest.Both(t, func(t *testing.T) {
		db := mustOpen(t)
		for _, tc := range []struct {
			name string
			m    Message
		}{
			{"unknown kind", Message{Kind: "fax", To: "254700000001", Text: "x"}},
			{"no recipient", Message{Kind: KindSMS, Text: "x"}},
			{"recipient not a number", Message{Kind: KindSMS, To: "alice", Text: "x"}},
			{"recipient too long", Message{Kind: KindSMS, To: "2547000000010000000001", Text: "x"}},
			{"sms without text", Message{Kind: KindSMS, To: "254700000001"}},
		} {
			t.Run(tc.name, func(t *testing.T) {
				err := db.Write(ctx, func(tx store.Tx) error { _, err := Enqueue(ctx, tx, tc.m); return err })
				if !errors.Is(err, ErrInvalid) {
					t.Fatalf("err = %v, want ErrInvalid", err)
				}
			})
		}
		// A call needs no text, and an empty kind means SMS.
		o := New(db, nil)
		got := put(t, db, Enqueue, Message{Kind: KindCall, To: "+254700000900", Purpose: "merchant_notice"},
			Message{To: "254700000001", Text: "hi"})
		if m := get(t, o, got[1]); m.Kind != KindSMS {
			t.Fatalf("empty kind stored as %q, want sms", m.Kind)
		}
	})
}

func TestRoundTripAndMeta(t *testing.T) {
	pgtest.Both(t, func(t *testing.T) {
		db := mustOpen(t)
		o := New(db, newClock().Now)
		created := time.Date(2026, 3, 1, 9, 59, 0, 123000, time.UTC)
		in := Message{Kind: KindSMS, To: "254700000001", From: "22333", Text: "Ksh 1,500.00 ✓", PaymentID: "PAYAAAAAAA",
			Purpose: "ussd", Meta: map[string]string{"session": "ATU_1", "op": "continue"}, RequestReceipt: true, CreatedAt: created}
		plain := sms("254700000002", "no meta")
		plain.Meta = map[string]string{}
		id := put(t, db, Enqueue, in, plain)
		got := get(t, o, id[0])
		want := in
		want.ID, want.State = id[0], StateQueued
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("round trip:\n got %+v\nwant %+v", got, want)
		}
		if m := get(t, o, id[1]); m.Meta != nil {
			t.Fatalf("empty meta read back as %#v, want nil", m.Meta)
		}
		if _, err := o.Get(ctx, 999); !errors.Is(err, ErrNotFound) {
			t.Fatalf("Get(999): err = %v, want ErrNotFound", err)
		}
	})
}

func TestClaimMarksSendingOldestFirst(t *testing.T) {
	pgtest.Both(t, func(t *testing.T) {
		db, c := mustOpen(t), newClock()
		o := New(db, c.Now)
		all := put(t, db, Enqueue, sms("254700000001", "one"), sms("254700000002", "two"), sms("254700000003", "three"))
		put(t, db, Enqueue, Message{Kind: KindCall, To: "254700000900"})
		later := sms("254700000004", "later")
		later.NextAttemptAt = c.Now().Add(time.Minute)
		put(t, db, Enqueue, later)

		first := claim(t, o, 2, 30*time.Second)
		if !reflect.DeepEqual(ids(first), all[:2]) {
			t.Fatalf("first claim got %v, want %v", ids(first), all[:2])
		}
		for _, m := range first {
			if m.State != StateSending || m.Attempts != 1 || !m.NextAttemptAt.Equal(c.Now().Add(30*time.Second)) {
				t.Fatalf("claimed message %+v: want sending, attempt 1, lease deadline", m)
			}
		}
		// Only sms, only due, only not already leased.
		if rest := claim(t, o, 10, 30*time.Second); !reflect.DeepEqual(ids(rest), all[2:]) {
			t.Fatalf("second claim got %v, want %v", ids(rest), all[2:])
		}
		if calls, err := o.Claim(ctx, KindCall, 10, time.Second); err != nil || len(calls) != 1 || calls[0].Kind != KindCall {
			t.Fatalf("call claim: %v, %v", calls, err)
		}
		c.Advance(time.Minute)
		got := claim(t, o, 10, 2*time.Minute) // "later" is due; the others' leases ran out too
		if len(got) != 4 || got[3].Text != "later" {
			t.Fatalf("after a minute claimed %v", ids(got))
		}
		if _, err := o.Claim(ctx, KindSMS, 1, 0); err == nil {
			t.Fatal("claim with no lease succeeded")
		}
	})
}

func TestConcurrentClaimsAreExclusive(t *testing.T) {
	pgtest.Both(t, func(t *testing.T) {
		db := mustOpen(t)
		o := New(db, newClock().Now)
		const n = 300
		var batch []Message
		for i := range n {
			batch = append(batch, sms(fmt.Sprintf("2547%08d", i), "hi"))
		}
		put(t, db, Enqueue, batch...)
		var (
			mu    sync.Mutex // guards seen
			seen  = map[int64]int{}
			wg    sync.WaitGroup
			errs  = make(chan error, 8)
			total int
		)
		for range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					ms, err := o.Claim(ctx, KindSMS, 7, time.Hour)
					if err != nil {
						errs <- err
						return
					}
					if len(ms) == 0 {
						return
					}
					mu.Lock()
					for _, m := range ms {
						seen[m.ID]++
						total++
					}
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
		if total != n || len(seen) != n {
			t.Fatalf("claimed %d messages, %d distinct; want %d each", total, len(seen), n)
		}
	})
}

func TestLeaseExpiryRecoversCrashedWorker(t *testing.T) {
	pgtest.Both(t, func(t *testing.T) {
		// restart is the switch starting again after the worker died: the same file on
		// SQLite, another node of the same database on PostgreSQL.
		var db *store.DB
		var restart func() *store.DB
		if driverOf(t) == store.Postgres {
			nodes := openNodes(t, 2)
			db, restart = nodes[0], func() *store.DB { return nodes[1] }
		} else {
			path := filepath.Join(t.TempDir(), "outbox.db")
			var err error
			if db, err = store.Open(path, store.Options{}, Schema); err != nil {
				t.Fatal(err)
			}
			restart = func() *store.DB {
				db, err := store.Open(path, store.Options{}, Schema)
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { db.Close() })
				return db
			}
		}
		c := newClock()
		o := New(db, c.Now)
		id := put(t, db, Enqueue, sms("254700000001", "your receipt"))[0]
		if got := claim(t, o, 10, time.Minute); len(got) != 1 {
			t.Fatalf("claimed %d, want 1", len(got))
		}
		// The worker dies holding the lease; the switch restarts.
		db.Close()
		o = New(restart(), c.Now)
		c.Advance(time.Minute - time.Microsecond)
		if got := claim(t, o, 10, time.Minute); len(got) != 0 {
			t.Fatalf("claimed %v while the lease holds", ids(got))
		}
		c.Advance(time.Microsecond)
		got := claim(t, o, 10, time.Minute)
		if len(got) != 1 || got[0].ID != id || got[0].Attempts != 2 {
			t.Fatalf("after the lease: %+v, want message %d on attempt 2", got, id)
		}
	})
}

func TestRetryAndFail(t *testing.T) {
	pgtest.Both(t, func(t *testing.T) {
		db, c := mustOpen(t), newClock()
		o := New(db, c.Now)
		msgs := put(t, db, Enqueue, sms("254700000001", "a"), sms("254700000002", "b"), sms("254700000003", "c"))
		a, b, cc := msgs[0], msgs[1], msgs[2]
		if err := o.Retry(ctx, a, "not claimed", time.Time{}); !errors.Is(err, ErrState) {
			t.Fatalf("retry of a queued message: err = %v, want ErrState", err)
		}
		claim(t, o, 10, time.Minute)
		at := c.Now().Add(10 * time.Second)
		if err := o.Retry(ctx, a, "throttled", at); err != nil {
			t.Fatal(err)
		}
		if m := get(t, o, a); m.State != StateQueued || !m.NextAttemptAt.Equal(at) || m.LastError != "throttled" {
			t.Fatalf("after Retry: %+v", m)
		}
		if err := o.Retry(ctx, b, "timeout", time.Time{}); err != nil {
			t.Fatal(err)
		}
		if m := get(t, o, b); m.NextAttemptAt.Before(c.Now().Add(500*time.Millisecond)) || m.NextAttemptAt.After(c.Now().Add(time.Second)) {
			t.Fatalf("default retry after attempt 1 at %v, want within Backoff(1) of %v", m.NextAttemptAt, c.Now())
		}
		if got := claim(t, o, 10, time.Minute); len(got) != 0 {
			t.Fatalf("claimed %v before the retry time", ids(got))
		}
		c.Advance(10 * time.Second)
		if got := claim(t, o, 10, time.Minute); !reflect.DeepEqual(ids(got), []int64{a, b}) || got[0].Attempts != 2 {
			t.Fatalf("after the retry time claimed %+v", got)
		}
		if err := o.Fail(ctx, cc, "invalid destination"); err != nil {
			t.Fatal(err)
		}
		if m := get(t, o, cc); m.State != StateFailed || m.LastError != "invalid destination" {
			t.Fatalf("after Fail: %+v", m)
		}
		if err := o.Fail(ctx, cc, "again"); !errors.Is(err, ErrState) {
			t.Fatalf("second Fail: err = %v, want ErrState", err)
		}
		if err := o.Retry(ctx, 999, "", time.Time{}); !errors.Is(err, ErrNotFound) {
			t.Fatalf("Retry(999): err = %v, want ErrNotFound", err)
		}
		c.Advance(time.Hour)
		if got := claim(t, o, 10, time.Minute); len(got) != 2 {
			t.Fatalf("a failed message was claimed again: %v", ids(got))
		}
	})
}

func TestBackoff(t *testing.T) {
	for _, tc := range []struct {
		attempt int
		lo, hi  time.Duration
	}{
		{0, 500 * time.Millisecond, time.Second},
		{1, 500 * time.Millisecond, time.Second},
		{2, time.Second, 2 * time.Second},
		{5, 8 * time.Second, 16 * time.Second},
		{9, 128 * time.Second, 256 * time.Second},
		{10, 150 * time.Second, 5 * time.Minute},
		{1000, 150 * time.Second, 5 * time.Minute},
	} {
		t.Run(fmt.Sprint(tc.attempt), func(t *testing.T) {
			seen := map[time.Duration]bool{}
			for range 200 {
				d := Backoff(tc.attempt)
				if d < tc.lo || d > tc.hi {
					t.Fatalf("Backoff(%d) = %v, want within [%v, %v]", tc.attempt, d, tc.lo, tc.hi)
				}
				seen[d] = true
			}
			if len(seen) < 10 {
				t.Fatalf("Backoff(%d) took only %d values in 200 calls: no jitter", tc.attempt, len(seen))
			}
		})
	}
}

func TestReceipts(t *testing.T) {
	pgtest.Both(t, func(t *testing.T) {
		db, c := mustOpen(t), newClock()
		o := New(db, c.Now)
		queued := []Message{sms("254700000001", "a long message in three parts"), sms("254700000002", "b"), sms("254700000003", "c")}
		for i := range queued {
			queued[i].RequestReceipt = true
		}
		msgs := put(t, db, Enqueue, queued...)
		claim(t, o, 10, time.Minute)
		for _, tc := range []struct {
			id   int64
			link string
			ids  []string
		}{
			{msgs[0], "carrier-a", []string{"p1", "p2", "p3"}},
			{msgs[1], "carrier-b", []string{"p1"}}, // the same SMSC id on another link is another part
			{msgs[2], "carrier-a", []string{"x9"}},
		} {
			if err := o.MarkSent(ctx, askedReceipts(tc.id), tc.link, tc.ids); err != nil {
				t.Fatal(err)
			}
		}
		if m := get(t, o, msgs[0]); m.State != StateSent || m.Link != "carrier-a" || !reflect.DeepEqual(m.MessageIDs, []string{"p1", "p2", "p3"}) {
			t.Fatalf("after MarkSent: %+v", m)
		}
		steps := []struct {
			name, link, id, status string
			wantID                 int64
			wantState              string
		}{
			{"first part delivered", "carrier-a", "p1", "DELIVRD", msgs[0], StateSent},
			{"progress report", "carrier-a", "p2", "ENROUTE", msgs[0], StateSent},
			{"second part delivered", "carrier-a", "p2", "delivrd", msgs[0], StateSent},
			{"last part delivered", "carrier-a", "p3", "DELIVRD", msgs[0], StateDelivered},
			{"other link", "carrier-b", "p1", "UNDELIV", msgs[1], StateUndeliverable},
			{"the last receipt for a part wins", "carrier-b", "p1", "DELIVRD", msgs[1], StateDelivered},
			{"expired", "carrier-a", "x9", "EXPIRED", msgs[2], StateUndeliverable},
		}
		for _, s := range steps {
			t.Run(s.name, func(t *testing.T) {
				m, ok, err := o.Receipt(ctx, s.link, s.id, s.status)
				if err != nil || !ok {
					t.Fatalf("Receipt: ok %v, err %v", ok, err)
				}
				if m.ID != s.wantID || m.State != s.wantState {
					t.Fatalf("message %d is %s, want %d %s", m.ID, m.State, s.wantID, s.wantState)
				}
			})
		}
		if _, ok, err := o.Receipt(ctx, "carrier-c", "p1", "DELIVRD"); ok || err != nil {
			t.Fatalf("unknown part: ok %v, err %v; want false, nil", ok, err)
		}
	})
}

func TestReceiptBeforeMarkSent(t *testing.T) {
	pgtest.Both(t, func(t *testing.T) {
		db, c := mustOpen(t), newClock()
		o := New(db, c.Now)
		m := sms("254700000001", "hi")
		m.RequestReceipt = true
		id := put(t, db, Enqueue, m)[0]
		claim(t, o, 1, time.Minute)
		// The SMSC's deliver_sm overtakes the worker's MarkSent.
		if _, ok, err := o.Receipt(ctx, "carrier-a", "abc", "DELIVRD"); ok || err != nil {
			t.Fatalf("early receipt: ok %v, err %v; want false, nil", ok, err)
		}
		if err := o.MarkSent(ctx, askedReceipts(id), "carrier-a", []string{"abc"}); err != nil {
			t.Fatal(err)
		}
		if m := get(t, o, id); m.State != StateDelivered {
			t.Fatalf("after MarkSent the early receipt gives %s, want delivered", m.State)
		}
	})
}

func TestMarkSentAfterLeaseLost(t *testing.T) {
	pgtest.Both(t, func(t *testing.T) {
		db, c := mustOpen(t), newClock()
		o := New(db, c.Now)
		id := put(t, db, Enqueue, sms("254700000001", "hi"))[0]
		claim(t, o, 1, time.Minute)
		c.Advance(time.Minute)
		claim(t, o, 1, time.Minute) // a second worker takes it over
		if err := o.MarkSent(ctx, Message{ID: id}, "carrier-a", []string{"m1"}); err != nil {
			t.Fatal(err)
		}
		if err := o.MarkSent(ctx, Message{ID: id}, "carrier-a", []string{"m2"}); err != nil {
			t.Fatal(err)
		}
		m := get(t, o, id)
		if m.State != StateSent || !reflect.DeepEqual(m.MessageIDs, []string{"m1", "m2"}) {
			t.Fatalf("after two MarkSents: %+v", m)
		}
		if err := o.Retry(ctx, id, "late failure", time.Time{}); !errors.Is(err, ErrState) {
			t.Fatalf("Retry of a sent message: err = %v, want ErrState", err)
		}
		if err := o.MarkSent(ctx, Message{ID: 999}, "carrier-a", nil); !errors.Is(err, ErrNotFound) {
			t.Fatalf("MarkSent(999): err = %v, want ErrNotFound", err)
		}
	})
}

func TestKickWaitCoalesces(t *testing.T) {
	o := New(mustOpen(t), nil)
	select {
	case <-o.Wait():
		t.Fatal("Wait signalled before any Kick")
	default:
	}
	for range 5 {
		o.Kick() // never blocks, even with nobody waiting
	}
	select {
	case <-o.Wait():
	default:
		t.Fatal("Wait not signalled after Kick")
	}
	select {
	case <-o.Wait():
		t.Fatal("five Kicks gave two signals")
	default:
	}
	done := make(chan struct{})
	go func() { <-o.Wait(); close(done) }()
	o.Kick()
	<-done
}

func TestListAndStats(t *testing.T) {
	pgtest.Both(t, func(t *testing.T) {
		db, c := mustOpen(t), newClock()
		o := New(db, c.Now)
		msgs := put(t, db, Enqueue, sms("254700000001", "one"), sms("254700000002", "other"), sms("254700000001", "two"))
		got, err := o.List(ctx, "254700000001", 10)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(ids(got), []int64{msgs[2], msgs[0]}) {
			t.Fatalf("List = %v, want newest first %v", ids(got), []int64{msgs[2], msgs[0]})
		}
		if got, _ := o.List(ctx, "", 2); len(got) != 2 || got[0].ID != msgs[2] {
			t.Fatalf("List all, limit 2 = %v", ids(got))
		}
		claim(t, o, 1, time.Minute)
		o.MarkSent(ctx, Message{ID: msgs[0]}, "carrier-a", []string{"1"})
		stats, err := o.Stats(ctx)
		if err != nil {
			t.Fatal(err)
		}
		want := map[string]int64{"queued": 2, "sending": 0, "sent": 1, "delivered": 0, "undeliverable": 0, "failed": 0}
		if !reflect.DeepEqual(stats, want) {
			t.Fatalf("Stats = %v, want %v", stats, want)
		}
	})
}

func TestSealedOTPNeverStoredInClear(t *testing.T) {
	path := filepath.Join(t.TempDir(), "outbox.db")
	db, err := store.Open(path, store.Options{}, Schema)
	if err != nil {
		t.Fatal(err)
	}
	key := []byte("0123456789abcdef0123456789abcdef")
	o, err := NewSealed(db, newClock().Now, key)
	if err != nil {
		t.Fatal(err)
	}
	const text = "Your code is 4827159306. Never share it."
	otpMsg := sms("254700000001", text)
	otpMsg.Purpose = "otp"
	msgs := put(t, db, o.Enqueue, otpMsg, sms("254700000001", "Balance: KES 10.00"))
	if m := get(t, o, msgs[0]); m.Text != text {
		t.Fatalf("Get opens to %q, want %q", m.Text, text)
	}
	if m := get(t, o, msgs[1]); m.Text != "Balance: KES 10.00" {
		t.Fatalf("a non-OTP text reads %q", m.Text)
	}
	var raw string
	if err := db.Reader().QueryRow(`SELECT text FROM messages WHERE id = ?`, msgs[0]).Scan(&raw); err != nil {
		t.Fatal(err)
	}
	if bytes.Contains([]byte(raw), []byte("4827159306")) {
		t.Fatalf("stored text %q holds the code", raw)
	}
	// An outbox without the key shows a placeholder and cannot send it.
	if m := get(t, New(db, nil), msgs[0]); m.Text != "[sealed]" {
		t.Fatalf("without the key Get reads %q, want [sealed]", m.Text)
	}
	other, _ := NewSealed(db, newClock().Now, []byte("another key, another key, 32 b!"))
	if got := claim(t, other, 10, time.Minute); len(got) != 1 || got[0].ID != msgs[1] {
		t.Fatalf("wrong key claimed %v, want only the unsealed message", ids(got))
	}
	if m := get(t, o, msgs[0]); m.State != StateFailed || !strings.Contains(m.LastError, "cannot open sealed text") {
		t.Fatalf("unopenable message: %+v, want failed with a reason", m)
	}
	db.Close()
	for _, name := range []string{path, path + "-wal"} {
		data, err := os.ReadFile(name)
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			t.Fatal(err)
		}
		if bytes.Contains(data, []byte("4827159306")) {
			t.Fatalf("%s holds the code in clear", name)
		}
	}
}

func TestSealedClaimOpens(t *testing.T) {
	pgtest.Both(t, func(t *testing.T) {
		db := mustOpen(t)
		o, err := NewSealed(db, newClock().Now, []byte("0123456789abcdef"))
		if err != nil {
			t.Fatal(err)
		}
		m := sms("254700000001", "code 123456")
		m.Purpose = "otp"
		put(t, db, o.Enqueue, m)
		got := claim(t, o, 1, time.Minute)
		if len(got) != 1 || got[0].Text != "code 123456" {
			t.Fatalf("claimed %+v, want the opened text", got)
		}
		if _, err := NewSealed(db, nil, []byte("short")); err == nil {
			t.Fatal("NewSealed accepted a 5-byte key")
		}
	})
}

func BenchmarkEnqueueClaimSent(b *testing.B) {
	db := mustOpen(b)
	o := New(db, nil)
	for b.Loop() {
		put(b, db, Enqueue, sms("254700000001", "Confirmed. PAYAAAAAAA KES 1,500.00 paid to Mama Mboga."))
		ms := claim(b, o, 1, time.Minute)
		if err := o.MarkSent(ctx, ms[0], "carrier-a", []string{"x"}); err != nil {
			b.Fatal(err)
		}
	}
}

func TestReleaseClaimsAfterACrash(t *testing.T) {
	db := mustOpen(t)
	o := New(db, nil)
	put(t, db, Enqueue, sms("254700000001", "hello"))
	ms, err := o.Claim(context.Background(), KindSMS, 10, time.Hour)
	if err != nil || len(ms) != 1 {
		t.Fatalf("claim: %v %v", ms, err)
	}
	// The worker died holding the claim; a fresh process must not wait an hour.
	if again, _ := o.Claim(context.Background(), KindSMS, 10, time.Hour); len(again) != 0 {
		t.Fatal("claimed twice while the lease holds")
	}
	n, err := o.ReleaseClaims(context.Background())
	if err != nil || n != 1 {
		t.Fatalf("release: %d %v", n, err)
	}
	again, err := o.Claim(context.Background(), KindSMS, 10, time.Hour)
	if err != nil || len(again) != 1 || again[0].ID != ms[0].ID || again[0].Attempts != 2 {
		t.Fatalf("after release: %+v %v", again, err)
	}
}

func TestClaimChunks(t *testing.T) {
	tests := []struct {
		limit int
		want  []int
	}{
		{1, []int{1}},
		{2, []int{2}},
		{7, []int{4, 2, 1}},
		{100, []int{64, 32, 4}},
		{1024, []int{1024}},
		{2500, []int{1024, 1024, 256, 128, 64, 4}},
	}
	for _, tc := range tests {
		t.Run(fmt.Sprint(tc.limit), func(t *testing.T) {
			if got := claimChunks(tc.limit); !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("claimChunks(%d) = %v, want %v", tc.limit, got, tc.want)
			}
		})
	}
}

// Claim takes the oldest due messages up to its limit, whatever the limit, in pieces
// when the limit is not a power of two.
func TestClaimLimits(t *testing.T) {
	pgtest.Both(t, func(t *testing.T) {
		db, c := mustOpen(t), newClock()
		o := New(db, c.Now)
		var batch []Message
		for i := range 300 {
			batch = append(batch, sms(fmt.Sprintf("2547%08d", i), "hi"))
		}
		all := put(t, db, Enqueue, batch...)
		next := 0
		for _, tc := range []struct {
			limit, want int
		}{{1, 1}, {2, 2}, {3, 3}, {100, 100}, {7, 7}, {1000, 187}, {5, 0}} {
			t.Run(fmt.Sprint(tc.limit), func(t *testing.T) {
				got := claim(t, o, tc.limit, time.Hour)
				if !reflect.DeepEqual(ids(got), all[next:next+tc.want]) && tc.want > 0 {
					t.Fatalf("claimed %v, want %v", ids(got), all[next:next+tc.want])
				}
				if len(got) != tc.want {
					t.Fatalf("claimed %d, want %d", len(got), tc.want)
				}
				for _, m := range got {
					if m.State != StateSending || m.Attempts != 1 || m.Text != "hi" {
						t.Fatalf("claimed %+v", m)
					}
				}
				next += tc.want
			})
		}
	})
}

func TestCallsListsANumbersCallsOnly(t *testing.T) {
	pgtest.Both(t, func(t *testing.T) {
		db := mustOpen(t)
		o := New(db, newClock().Now)
		const alice, bob = "254700000001", "254700000002"
		id := put(t, db, Enqueue,
			Message{Kind: KindCall, To: alice, Purpose: "payer_confirm"},
			sms(alice, "an SMS to the same number"),
			Message{Kind: KindCall, To: bob, Purpose: "payer_confirm"},
			Message{Kind: KindCall, To: alice, Purpose: "merchant_notice"})
		for _, tc := range []struct {
			name  string
			to    string
			limit int
			want  []int64
		}{
			{"newest first, no SMS", alice, 10, []int64{id[3], id[0]}},
			{"limited", alice, 1, []int64{id[3]}},
			{"another number", bob, 10, []int64{id[2]}},
			{"nobody's", "254700000003", 10, nil},
		} {
			t.Run(tc.name, func(t *testing.T) {
				got, err := o.Calls(ctx, tc.to, tc.limit)
				if err != nil {
					t.Fatal(err)
				}
				if !reflect.DeepEqual(ids(got), tc.want) {
					t.Errorf("Calls(%s, %d) = %v, want %v", tc.to, tc.limit, ids(got), tc.want)
				}
			})
		}
	})
}
