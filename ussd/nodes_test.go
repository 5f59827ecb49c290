package ussd

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/payswitch/payswitch/internal/dbtest"
	"github.com/payswitch/payswitch/internal/pgtest"
	"github.com/payswitch/payswitch/internal/sessiondb"
	"github.com/payswitch/payswitch/store"
	payswitch "github.com/payswitch/payswitch/switch"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

// Sessions on PostgreSQL (contract section 13): several nodes share one database and
// any of them answers any step. Each node here is a Menu on its own store.DB of one
// PostgreSQL database, as two serve processes would be. The engine is the harness's,
// one for both nodes, on SQLite: these tests are about where sessions live, and the
// engine's own rules across nodes are package switch's.

// nodes is n Menus over engine, each on its own store.DB of one new PostgreSQL
// database, on the harness's clock, each served over HTTP.
type nodes struct {
	menus []*Menu
	srvs  []*httptest.Server
}

func newNodes(t *testing.T, h *harness, engine Engine, n int) *nodes {
	t.Helper()
	var ns nodes
	for _, db := range dbtest.Nodes(t, n, store.Options{}, Schema) {
		m, err := New(engine, Config{ServiceCode: "*384#", Now: h.Clock.Now, Log: zerolog.Nop(), DB: db})
		if err != nil {
			t.Fatal(err)
		}
		if m.db == nil {
			t.Fatal("a Menu on PostgreSQL keeps its sessions in memory")
		}
		srv := httptest.NewServer(m.Handler())
		t.Cleanup(srv.Close)
		ns.menus, ns.srvs = append(ns.menus, m), append(ns.srvs, srv)
	}
	return &ns
}

// limit gives every node's tables the limits max and perNumber.
func (ns *nodes) limit(t *testing.T, dbs []*store.DB, max, perNumber int) {
	t.Helper()
	for i, m := range ns.menus {
		var err error
		if m.db.dialogues, err = sessiondb.New(dbs[i], sessiondb.Options{Name: "ussd_sessions", Max: max, PerNumber: perNumber}); err != nil {
			t.Fatal(err)
		}
		if m.db.pushes, err = sessiondb.New(dbs[i], sessiondb.Options{Name: "ussd_push_sessions", Max: max, PerNumber: perNumber}); err != nil {
			t.Fatal(err)
		}
	}
}

// onPostgres runs test as a subtest "postgres", where dbtest opens PostgreSQL.
func onPostgres(t *testing.T, test func(t *testing.T)) { t.Run(pgtest.PostgresSubtest, test) }

// nodeGateway is a gateway whose every request goes to the next node in turn.
type nodeGateway struct {
	t      testing.TB
	ns     *nodes
	turn   int
	sid    string
	phone  string
	inputs []string
}

func (ns *nodes) dial(t testing.TB, sid, phone string, first int) (*nodeGateway, string) {
	g := &nodeGateway{t: t, ns: ns, turn: first, sid: sid, phone: phone}
	return g, g.request()
}

func (g *nodeGateway) send(input string) string {
	g.inputs = append(g.inputs, input)
	return g.request()
}

func (g *nodeGateway) request() string {
	g.t.Helper()
	srv := g.ns.srvs[g.turn%len(g.ns.srvs)]
	g.turn++
	code, body := postTo(g.t, srv, url.Values{"sessionId": {g.sid}, "serviceCode": {"*384#"},
		"phoneNumber": {"+" + g.phone}, "networkCode": {"63902"}, "text": {strings.Join(g.inputs, "*")}})
	if code != http.StatusOK {
		g.t.Fatalf("POST /ussd %q: %d %q", strings.Join(g.inputs, "*"), code, body)
	}
	checkAnswer(g.t, body)
	return body
}

