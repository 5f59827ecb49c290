package outbox

import (
	"bytes"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/payswitch/payswitch/internal/pgtest"
	"github.com/payswitch/payswitch/store"
)

// putThen writes ms in one transaction with EnqueueThen and, once it is durable, runs
// what each returned; it returns the IDs.
func putThen(tb testing.TB, db *store.DB, o *Outbox, ms ...Message) []int64 {
	tb.Helper()
	var put []int64
	var thens []func()
	err := db.Write(ctx, func(tx store.Tx) error {
		put, thens = nil, nil
		for _, m := range ms {
			id, then, err := o.EnqueueThen(ctx, tx, m)
			if err != nil {
				return err
			}
			put, thens = append(put, id), append(thens, then)
		}
		return nil
	})
	if err != nil {
		tb.Fatal(err)
	}
	for _, then := range thens {
		then()
	}
	return put
}

// While a worker takes fresh messages, an SMS queued with EnqueueThen is written leased
// to it (sending, first attempt, sealed when it carries a code) and handed over in
// memory, text in clear, once its write is durable: no claim finds it while its lease
// holds, and when the lease runs out (the worker died) a claim takes it as its second
// attempt.
func TestEnqueueThenHandsFreshSMSOver(t *testing.T) {
	db, c := mustOpen(t), newClock()
	o, err := NewSealed(db, c.Now, []byte("0123456789abcdef0123456789abcdef"))
	if err != nil {
		t.Fatal(err)
	}
	if !o.OpenFresh(30 * time.Second) {
		t.Fatal("OpenFresh refused on SQLite")
	}
	code := sms("254700000001", "Your code is 739104")
	code.Purpose, code.RequestReceipt = "otp", true
	code.Meta = map[string]string{"link": "a"}
	put := putThen(t, db, o, code, sms("254700000002", "hello"))
	select {
	case <-o.FreshReady():
	default:
		t.Fatal("no hand-over signalled")
	}
	got, spilled := o.TakeFresh(10)
	if len(spilled) != 0 || !slices.Equal(ids(got), put) {
		t.Fatalf("took %v (spilled %d), want %v", ids(got), len(spilled), put)
	}
	m := got[0]
	deadline := c.Now().Add(30 * time.Second)
	if m.Text != code.Text || m.State != StateSending || m.Attempts != 1 || !m.RequestReceipt ||
		m.Purpose != "otp" || m.Meta["link"] != "a" || !m.NextAttemptAt.Equal(deadline) {
		t.Fatalf("handed over %+v", m)
	}
	var raw, state string
	var attempts int
	var next int64
	if err := db.Reader().QueryRow(`SELECT text, state, attempts, next_attempt_at FROM messages WHERE id = ?`,
		put[0]).Scan(&raw, &state, &attempts, &next); err != nil {
		t.Fatal(err)
	}
	if bytes.Contains([]byte(raw), []byte("739104")) || state != StateSending || attempts != 1 ||
		next != deadline.UnixMicro() {
		t.Fatalf("stored text %q, state %s, attempts %d, lease %d", raw, state, attempts, next)
	}
	if again, _ := o.TakeFresh(10); len(again) != 0 {
		t.Fatalf("taken twice: %v", ids(again))
	}
	if ms := claim(t, o, 10, time.Minute); len(ms) != 0 {
		t.Fatalf("a claim took %v while the fresh lease holds", ids(ms))
	}
	c.Advance(31 * time.Second)
	ms := claim(t, o, 10, time.Minute)
	if !slices.Equal(ids(ms), put) || ms[0].Attempts != 2 || ms[0].Text != code.Text {
		t.Fatalf("after the lease a claim took %+v", ms)
	}
}

// Without a worker taking fresh messages, and on PostgreSQL, EnqueueThen queues as
// Enqueue does and returns Kick; so it does for calls and for messages due later.
func TestEnqueueThenQueuesWhenNothingIsHandedOver(t *testing.T) {
	pgtest.Both(t, func(t *testing.T) {
		db, c := mustOpen(t), newClock()
		o := New(db, c.Now)
		opened := o.OpenFresh(time.Minute)
		if opened == (driverOf(t) == store.Postgres) {
			t.Fatalf("OpenFresh = %v on %s", opened, driverOf(t))
		}
		call := Message{Kind: KindCall, To: "254700000003", Text: "code"}
		later := sms("254700000004", "later")
		later.NextAttemptAt = c.Now().Add(time.Minute)
		ms := []Message{call, later}
		if !opened {
			ms = append(ms, sms("254700000001", "hi"))
		}
		put := putThen(t, db, o, ms...)
		if got, _ := o.TakeFresh(10); len(got) != 0 {
			t.Fatalf("handed over %v", ids(got))
		}
		select {
		case <-o.Wait():
		default:
			t.Fatal("the worker was not kicked")
		}
		for _, id := range put {
			if m := get(t, o, id); m.State != StateQueued || m.Attempts != 0 {
				t.Fatalf("message %d is %s after %d attempts, want queued", id, m.State, m.Attempts)
			}
		}
	})
}

