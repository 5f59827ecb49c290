package ivr

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"reflect"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/payswitch/payswitch/internal/dbtest"
	"github.com/payswitch/payswitch/internal/pgtest"
	"github.com/payswitch/payswitch/internal/sessiondb"
	"github.com/payswitch/payswitch/ledger"
	"github.com/payswitch/payswitch/outbox"
	"github.com/payswitch/payswitch/store"
	payswitch "github.com/payswitch/payswitch/switch"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

// Calls on PostgreSQL (contract section 13): several nodes share one database and any
// of them answers any callback. Each node here is a Service on its own store.DB of one
// PostgreSQL database, as two serve processes would be. The engine and the outbox are
// the harness's, one for both nodes, on SQLite: these tests are about where calls
// live, and the engine's own rules across nodes are package switch's.

type nodes struct {
	h    *harness
	dbs  []*store.DB
	svcs []*Service
	srvs []*httptest.Server
}

func newNodes(t *testing.T, h *harness, engine Engine, n int) *nodes {
	t.Helper()
	ns := &nodes{h: h, dbs: dbtest.Nodes(t, n, store.Options{}, Schema)}
	for _, db := range ns.dbs {
		svc, err := New(Config{Number: ivrNumber, DB: db}, engine, h.queue, h.Clock.Now, zerolog.Nop(), nil)
		if err != nil {
			t.Fatal(err)
		}
		if svc.db == nil {
			t.Fatal("a Service on PostgreSQL keeps its calls in memory")
		}
		srv := httptest.NewServer(svc.Handler())
		t.Cleanup(srv.Close)
		ns.svcs, ns.srvs = append(ns.svcs, svc), append(ns.srvs, srv)
	}
	return ns
}

// key posts c's callback with digits to node i (modulo the nodes).
func (ns *nodes) key(i int, c *call, digits string) Response {
	ns.h.t.Helper()
	return ns.post(i, c.form(digits))
}

func (ns *nodes) post(i int, f url.Values) Response {
	ns.h.t.Helper()
	resp, err := http.PostForm(ns.srvs[i%len(ns.srvs)].URL+"/ivr", f)
	if err != nil {
		ns.h.t.Fatal(err)
	}
	return ns.h.read(resp)
}

// limit gives every node's table the limits max and perNumber.
func (ns *nodes) limit(t *testing.T, max, perNumber int) {
	t.Helper()
	for i, svc := range ns.svcs {
		var err error
		if svc.db, err = sessiondb.New(ns.dbs[i], sessiondb.Options{Name: "ivr_sessions", Max: max, PerNumber: perNumber}); err != nil {
			t.Fatal(err)
		}
	}
}

func onPostgres(t *testing.T, test func(t *testing.T)) { t.Run(pgtest.PostgresSubtest, test) }

// A call whose every callback reaches the other node than the one before pays a
// merchant; the gateway asking again hears the same end on either node.
func TestCallAlternatesNodes(t *testing.T) {
	onPostgres(t, func(t *testing.T) {
		h := newHarness(t, options{})
		h.Wallet(alice, 100000)
		m := h.Merchant(till, "Mama Mboga", mama)
		ns := newNodes(t, h, h.Engine, 2)
		c := h.inbound("alt-1", "+254700000001")
		wantPrompt(t, ns.key(0, c, ""), 1, "Welcome to payswitch.")
		wantPrompt(t, ns.key(1, c, "1"), 0, "Enter the merchant code")
		wantPrompt(t, ns.key(0, c, "55501#"), 0, "You are paying Mama Mboga")
		wantPrompt(t, ns.key(1, c, "150#"), 6, "A code was sent to you by SMS")
		p := h.lastPayment(alice)
		wantFinal(t, ns.key(0, c, h.code(alice)+"#"), "Payment "+Spell(p.ID)+" is complete.")
		if b := h.Balance(m.ID); b.Posted != 15000 {
			t.Fatalf("merchant after: %+v, want 15000", b)
		}
		wantFinal(t, ns.key(1, c, ""), "is complete")
		if n := ns.svcs[0].Sessions(); n != 1 {
			t.Fatalf("%d calls kept, want 1", n)
		}
		ns.post(1, url.Values{"sessionId": {"alt-1"}, "isActive": {"0"}})
		if n := ns.svcs[0].Sessions(); n != 0 {
			t.Fatalf("%d calls kept after the hang-up on the other node, want 0", n)
		}
	})
}

