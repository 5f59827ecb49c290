package smpp

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/payswitch/payswitch/outbox"
	"github.com/payswitch/payswitch/store"
	"github.com/rs/zerolog"
)

func TestRoute(t *testing.T) {
	a := NewLink(LinkConfig{Name: "a", Prefixes: []string{"2547"}}, HandlerFuncs{}, zerolog.Nop(), nil)
	a1 := NewLink(LinkConfig{Name: "a1", Prefixes: []string{"25471", "+25472"}}, HandlerFuncs{}, zerolog.Nop(), nil)
	def := NewLink(LinkConfig{Name: "default"}, HandlerFuncs{}, zerolog.Nop(), nil)
	b := NewLink(LinkConfig{Name: "b", Prefixes: []string{"2541"}}, HandlerFuncs{}, zerolog.Nop(), nil)
	tests := []struct {
		name   string
		links  []*Link
		msisdn string
		want   *Link
	}{
		{"prefix", []*Link{a, b}, "254700000001", a},
		{"other prefix", []*Link{a, b}, "254100000001", b},
		{"plus ignored", []*Link{a, b}, "+254100000001", b},
		{"longest wins", []*Link{a, a1}, "254710000001", a1},
		{"longest wins whatever the order", []*Link{a1, a}, "254710000001", a1},
		{"configured with plus", []*Link{a, a1}, "254720000001", a1},
		{"shorter when longer does not match", []*Link{a1, a}, "254730000001", a},
		{"prefix beats default", []*Link{def, a}, "254700000001", a},
		{"default for the rest", []*Link{def, a}, "255700000001", def},
		{"no route", []*Link{a, b}, "255700000001", nil},
		{"no links", nil, "254700000001", nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := Route(tc.links, tc.msisdn); got != tc.want {
				t.Fatalf("Route = %v, want %v", name(got), name(tc.want))
			}
		})
	}
}

func name(l *Link) string {
	if l == nil {
		return "<nil>"
	}
	return l.Name()
}

// mustOutbox opens a real outbox in a temporary SQLite file.
func mustOutbox(t *testing.T) (*outbox.Outbox, *store.DB) {
	t.Helper()
	db, err := store.Open(filepath.Join(t.TempDir(), "payswitch.db"), store.Options{}, outbox.Schema)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return outbox.New(db, nil), db
}