// Once closed, nothing more is handed over: CloseFresh returns what was handed and not
// taken, and a message queued afterwards is queued for the claims.
func TestCloseFreshReturnsWhatWasNotTaken(t *testing.T) {
	db, c := mustOpen(t), newClock()
	o := New(db, c.Now)
	o.OpenFresh(time.Minute)
	put := putThen(t, db, o, sms("254700000001", "one"), sms("254700000002", "two"))
	if got, _ := o.TakeFresh(1); !slices.Equal(ids(got), put[:1]) {
		t.Fatalf("took %v, want %v", ids(got), put[:1])
	}
	if left := o.CloseFresh(); !slices.Equal(ids(left), put[1:]) {
		t.Fatalf("CloseFresh returned %v, want %v", ids(left), put[1:])
	}
	after := putThen(t, db, o, sms("254700000003", "three"))
	if m := get(t, o, after[0]); m.State != StateQueued {
		t.Fatalf("queued after the close: %s", m.State)
	}
	if ms := claim(t, o, 10, time.Minute); !slices.Equal(ids(ms), after) {
		t.Fatalf("claimed %v, want %v", ids(ms), after)
	}
}

// A write that fails hands nothing over and leaves nothing behind.
func TestEnqueueThenRolledBackHandsNothing(t *testing.T) {
	db, c := mustOpen(t), newClock()
	o := New(db, c.Now)
	o.OpenFresh(time.Minute)
	boom := errors.New("boom")
	err := db.Write(ctx, func(tx store.Tx) error {
		if _, _, err := o.EnqueueThen(ctx, tx, sms("254700000001", "hi")); err != nil {
			return err
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatal(err)
	}
	if got, _ := o.TakeFresh(10); len(got) != 0 {
		t.Fatalf("handed over %v", ids(got))
	}
	if n := rows(t, db, `SELECT count(*) FROM messages`); n != 0 {
		t.Fatalf("%d messages left", n)
	}
}

// The hand-over holds at most maxFresh messages that the worker has not taken; the rest
// are spilled, for the worker to give back to the queue.
func TestFreshHandOverIsBounded(t *testing.T) {
	db, c := mustOpen(t), newClock()
	o := New(db, c.Now)
	o.OpenFresh(time.Minute)
	ms := make([]Message, maxFresh+3)
	for i := range ms {
		ms[i] = sms("254700000001", "hi")
	}
	put := putThen(t, db, o, ms...)
	got, spilled := o.TakeFresh(len(ms))
	if !slices.Equal(ids(got), put[:maxFresh]) || !slices.Equal(ids(spilled), put[maxFresh:]) {
		t.Fatalf("took %d, spilled %v; want %d and %v", len(got), ids(spilled), maxFresh, put[maxFresh:])
	}
}

// A message handed over with less than half its lease left is neither taken nor given
// back: the claim that follows the lease's end sends it.
func TestTakeFreshLeavesStaleMessagesToTheirLease(t *testing.T) {
	db, c := mustOpen(t), newClock()
	o := New(db, c.Now)
	o.OpenFresh(30 * time.Second)
	id := putThen(t, db, o, sms("254700000001", "hi"))[0]
	c.Advance(16 * time.Second)
	later := putThen(t, db, o, sms("254700000002", "later"))
	// The stale one, first in line, neither counts against the limit nor is returned.
	if got, back := o.TakeFresh(1); !slices.Equal(ids(got), later) || len(back) != 0 {
		t.Fatalf("took %v, gave back %v; want %v", ids(got), ids(back), later)
	}
	if left := o.CloseFresh(); len(left) != 0 {
		t.Fatalf("CloseFresh returned %v", ids(left))
	}
	c.Advance(15 * time.Second)
	if ms := claim(t, o, 10, time.Minute); !slices.Equal(ids(ms), []int64{id}) {
		t.Fatalf("claimed %v, want %d", ids(ms), id)
	}
}