// A callback that names alice's call from another number, or in the other direction,
// on the other node, is refused and changes nothing: the call stays alice's.
func TestCallStaysWithItsNumberAcrossNodes(t *testing.T) {
	onPostgres(t, func(t *testing.T) {
		h := newHarness(t, options{})
		h.Wallet(alice, 100000)
		h.Wallet(bob, 100000)
		h.Merchant(till, "Mama Mboga", mama)
		ns := newNodes(t, h, h.Engine, 2)
		c := h.inbound("victim", alice)
		ns.key(0, c, "")
		ns.key(1, c, "1")
		ns.key(0, c, "55501#")
		wantPrompt(t, ns.key(1, c, "150#"), 6, "A code was sent")
		code := h.code(alice)
		bobs := h.inbound("victim", bob)
		wantFinal(t, ns.key(1, bobs, code+"#"), "timed out")
		out := h.outboundCall("victim", alice)
		wantFinal(t, ns.key(0, out, code+"#"), "timed out")
		if p := h.lastPayment(alice); p.State != payswitch.StatePendingOTP {
			t.Fatalf("payment %s after forged callbacks, want it waiting", p.State)
		}
		wantFinal(t, ns.key(0, c, code+"#"), "is complete")
	})
}

// Limits hold across nodes, and the sweep runs on both at once.
func TestCallLimitsAndSweepAcrossNodes(t *testing.T) {
	onPostgres(t, func(t *testing.T) {
		h := newHarness(t, options{})
		h.Wallet(alice, 100000)
		ns := newNodes(t, h, h.Engine, 2)
		var calls []*call
		for i := range 6 {
			c := h.inbound(fmt.Sprintf("flood-%d", i), alice)
			wantPrompt(t, ns.key(i, c, ""), 1, "Welcome")
			calls = append(calls, c)
		}
		if n := ns.svcs[0].Sessions(); n != maxPerNumber {
			t.Fatalf("%d calls of one number, want %d", n, maxPerNumber)
		}
		wantFinal(t, ns.key(1, calls[2], "3"), "timed out")
		wantFinal(t, ns.key(0, calls[5], "3"), "balance")

		const limit = 8
		ns.limit(t, limit, maxPerNumber)
		engine := everyoneHasAccount{h.Engine}
		for _, svc := range ns.svcs {
			svc.engine = engine
		}
		var many []*call
		for i := range 20 {
			c := h.inbound(fmt.Sprintf("many-%d", i), fmt.Sprintf("2547100%05d", i))
			ns.key(i, c, "")
			many = append(many, c)
		}
		if n := ns.svcs[1].Sessions(); n != limit {
			t.Fatalf("%d calls after 20, want %d", n, limit)
		}
		wantFinal(t, ns.key(0, many[11], "1"), "timed out")
		wantPrompt(t, ns.key(1, many[12], "1"), 0, "Enter the merchant code")

		h.Clock.Advance(DefaultSessionTimeout - time.Second)
		live := h.inbound("live", bob)
		ns.key(0, live, "")
		h.Clock.Advance(2 * time.Second)
		var swept [2]int
		var wg sync.WaitGroup
		for i, svc := range ns.svcs {
			wg.Go(func() { swept[i] = svc.Sweep() })
		}
		wg.Wait()
		// The live call took the place of the oldest of the limit's calls.
		if swept[0]+swept[1] != limit-1 || ns.svcs[0].Sessions() != 1 {
			t.Fatalf("nodes swept %v calls and left %d, want %d swept and 1 left", swept, ns.svcs[0].Sessions(), limit-1)
		}
	})
}

// everyoneHasAccount says every number has an account, so that a flood of callers
// gets the menu without a wallet each.
type everyoneHasAccount struct{ Engine }

func (everyoneHasAccount) HasAccount(context.Context, string) (bool, error) { return true, nil }

// slowBalance holds AccountByMSISDN until released, counting calls.
type slowBalance struct {
	Engine
	calls   atomic.Int32
	entered chan struct{}
	release chan struct{}
}

func (e *slowBalance) AccountByMSISDN(ctx context.Context, msisdn string) (ledger.Account, error) {
	e.calls.Add(1)
	e.entered <- struct{}{}
	<-e.release
	return e.Engine.AccountByMSISDN(ctx, msisdn)
}