func postTo(t testing.TB, srv *httptest.Server, form url.Values) (int, string) {
	t.Helper()
	resp, err := http.PostForm(srv.URL+"/ussd", form)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

// A dialogue whose every step reaches the other node than the one before completes a
// payment: each node continues the session the other left.
func TestDialogueAlternatesNodes(t *testing.T) {
	onPostgres(t, func(t *testing.T) {
		h := newHarness(t, nil)
		h.Wallet(alice, 100000)
		b := h.Wallet(bob, 0)
		ns := newNodes(t, h, h.Engine, 2)
		g, got := ns.dial(t, "alt-1", alice, 0)
		if got != mainScreen {
			t.Fatalf("dial: %q", got)
		}
		wantPrefix(t, g.send("1"), "CON Send money to which number?")
		wantPrefix(t, g.send("0700000002"), "CON Enter the amount in KES")
		wantContains(t, g.send("150"), "CON ", "KES 150.00", "Enter the code")
		got = g.send(h.code(alice))
		wantPrefix(t, got, "END ")
		wantContains(t, got, "confirmed", "KES 150.00")
		if p := h.paymentOfType(alice, payswitch.TransferPayment); p.State != payswitch.StateCompleted {
			t.Fatalf("transfer %+v", p)
		}
		if bal := h.Balance(b.ID); bal.Posted != 15000 {
			t.Fatalf("bob has %d, want 15000", bal.Posted)
		}
		// A repeat of the last request, on either node, answers the same END.
		for range 2 {
			if again := g.request(); again != got {
				t.Fatalf("repeat answered %q, want %q", again, got)
			}
		}
		if n := ns.menus[0].Sessions(); n != 1 || ns.menus[1].Sessions() != 1 {
			t.Fatalf("nodes count %d and %d sessions, want 1 each (one table)", n, ns.menus[1].Sessions())
		}
	})
}

// Limits hold across nodes: dials of one number on both nodes keep its newest
// maxPerNumber sessions, dials of many numbers the newest Max, and a continuation of an
// evicted session, on either node, hears that it ended.
func TestLimitsAcrossNodes(t *testing.T) {
	onPostgres(t, func(t *testing.T) {
		h := newHarness(t, nil)
		h.Wallet(alice, 100000)
		engine := everyoneRegistered{h.Engine}
		dbs := dbtest.Nodes(t, 2, store.Options{}, Schema)
		ns := &nodes{}
		for _, db := range dbs {
			m, err := New(engine, Config{ServiceCode: "*384#", Now: h.Clock.Now, Log: zerolog.Nop(), DB: db})
			if err != nil {
				t.Fatal(err)
			}
			srv := httptest.NewServer(m.Handler())
			t.Cleanup(srv.Close)
			ns.menus, ns.srvs = append(ns.menus, m), append(ns.srvs, srv)
		}
		var dials []*nodeGateway
		for i := range 7 {
			g, got := ns.dial(t, fmt.Sprintf("flood-%d", i), alice, i)
			if got != mainScreen {
				t.Fatalf("dial %d: %q", i, got)
			}
			dials = append(dials, g)
		}
		if n := ns.menus[0].Sessions(); n != maxPerNumber {
			t.Fatalf("%d sessions after 7 dials of one number, want %d", n, maxPerNumber)
		}
		wantPrefix(t, dials[3].send("4"), "END This session has ended.")
		for _, g := range dials[4:] {
			wantPrefix(t, g.send("4"), "CON My account")
		}
		evicted := ns.menus[0].evicted(false) + ns.menus[1].evicted(false)
		if evicted != 4 {
			t.Fatalf("nodes evicted %d sessions, want 4", evicted)
		}

		// The global limit, small here; eviction by dial order whichever node dialled.
		const limit = 10
		ns.limit(t, dbs, limit, maxPerNumber)
		var many []*nodeGateway
		for i := range 25 {
			g, got := ns.dial(t, fmt.Sprintf("many-%d", i), fmt.Sprintf("2547100%05d", i), i)
			if got != mainScreen {
				t.Fatalf("dial %d: %q", i, got)
			}
			many = append(many, g)
		}
		if n := ns.menus[1].Sessions(); n != limit {
			t.Fatalf("%d sessions after 25 dials, want %d", n, limit)
		}
		wantPrefix(t, many[14].send("4"), "END This session has ended.")
		wantPrefix(t, many[15].send("4"), "CON My account")
		wantPrefix(t, many[24].send("4"), "CON My account")

		// Dials of one number at once, on both nodes, still keep at most maxPerNumber.
		ns.limit(t, dbs, maxSessions, maxPerNumber)
		var wg sync.WaitGroup
		for i := range 16 {
			wg.Go(func() {
				body := ns.post(t, i, url.Values{"sessionId": {fmt.Sprintf("race-%d", i)}, "phoneNumber": {bob}})
				if body != mainScreen {
					t.Errorf("dial %d: %q", i, body)
				}
			})
		}
		wg.Wait()
		var n int
		if err := dbs[0].Reader().QueryRow(`SELECT count(*) FROM ussd_sessions WHERE phone = $1`, bob).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n != maxPerNumber {
			t.Fatalf("%d sessions of one number after 16 dials at once, want %d", n, maxPerNumber)
		}
	})
}

// post sends form to node i (modulo the nodes) and returns the body of a 200.
func (ns *nodes) post(t testing.TB, i int, form url.Values) string {
	t.Helper()
	code, body := postTo(t, ns.srvs[i%len(ns.srvs)], form)
	if code != http.StatusOK {
		t.Errorf("POST %v: %d %q", form, code, body)
	}
	return body
}

// The sweep runs on both nodes at once: the idle sessions go, once each, and the live
// ones stay.
func TestSweepOnTwoNodes(t *testing.T) {
	onPostgres(t, func(t *testing.T) {
		h := newHarness(t, nil)
		ns := newNodes(t, h, everyoneRegistered{h.Engine}, 2)
		for i := range 30 {
			ns.dial(t, fmt.Sprintf("old-%d", i), fmt.Sprintf("2547200%05d", i), i)
		}
		h.Clock.Advance(DefaultSessionTimeout - time.Second)
		var live []*nodeGateway
		for i := range 12 {
			g, _ := ns.dial(t, fmt.Sprintf("new-%d", i), fmt.Sprintf("2547300%05d", i), i)
			live = append(live, g)
		}
		h.Clock.Advance(2 * time.Second) // the first 30 are now idle too long
		var swept [2]int
		var wg sync.WaitGroup
		for i, m := range ns.menus {
			wg.Go(func() { swept[i] = m.Sweep() })
		}
		wg.Wait()
		if swept[0]+swept[1] != 30 {
			t.Fatalf("nodes swept %v sessions, want 30 in all", swept)
		}
		if n := ns.menus[0].Sessions(); n != 12 {
			t.Fatalf("%d sessions left, want 12", n)
		}
		for _, g := range live {
			wantPrefix(t, g.send("4"), "CON My account")
		}
	})
}

// blockingEngine holds BalanceText until released, counting calls.
type blockingEngine struct {
	Engine
	calls   atomic.Int32
	entered chan struct{}
	release chan struct{}
}

func (e *blockingEngine) BalanceText(ctx context.Context, msisdn string) (string, error) {
	e.calls.Add(1)
	e.entered <- struct{}{}
	<-e.release
	return e.Engine.BalanceText(ctx, msisdn)
}

// Two steps of one session at once, on two nodes, take turns as the session's mutex
// makes them in memory: the second waits for the first and, being a repeat, answers
// the same screen without acting again.
func TestConcurrentStepsOfOneSessionTakeTurns(t *testing.T) {
	onPostgres(t, func(t *testing.T) {
		h := newHarness(t, nil)
		h.Wallet(alice, 100000)
		e := &blockingEngine{Engine: h.Engine, entered: make(chan struct{}, 4), release: make(chan struct{})}
		ns := newNodes(t, h, e, 2)
		waiting := make(chan struct{}, 100)
		ns.menus[1].db.dialogues.Wait = func(ctx context.Context, attempt int) bool {
			select {
			case waiting <- struct{}{}:
			default:
			}
			return sessiondb.Backoff(ctx, attempt)
		}
		g, _ := ns.dial(t, "turns", alice, 0)
		g.send("4") // node 1: the account menu
		form := url.Values{"sessionId": {"turns"}, "phoneNumber": {alice}, "text": {"4*1"}}
		answers := make(chan string, 2)
		go func() { answers <- ns.post(t, 0, form) }()
		<-e.entered // node 0's step is inside the engine, holding the session
		go func() { answers <- ns.post(t, 1, form) }()
		<-waiting // node 1's step found the session busy and waits
		close(e.release)
		a, b := <-answers, <-answers
		if a != b || !strings.HasPrefix(a, "END ") {
			t.Fatalf("answers %q and %q, want the same END", a, b)
		}
		if n := e.calls.Load(); n != 1 {
			t.Fatalf("the engine was asked %d times, want once", n)
		}

		// Many at once on both nodes: one acts, every other answers the same.
		e2 := &blockingEngine{Engine: h.Engine, entered: make(chan struct{}, 100), release: make(chan struct{})}
		close(e2.release)
		for _, m := range ns.menus {
			m.engine = e2
		}
		g, _ = ns.dial(t, "crowd", alice, 0)
		g.send("4")
		form = url.Values{"sessionId": {"crowd"}, "phoneNumber": {alice}, "text": {"4*1"}}
		var wg sync.WaitGroup
		got := make([]string, 16)
		for i := range got {
			wg.Go(func() { got[i] = ns.post(t, i, form) })
		}
		wg.Wait()
		for _, s := range got[1:] {
			if s != got[0] {
				t.Fatalf("answers differ: %q and %q", got[0], s)
			}
		}
		if n := e2.calls.Load(); n != 1 {
			t.Fatalf("the engine was asked %d times by 16 copies of one request, want once", n)
		}
	})
}

// A request that names another number's session, on another node, is refused and
// leaves the session as it was; a pushed request answers only its own number over its
// own link, on any node.
func TestForgedContinuationRefusedAcrossNodes(t *testing.T) {
	onPostgres(t, func(t *testing.T) {
		h := newHarness(t, nil)
		h.Wallet(alice, 100000)
		h.Wallet(bob, 100000)
		ns := newNodes(t, h, h.Engine, 2)
		g, _ := ns.dial(t, "victim", alice, 0)
		wantPrefix(t, g.send("4"), "CON My account")
		code, body := postTo(t, ns.srvs[1], url.Values{"sessionId": {"victim"}, "phoneNumber": {bob}, "text": {"4*1"}})
		if code != http.StatusBadRequest {
			t.Fatalf("bob's step in alice's session: %d %q, want 400", code, body)
		}
		// alice goes on where she was, on the other node.
		got := g.send("1")
		wantPrefix(t, got, "END ")
		wantContains(t, got, "KES 1,000.00")

		// A push opened on node 0 is answered on node 1 by its number and link only.
		pe := &pushEngine{Engine: h.Engine}
		for _, m := range ns.menus {
			m.engine, m.decline = pe, pe
		}
		_, info, err := ns.menus[0].OpenPush("carrier-a", alice, pushID, pushText)
		if err != nil {
			t.Fatal(err)
		}
		ctx := context.Background()
		if reply, _, _ := ns.menus[1].HandleSMPP(ctx, "carrier-a", bob, OpUSSRConfirm, info, "1"); strings.Contains(reply, "code") {
			t.Fatalf("bob answered alice's push: %q", reply)
		}
		if reply, _, _ := ns.menus[1].HandleSMPP(ctx, "carrier-b", alice, OpUSSRConfirm, info, "1"); strings.Contains(reply, "code") {
			t.Fatalf("another link answered alice's push: %q", reply)
		}
		reply, end, err := ns.menus[1].HandleSMPP(ctx, "carrier-a", alice, OpUSSRConfirm, info, "1")
		if err != nil || end {
			t.Fatalf("alice's answer: %q %v %v", reply, end, err)
		}
		reply, end, err = ns.menus[0].HandleSMPP(ctx, "carrier-a", alice, OpUSSRConfirm, info, rightCode)
		if err != nil || !end || !strings.Contains(reply, "confirmed") {
			t.Fatalf("alice's code: %q %v %v", reply, end, err)
		}
		wantCalls(t, pe.called(), "confirm ussd "+alice+" "+pushID+" "+rightCode)
		// Opened again for the same payment after an answer: a new session number.
		if _, again, err := ns.menus[1].OpenPush("carrier-a", alice, pushID, pushText); err != nil || again[0] == info[0] {
			t.Fatalf("OpenPush after the answer: %x %v", again, err)
		}
	})
}

// On SQLite the sessions stay in memory even with a DB: one process serves them.
func TestSQLiteKeepsSessionsInMemory(t *testing.T) {
	h := newHarness(t, nil)
	db := dbtest.Open(t, store.Options{}, Schema)
	m, err := New(h.Engine, Config{DB: db})
	if err != nil {
		t.Fatal(err)
	}
	if m.db != nil {
		t.Fatal("a Menu on SQLite keeps its sessions in the database")
	}
}

// A session's state reads back as written, every field set; a damaged one is refused.
func TestSessionStateRoundTrip(t *testing.T) {
	s := &session{phone: alice, seen: 42, node: nodePage, lastEnd: true, consumed: 7, raw: "+" + alice,
		payment: "P1", field: "55501", product: "SUGAR", quantity: 3, last: "CON last",
		page: &paging{rest: "rest", opts: "1. Yes", shown: "shown", end: true, next: nodeBuyConfirm},
		push: &pushInfo{link: "carrier-a", number: 9, body: "body", opts: "1. Pay", answered: true}}
	b := encodeSession(s)
	got, err := decodeSession(sessiondb.Row{Phone: alice, Seen: 42, State: b})
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, s) {
		t.Fatalf("read back %+v, wrote %+v", got, s)
	}
	for _, bad := range [][]byte{nil, b[:len(b)-1], append(b[:len(b):len(b)], 0), {2}} {
		if _, err := decodeSession(sessiondb.Row{State: bad}); err == nil {
			t.Fatalf("state %x decoded", bad)
		}
	}
}