// enqueue adds SMS to the outbox as the engine does and kicks the sender.
func enqueue(t *testing.T, o *outbox.Outbox, db *store.DB, ms ...outbox.Message) []int64 {
	t.Helper()
	var ids []int64
	err := db.Write(context.Background(), func(tx store.Tx) error {
		ids = nil
		for _, m := range ms {
			if m.Kind == "" {
				m.Kind = outbox.KindSMS
			}
			if m.From == "" {
				m.From = "22333"
			}
			id, err := o.Enqueue(context.Background(), tx, m)
			if err != nil {
				return err
			}
			ids = append(ids, id)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	o.Kick()
	return ids
}

// waitMessage polls the outbox until message id satisfies cond; the outbox has no
// change notification to wait on.
func waitMessage(t *testing.T, o *outbox.Outbox, id int64, what string, cond func(outbox.Message) bool) outbox.Message {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		m, err := o.Get(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		if cond(m) {
			return m
		}
		if time.Now().After(deadline) {
			t.Fatalf("message %d never became %s: %+v", id, what, m)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func inState(state string) func(outbox.Message) bool {
	return func(m outbox.Message) bool { return m.State == state }
}

// runSender runs a sender with immediate retries until the test ends.
func runSender(t *testing.T, q Queue, links []*Link, tune func(*Sender)) {
	t.Helper()
	s := NewSender(q, links, zerolog.Nop())
	s.backoff = func(int) time.Duration { return 0 }
	if tune != nil {
		tune(s)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
}

func TestSenderRoutesAndRecordsReceipts(t *testing.T) {
	o, db := mustOutbox(t)
	srvA, srvB := newTestSMSC(t, "pw"), newTestSMSC(t, "pw")
	handler := HandlerFuncs{Receipt: ReceiptRecorder(o)}
	a := startLink(t, srvA, LinkConfig{Name: "carrier-a", Password: "pw", Prefixes: []string{"2547"}}, handler)
	b := startLink(t, srvB, LinkConfig{Name: "carrier-b", Password: "pw"}, handler)
	waitState(t, a, StateBound)
	waitState(t, b, StateBound)
	runSender(t, o, []*Link{a, b}, nil)

	long := strings.Repeat("Umelipa KES 1,500.00 kwa Mama Mboga. ", 6) // 222 septets: 2 parts
	ids := enqueue(t, o, db,
		outbox.Message{To: "254700000001", Text: "Your code is 123456", RequestReceipt: true, Purpose: "otp"},
		outbox.Message{To: "255700000002", Text: "Habari"},
		outbox.Message{To: "254700000003", Text: long},
	)
	want := []struct {
		link  string
		parts int
	}{{"carrier-a", 1}, {"carrier-b", 1}, {"carrier-a", 2}}
	for i, id := range ids {
		m := waitMessage(t, o, id, "sent", inState(outbox.StateSent))
		if m.Link != want[i].link || len(m.MessageIDs) != want[i].parts {
			t.Fatalf("message %d went over %s with ids %v; want %s with %d", i, m.Link, m.MessageIDs, want[i].link, want[i].parts)
		}
	}
	subA, subB := srvA.submitted(), srvB.submitted()
	if len(subA) != 3 || len(subB) != 1 {
		t.Fatalf("carrier-a got %d submit_sm, carrier-b %d; want 3 and 1", len(subA), len(subB))
	}
	for _, s := range subA {
		if s.dst == "254700000001" && s.register != 1 {
			t.Fatal("receipt not requested")
		}
	}

	// The SMSC reports delivery of the code message.
	first, _ := o.Get(context.Background(), ids[0])
	receipt := deliverSM("254700000001", "22333", 0, 0x04,
		[]byte("id:"+first.MessageIDs[0]+" sub:001 dlvrd:001 submit date:2401011200 done date:2401011201 stat:DELIVRD err:000 text:"), nil)
	if st := srvA.mustDeliver(t, receipt); st != StatusOK {
		t.Fatalf("receipt answered 0x%x", st)
	}
	waitMessage(t, o, ids[0], "delivered", inState(outbox.StateDelivered))
}

func TestSenderRetriesTemporaryErrors(t *testing.T) {
	tests := []struct {
		name              string
		status            uint32
		attempts, submits int
	}{
		// The outbox retries a system error later.
		{"system error", StatusSysErr, 2, 2},
		// The link pauses and resends a throttled part itself: one outbox attempt.
		{"throttled", StatusThrottled, 1, 2},
		{"queue full", StatusMsgQFul, 1, 2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			o, db := mustOutbox(t)
			srv := newTestSMSC(t, "pw")
			srv.submitStatus = func(n int) uint32 {
				if n == 0 {
					return tc.status
				}
				return StatusOK
			}
			l := startLink(t, srv, LinkConfig{Password: "pw"}, HandlerFuncs{})
			waitState(t, l, StateBound)
			runSender(t, o, []*Link{l}, nil)
			ids := enqueue(t, o, db, outbox.Message{To: "254700000001", Text: "BAL reply"})
			m := waitMessage(t, o, ids[0], "sent", inState(outbox.StateSent))
			if m.Attempts != tc.attempts || len(srv.submitted()) != tc.submits {
				t.Fatalf("attempts %d, submit_sm %d; want %d and %d", m.Attempts, len(srv.submitted()), tc.attempts, tc.submits)
			}
		})
	}
}

func TestSenderFailsPermanentErrors(t *testing.T) {
	tests := []struct {
		name    string
		msg     outbox.Message
		status  uint32
		submits int
		errText string
	}{
		{"invalid destination", outbox.Message{To: "254700000001", Text: "x"}, StatusInvDstAdr, 1, "0x0000000b"},
		{"no route", outbox.Message{To: "255700000001", Text: "x"}, 0, 0, ErrNoRoute.Error()},
		{"bad USSD meta", outbox.Message{To: "254700000001", Text: "x", Meta: map[string]string{MetaUSSDServiceOp: "continue"}}, 0, 0, ErrBadMeta.Error()},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			o, db := mustOutbox(t)
			srv := newTestSMSC(t, "pw")
			srv.submitStatus = func(int) uint32 { return tc.status }
			l := startLink(t, srv, LinkConfig{Password: "pw", Prefixes: []string{"2547"}}, HandlerFuncs{})
			waitState(t, l, StateBound)
			runSender(t, o, []*Link{l}, nil)
			ids := enqueue(t, o, db, tc.msg)
			m := waitMessage(t, o, ids[0], "failed", inState(outbox.StateFailed))
			if m.Attempts != 1 || len(srv.submitted()) != tc.submits || !strings.Contains(m.LastError, tc.errText) {
				t.Fatalf("attempts %d, submit_sm %d, error %q", m.Attempts, len(srv.submitted()), m.LastError)
			}
		})
	}
}

func TestSenderGivesUpAfterMaxAttempts(t *testing.T) {
	o, db := mustOutbox(t)
	srv := newTestSMSC(t, "right")
	l := startLink(t, srv, LinkConfig{Password: "wrong"}, HandlerFuncs{}) // never binds
	runSender(t, o, []*Link{l}, func(s *Sender) { s.maxAttempts = 3 })
	ids := enqueue(t, o, db, outbox.Message{To: "254700000001", Text: "x"})
	m := waitMessage(t, o, ids[0], "failed", inState(outbox.StateFailed))
	if m.Attempts != 3 || !strings.Contains(m.LastError, ErrNotBound.Error()) {
		t.Fatalf("attempts %d, error %q", m.Attempts, m.LastError)
	}
}

func TestSenderDeliversAfterLinkComesBack(t *testing.T) {
	o, db := mustOutbox(t)
	srv := newTestSMSC(t, "pw")
	l := startLink(t, srv, LinkConfig{Password: "pw"}, HandlerFuncs{})
	waitState(t, l, StateBound)
	runSender(t, o, []*Link{l}, nil)

	// The SMSC goes away and refuses binds for a while (its password store is broken).
	srv.mu.Lock()
	srv.password = "rotated"
	srv.mu.Unlock()
	srv.dropAll()
	waitState(t, l, StateDown)
	ids := enqueue(t, o, db, outbox.Message{To: "254700000001", Text: "Payment PAY1234567 received"})
	waitMessage(t, o, ids[0], "retried", func(m outbox.Message) bool {
		return m.Attempts >= 2 && strings.Contains(m.LastError, ErrNotBound.Error())
	})
	if n := len(srv.submitted()); n != 0 {
		t.Fatalf("%d submit_sm while down", n)
	}

	srv.mu.Lock()
	srv.password = "pw"
	srv.mu.Unlock()
	waitState(t, l, StateBound)
	m := waitMessage(t, o, ids[0], "sent", inState(outbox.StateSent))
	if len(m.MessageIDs) != 1 || len(srv.submitted()) != 1 {
		t.Fatalf("ids %v, submit_sm %d", m.MessageIDs, len(srv.submitted()))
	}
}

func TestSenderStaysWithinWindow(t *testing.T) {
	o, db := mustOutbox(t)
	srv := newTestSMSC(t, "pw")
	srv.hold = make(chan struct{})
	l := startLink(t, srv, LinkConfig{Password: "pw", Window: 2}, HandlerFuncs{})
	waitState(t, l, StateBound)
	runSender(t, o, []*Link{l}, nil)
	var msgs []outbox.Message
	for range 8 {
		msgs = append(msgs, outbox.Message{To: "254700000001", Text: "hi"})
	}
	ids := enqueue(t, o, db, msgs...)
	srv.waitFor("a full window", func() bool { return srv.outstanding == 2 })
	srv.mu.Lock()
	close(srv.hold)
	srv.hold = nil
	srv.mu.Unlock()
	for _, id := range ids {
		waitMessage(t, o, id, "sent", inState(outbox.StateSent))
	}
	srv.mu.Lock()
	defer srv.mu.Unlock()
	if len(srv.submits) != 8 || srv.maxOut != 2 {
		t.Fatalf("%d submit_sm, at most %d outstanding; want 8 and 2", len(srv.submits), srv.maxOut)
	}
}

func TestSenderUSSDMetaPinsLink(t *testing.T) {
	o, db := mustOutbox(t)
	srvA, srvB := newTestSMSC(t, "pw"), newTestSMSC(t, "pw")
	a := startLink(t, srvA, LinkConfig{Name: "carrier-a", Password: "pw", Prefixes: []string{"2547"}}, HandlerFuncs{})
	b := startLink(t, srvB, LinkConfig{Name: "ussd-gw", Password: "pw", Prefixes: []string{"999"}}, HandlerFuncs{})
	waitState(t, a, StateBound)
	waitState(t, b, StateBound)
	runSender(t, o, []*Link{a, b}, nil)
	ids := enqueue(t, o, db, outbox.Message{To: "254700000001", Text: "END Balance: KES 10.00",
		Meta: map[string]string{MetaLink: "ussd-gw", MetaUSSDServiceOp: "17", MetaITSSessionInfo: "0a0b"}})
	m := waitMessage(t, o, ids[0], "sent", inState(outbox.StateSent))
	if m.Link != "ussd-gw" {
		t.Fatalf("went over %s", m.Link)
	}
	sub := srvB.submitted()
	if len(sub) != 1 || sub[0].tlvs[tagUssdServiceOp][0] != USSDPSSRResponse || string(sub[0].tlvs[tagItsSessionInfo]) != "\x0a\x0b" {
		t.Fatalf("USSD submit %+v", sub)
	}
}

func TestSenderNeedsLinks(t *testing.T) {
	o, _ := mustOutbox(t)
	if err := NewSender(o, nil, zerolog.Nop()).Run(context.Background()); err == nil {
		t.Fatal("Run without links started")
	}
}

// fakeQueue is a Queue whose Claim fails; the sender must keep running.
type fakeQueue struct {
	claims chan struct{}
}

var _ Queue = (*fakeQueue)(nil)

func (f *fakeQueue) Wait() <-chan struct{} { return nil }
func (f *fakeQueue) Claim(context.Context, string, int, time.Duration) ([]outbox.Message, error) {
	select {
	case f.claims <- struct{}{}:
	default:
	}
	return nil, errors.New("disk I/O error")
}
func (f *fakeQueue) MarkSent(context.Context, outbox.Message, string, []string) error { return nil }
func (f *fakeQueue) Retry(context.Context, int64, string, time.Time) error            { return nil }
func (f *fakeQueue) Fail(context.Context, int64, string) error                        { return nil }

func TestSenderSurvivesClaimErrors(t *testing.T) {
	q := &fakeQueue{claims: make(chan struct{})}
	l := NewLink(LinkConfig{Name: "x"}, HandlerFuncs{}, zerolog.Nop(), nil)
	s := NewSender(q, []*Link{l}, zerolog.Nop())
	s.poll = time.Millisecond
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	for range 3 { // it claims again after each failure
		<-q.claims
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// BenchmarkSender measures outbox-to-SMSC throughput: b.N messages enqueued, then sent
// over one loopback link (window 10, no TPS limit) and recorded as sent.
func BenchmarkSender(b *testing.B) {
	db, err := store.Open(filepath.Join(b.TempDir(), "payswitch.db"), store.Options{}, outbox.Schema)
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	o := outbox.New(db, nil)
	srv := newTestSMSC(b, "pw")
	l := NewLink(LinkConfig{Name: "bench", Address: srv.addr(), Password: "pw"}, HandlerFuncs{}, zerolog.Nop(), nil)
	l.Start(context.Background())
	defer l.Close()
	for l.State() != StateBound {
		time.Sleep(time.Millisecond)
	}
	err = db.Write(context.Background(), func(tx store.Tx) error {
		for range b.N {
			if _, err := outbox.Enqueue(context.Background(), tx, outbox.Message{Kind: outbox.KindSMS, To: "254700000001", From: "22333", Text: "Your balance is KES 1,500.00"}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	s := NewSender(o, []*Link{l}, zerolog.Nop())
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	for {
		st, err := o.Stats(context.Background())
		if err != nil {
			b.Fatal(err)
		}
		if st[outbox.StateSent] == int64(b.N) {
			break
		}
		time.Sleep(time.Millisecond)
	}
	b.StopTimer()
	cancel()
	<-done
}

// fakeTarget is a Target whose state and Submit the test sets.
type fakeTarget struct {
	name, state string
	submit      func(MT) ([]string, error) // nil: fails
}

func (f *fakeTarget) Name() string  { return f.name }
func (f *fakeTarget) State() string { return f.state }
func (f *fakeTarget) Window() int   { return 1 }
func (f *fakeTarget) Submit(_ context.Context, m MT) ([]string, error) {
	if f.submit == nil {
		return nil, errors.New("fake target sends nothing")
	}
	return f.submit(m)
}

// recordingQueue records the outcome the Sender reports for each message.
type recordingQueue struct {
	fakeQueue
	mu      sync.Mutex // guards outcome
	outcome []string
}

func (q *recordingQueue) MarkSent(_ context.Context, _ outbox.Message, link string, ids []string) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.outcome = append(q.outcome, "sent over "+link+" as "+strings.Join(ids, ","))
	return nil
}

func (q *recordingQueue) Retry(_ context.Context, id int64, errText string, _ time.Time) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.outcome = append(q.outcome, "retry: "+errText)
	return nil
}

// A link that drops between routing and sending hands the message to its failover.
func TestSenderFailsOverAtSendTime(t *testing.T) {
	var got MT
	primary := &fakeTarget{name: "a", state: StateDown, submit: func(MT) ([]string, error) { return nil, ErrNotBound }}
	failover := &fakeTarget{name: "b", state: StateBound, submit: func(m MT) ([]string, error) { got = m; return []string{"id-1"}, nil }}
	q := &recordingQueue{}
	s := NewSender(q, nil, zerolog.Nop())
	m := outbox.Message{ID: 70000, To: "254700000001", From: "22333", Text: "hi", RequestReceipt: true}
	sendAndRecord := func(j job) {
		o := s.send(context.Background(), j)
		s.finish(context.Background(), o)
	}
	sendAndRecord(job{m: m, target: primary, fallback: failover})
	if len(q.outcome) != 1 || q.outcome[0] != "sent over b as id-1" {
		t.Fatalf("outcome %v", q.outcome)
	}
	if got.To != m.To || got.Text != m.Text || !got.Receipt || got.Ref != refOf(70000) || got.Late == nil {
		t.Fatalf("failover got %+v", got)
	}

	// A failover that is down too leaves the message for a retry.
	failover.state = StateDown
	q.outcome = nil
	sendAndRecord(job{m: m, target: primary, fallback: failover})
	if len(q.outcome) != 1 || !strings.HasPrefix(q.outcome[0], "retry: ") {
		t.Fatalf("outcome %v", q.outcome)
	}
}

// fakeAffinity pins numbers to its targets by a map.
type fakeAffinity struct {
	targets []Target
	pins    map[string]Pin
	err     error
}

func (f *fakeAffinity) Targets() []Target { return f.targets }
func (f *fakeAffinity) TargetFor(_ context.Context, msisdn string) (Pin, error) {
	return f.pins[msisdn], f.err
}

// setState forces a link's state, for routing tests without an SMSC.
func setState(l *Link, st string) {
	l.mu.Lock()
	l.setStateLocked(st)
	l.mu.Unlock()
}

func TestSenderRoute(t *testing.T) {
	a := NewLink(LinkConfig{Name: "a", Prefixes: []string{"2547"}, Failover: "b"}, HandlerFuncs{}, zerolog.Nop(), nil)
	b := NewLink(LinkConfig{Name: "b", Prefixes: []string{"2541"}}, HandlerFuncs{}, zerolog.Nop(), nil)
	agg := &fakeTarget{name: "server:agg", state: StateDown}
	const grace = time.Minute
	aff := &fakeAffinity{targets: []Target{agg}, pins: map[string]Pin{
		"254700000009": {Target: "server:agg", Prefix: 4, Grace: grace},
		"254700000008": {Target: "server:gone", Prefix: 4, Grace: grace},
		"254700000007": {Target: "server:agg", Prefix: 3, Grace: grace}, // the account declared "254"
	}}
	s := NewSender(nil, []*Link{a, b}, zerolog.Nop())
	s.AddAffinity(aff)
	t0 := time.Date(2026, 12, 6, 4, 0, 0, 0, time.UTC)
	s.now = func() time.Time { return t0 }
	targets := map[string]Target{"a": a, "b": b, "server:agg": agg}
	otp := func(m outbox.Message) outbox.Message { m.Purpose = "otp"; return m }
	old := func(m outbox.Message, attempts int) outbox.Message {
		m.CreatedAt, m.Attempts = t0.Add(-grace), attempts
		return m
	}
	tests := []struct {
		name         string
		aState       string
		bState       string
		aggState     string
		m            outbox.Message
		want, orElse string // target and fallback ("" none)
		err          error
	}{
		{"prefix, failover standing by", StateBound, StateBound, StateDown, outbox.Message{To: "254700000001"}, "a", "b", nil},
		{"down: the bound failover", StateDown, StateBound, StateDown, outbox.Message{To: "254700000001"}, "b", "", nil},
		{"down, failover down too: wait for the link", StateDown, StateDown, StateDown, outbox.Message{To: "254700000001"}, "a", "b", nil},
		{"a link without failover", StateDown, StateBound, StateDown, outbox.Message{To: "254100000001"}, "b", "", nil},
		{"pinned to an aggregator, down: waits within the grace", StateBound, StateBound, StateDown, outbox.Message{To: "254700000009", CreatedAt: t0.Add(-grace + time.Second)}, "server:agg", "", nil},
		{"pinned to an aggregator, down: after the grace by the carrier", StateBound, StateBound, StateDown, old(outbox.Message{To: "254700000009"}, 1), "a", "b", nil},
		{"pinned, bound: an old message's first try", StateBound, StateBound, StateBound, old(outbox.Message{To: "254700000009"}, 1), "server:agg", "", nil},
		{"pinned, bound but it failed there, after the grace", StateBound, StateBound, StateBound, old(outbox.Message{To: "254700000009"}, 2), "a", "b", nil},
		{"a carrier link more specific than the pin", StateBound, StateBound, StateBound, outbox.Message{To: "254700000007", CreatedAt: t0}, "a", "b", nil},
		{"a code never follows the pin", StateBound, StateBound, StateBound, otp(outbox.Message{To: "254700000009", CreatedAt: t0}), "a", "b", nil},
		{"a code never goes to a meta link", StateBound, StateBound, StateBound, otp(outbox.Message{To: "254700000009", CreatedAt: t0, Meta: map[string]string{MetaLink: "server:agg"}}), "a", "b", nil},
		{"pinned to an account no longer configured", StateBound, StateBound, StateBound, outbox.Message{To: "254700000008", CreatedAt: t0}, "a", "b", nil},
		{"meta names the link: no failover", StateDown, StateBound, StateDown, outbox.Message{To: "254700000009", Meta: map[string]string{MetaLink: "a"}}, "a", "", nil},
		{"meta names no target: routed", StateBound, StateBound, StateDown, outbox.Message{To: "254700000001", Meta: map[string]string{MetaLink: "old"}}, "a", "b", nil},
		{"no route", StateBound, StateBound, StateDown, outbox.Message{To: "255700000001"}, "", "", ErrNoRoute},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			setState(a, tc.aState)
			setState(b, tc.bState)
			agg.state = tc.aggState
			j, err := s.route(context.Background(), targets, tc.m)
			if !errors.Is(err, tc.err) {
				t.Fatalf("route: %v, want %v", err, tc.err)
			}
			if err != nil {
				return
			}
			fallback := ""
			if j.fallback != nil {
				fallback = j.fallback.Name()
			}
			if j.target.Name() != tc.want || fallback != tc.orElse {
				t.Fatalf("route = %s (fallback %q), want %s (%q)", j.target.Name(), fallback, tc.want, tc.orElse)
			}
		})
	}
	aff.err = errors.New("disk I/O error")
	if _, err := s.route(context.Background(), targets, outbox.Message{To: "254700000001"}); err == nil || !IsTemporary(err) {
		t.Fatalf("an affinity that cannot answer: %v, want a temporary error", err)
	}
}

func TestRefOf(t *testing.T) {
	seen := map[uint16]int64{}
	for id := int64(1); id <= 0xFFFF+5; id++ {
		r := refOf(id)
		if r == 0 {
			t.Fatalf("refOf(%d) = 0, which means no reference", id)
		}
		if prev, ok := seen[r]; ok && id-prev < 0xFFFF {
			t.Fatalf("refOf(%d) = refOf(%d) = %d", id, prev, r)
		}
		seen[r] = id
	}
}

// countingQueue counts the claims a Sender makes of a real outbox.
type countingQueue struct {
	*outbox.Outbox
	claims atomic.Int64
}

func (q *countingQueue) Claim(ctx context.Context, kind string, limit int, lease time.Duration) ([]outbox.Message, error) {
	q.claims.Add(1)
	return q.Outbox.Claim(ctx, kind, limit, lease)
}

// The sender claims when a Kick says there is something new and, when the queue waits
// for room, once half its room is free; a message sent does not make it claim again
// (that was an empty store write per message when traffic was light, and one claim per
// message when the queue waited). The poll is off here, so nothing else makes it claim.
func TestSenderClaimsOnlyWhenThereMayBeWork(t *testing.T) {
	tests := []struct {
		name   string
		rounds int // enqueues, each waiting for the one before to be sent
		batch  int // messages per enqueue
	}{
		{name: "one at a time", rounds: 10, batch: 1},
		{name: "more than the sender has room for", rounds: 1, batch: 40},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			o, db := mustOutbox(t)
			q := &countingQueue{Outbox: o}
			srv := newTestSMSC(t, "pw")
			l := startLink(t, srv, LinkConfig{Password: "pw", Window: 4}, HandlerFuncs{}) // room for 8
			waitState(t, l, StateBound)
			runSender(t, q, []*Link{l}, func(s *Sender) { s.poll = time.Hour })
			for range tc.rounds {
				msgs := make([]outbox.Message, tc.batch)
				for i := range msgs {
					msgs[i] = outbox.Message{To: "254700000001", Text: fmt.Sprint("hi ", i)}
				}
				for _, id := range enqueue(t, o, db, msgs...) {
					waitMessage(t, o, id, "sent", inState(outbox.StateSent))
				}
			}
			// One claim as the sender starts, one per Kick (one more if the first Kick
			// came before that first claim), and while the queue waits for room one per
			// half of the room, 4 messages.
			limit := int64(2 + tc.rounds + tc.rounds*(tc.batch-1)/4)
			if n := q.claims.Load(); n > limit {
				t.Errorf("%d claims for %d messages, want at most %d", n, tc.rounds*tc.batch, limit)
			}
		})
	}
}

// pendingDeliveries counts the deliver_sm the test SMSC has sent and not had answered.
func (s *testSMSC) pendingDeliveries() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for c := range s.conns {
		c.mu.Lock()
		n += len(c.pending)
		c.mu.Unlock()
	}
	return n
}

// Receipts that arrive together are recorded together (the outbox combines their
// writes while the writer is busy), and each deliver_sm is acknowledged only once its
// own receipt is durable: one the store refuses is answered with a temporary error
// alone, and the SMSC delivers it again.
func TestLinkAcksConcurrentReceiptsOnlyOnceRecorded(t *testing.T) {
	tests := []struct {
		name   string
		broken int // the receipt the store refuses; -1: none
	}{
		{name: "all recorded", broken: -1},
		{name: "one refused", broken: 3},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			o, db := mustOutbox(t)
			srv := newTestSMSC(t, "pw")
			l := startLink(t, srv, LinkConfig{Name: "carrier-a", Password: "pw"}, HandlerFuncs{Receipt: ReceiptRecorder(o)})
			waitState(t, l, StateBound)
			const n = 8
			msgs := make([]outbox.Message, n)
			for i := range msgs {
				msgs[i] = outbox.Message{To: "254700000001", Text: fmt.Sprint("code ", i), RequestReceipt: true}
			}
			ids := enqueue(t, o, db, msgs...)
			if ms, err := o.Claim(context.Background(), outbox.KindSMS, n, time.Hour); err != nil || len(ms) != n {
				t.Fatalf("claimed %d: %v", len(ms), err)
			}
			for i, id := range ids {
				if err := o.MarkSent(context.Background(), outbox.Message{ID: id, RequestReceipt: true}, "carrier-a",
					[]string{fmt.Sprint("r", i)}); err != nil {
					t.Fatal(err)
				}
			}
			if tc.broken >= 0 {
				err := db.Write(context.Background(), func(tx store.Tx) error {
					_, err := tx.ExecContext(context.Background(), fmt.Sprintf(`CREATE TEMP TRIGGER refuse BEFORE UPDATE ON message_parts
						WHEN new.message_id = 'r%d' BEGIN SELECT RAISE(ABORT, 'refused'); END`, tc.broken))
					return err
				})
				if err != nil {
					t.Fatal(err)
				}
			}

			// Hold the writer so that the receipts wait for it together.
			running, hold, held := make(chan struct{}), make(chan struct{}), make(chan error, 1)
			var once sync.Once
			go func() {
				held <- db.Write(context.Background(), func(store.Tx) error {
					once.Do(func() { close(running) }) // it runs again if its group is redone
					<-hold
					return nil
				})
			}()
			<-running
			type answer struct {
				status  uint32
				err     error
				stateAt string // the message's state when its deliver_sm_resp came
			}
			answers := make([]answer, n)
			var wg sync.WaitGroup
			for i, id := range ids {
				wg.Go(func() {
					p := deliverSM("254700000001", "22333", 0, 0x04,
						[]byte(fmt.Sprintf("id:r%d sub:001 dlvrd:001 submit date:2401011200 done date:2401011201 stat:DELIVRD err:000", i)), nil)
					a := &answers[i]
					a.status, a.err = srv.deliver(p, 0)
					m, err := o.Get(context.Background(), id)
					if err != nil {
						t.Error(err)
					}
					a.stateAt = m.State
				})
			}
			deadline := time.Now().Add(15 * time.Second)
			for srv.pendingDeliveries() < n {
				if time.Now().After(deadline) {
					t.Fatalf("%d deliver_sm in flight, want %d", srv.pendingDeliveries(), n)
				}
				time.Sleep(time.Millisecond)
			}
			close(hold)
			if err := <-held; err != nil {
				t.Fatal(err)
			}
			wg.Wait()
			for i, a := range answers {
				switch {
				case a.err != nil:
					t.Errorf("receipt %d: %v", i, a.err)
				case i == tc.broken:
					if a.status != StatusRxTempAppn || a.stateAt != outbox.StateSent {
						t.Errorf("refused receipt %d: answered 0x%x with the message %s; want 0x%x and sent",
							i, a.status, a.stateAt, StatusRxTempAppn)
					}
				case a.status != StatusOK || a.stateAt != outbox.StateDelivered:
					t.Errorf("receipt %d: answered 0x%x with the message %s; want OK once delivered", i, a.status, a.stateAt)
				}
			}
		})
	}
}

// retryRaceQueue is the real outbox whose Retry returns only after the sender has
// claimed twice more: the retried message, due at once, is claimed again while the
// sender is still recording its previous attempt.
type retryRaceQueue struct {
	*outbox.Outbox
	claims chan struct{}
}

func (q *retryRaceQueue) Claim(ctx context.Context, kind string, limit int, lease time.Duration) ([]outbox.Message, error) {
	select {
	case q.claims <- struct{}{}:
	default:
	}
	return q.Outbox.Claim(ctx, kind, limit, lease)
}

func (q *retryRaceQueue) Retry(ctx context.Context, id int64, errText string, next time.Time) error {
	err := q.Outbox.Retry(ctx, id, errText, next)
	q.Kick()
	for range 2 {
		select {
		case <-q.claims:
		case <-ctx.Done():
		}
	}
	return err
}

// A message retried at once and claimed again before its previous attempt is fully
// recorded is sent again then, not left leased until its lease runs out.
func TestSenderRetriesAMessageClaimedWhileItsRetryIsRecorded(t *testing.T) {
	o, db := mustOutbox(t)
	q := &retryRaceQueue{Outbox: o, claims: make(chan struct{})}
	srv := newTestSMSC(t, "right")
	l := startLink(t, srv, LinkConfig{Password: "wrong"}, HandlerFuncs{}) // never binds
	runSender(t, q, []*Link{l}, func(s *Sender) {
		s.maxAttempts = 3
		s.poll = 5 * time.Millisecond
		s.lease = time.Hour // a message left leased would wait past the test's patience
	})
	ids := enqueue(t, o, db, outbox.Message{To: "254700000001", Text: "x"})
	m := waitMessage(t, o, ids[0], "failed", inState(outbox.StateFailed))
	if m.Attempts != 3 {
		t.Fatalf("failed after %d attempts, want 3", m.Attempts)
	}
}