// Two callbacks of one call at once, on two nodes, take turns: the second waits for the
// first and hears the same end, and the engine is asked once.
func TestCallbacksOfOneCallTakeTurns(t *testing.T) {
	onPostgres(t, func(t *testing.T) {
		h := newHarness(t, options{})
		h.Wallet(alice, 100000)
		e := &slowBalance{Engine: h.Engine, entered: make(chan struct{}, 4), release: make(chan struct{})}
		ns := newNodes(t, h, e, 2)
		waiting := make(chan struct{}, 1)
		ns.svcs[1].db.Wait = func(ctx context.Context, attempt int) bool {
			select {
			case waiting <- struct{}{}:
			default:
			}
			return sessiondb.Backoff(ctx, attempt)
		}
		c := h.inbound("turns", alice)
		ns.key(0, c, "")
		answers := make(chan Response, 2)
		go func() { answers <- ns.key(0, c, "3") }()
		<-e.entered
		go func() { answers <- ns.key(1, c, "3") }()
		<-waiting
		close(e.release)
		a, b := <-answers, <-answers
		if a.text() != b.text() || a.GetDigits != nil {
			t.Fatalf("answers %q and %q, want the same end", a.text(), b.text())
		}
		if n := e.calls.Load(); n != 1 {
			t.Fatalf("the engine was asked %d times, want once", n)
		}
	})
}

// lookingQueue is the harness's queue, telling looks for calls.
type lookingQueue struct {
	Queue
	looked chan struct{}
}

func (q *lookingQueue) Calls(ctx context.Context, to string, limit int) ([]outbox.Message, error) {
	select {
	case q.looked <- struct{}{}:
	default:
	}
	return q.Queue.Calls(ctx, to, limit)
}

// The first callback of an outbound call may reach a node whose Caller did not request
// it, before the requesting node has recorded the gateway's call ID: it waits while the
// call is being sent, and then matches it by that ID. Then the call goes on on the
// other node.
func TestOutboundCallbackBeforeAnotherNodeRecordsTheCall(t *testing.T) {
	onPostgres(t, func(t *testing.T) {
		h := newHarness(t, options{})
		h.Wallet(alice, 100000)
		h.Merchant(till, "Mama Mboga", mama)
		ns := newNodes(t, h, h.Engine, 2)
		q := &lookingQueue{Queue: h.queue, looked: make(chan struct{}, 1)}
		ns.svcs[1].queue = q
		ctx := context.Background()
		if err := h.Engine.HandleSMS(ctx, alice, "PAY 55501 250"); err != nil {
			t.Fatal(err)
		}
		p := h.lastPayment(alice)
		h.enqueueCall(alice, PurposePayerConfirm, p.ID)
		claimed, err := h.Outbox.Claim(ctx, outbox.KindCall, 1, time.Minute) // node 0's Caller
		if err != nil || len(claimed) != 1 {
			t.Fatalf("claim: %v %v", claimed, err)
		}
		c := h.outboundCall("call-7", "+"+alice)
		first := make(chan Response, 1)
		go func() { first <- ns.key(1, c, "") }()
		<-q.looked // node 1 looked and found no call-7: it waits while the call is sent
		if err := h.Outbox.MarkSent(ctx, claimed[0], voiceLink, []string{"call-7"}); err != nil {
			t.Fatal(err)
		}
		wantPrompt(t, <-first, 6, "You have a payment waiting")
		wantFinal(t, ns.key(0, c, h.code(alice)+"#"), "is complete")
	})
}

// A call's state reads back as written, every field set; a damaged one is refused.
func TestCallStateRoundTrip(t *testing.T) {
	last := prompt("say it", 6)
	last.Say, last.Reject = &Say{Text: "before"}, &Reject{}
	s := &session{outbound: true, phone: alice, node: nodeFallback, misses: 2, notices: 1, ask: "ask", digits: 6,
		typ: payswitch.MerchantPayment, field: "55501", payee: "Mama", payment: "P1", callMsg: 77, notice: "n",
		last: last, seen: time.Unix(0, 42)}
	b := encodeCall(s)
	got, err := decodeCall(sessiondb.Row{Phone: alice, Seen: 42, State: b})
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, s) {
		t.Fatalf("read back %+v, wrote %+v", got, s)
	}
	for _, bad := range [][]byte{nil, b[:len(b)-1], append(b[:len(b):len(b)], 0), {2}} {
		if _, err := decodeCall(sessiondb.Row{State: bad}); err == nil {
			t.Fatalf("state %x decoded", bad)
		}
	}
}
