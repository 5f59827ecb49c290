package smpp_test

// Two switch nodes on one PostgreSQL database, each running a Gateway that the same
// ESME binds to (contract section 13): pins written on either node route answers on the
// other; a receipt recorded on one node reaches the ESME through whichever node it can
// receive on, exactly once, and never ahead of the submit_sm_resp that gives its id.

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	smppcli "github.com/fiorix/go-smpp/smpp"
	"github.com/fiorix/go-smpp/smpp/pdu"
	"github.com/fiorix/go-smpp/smpp/pdu/pdufield"
	"github.com/fiorix/go-smpp/smpp/pdu/pdutlv"
	"github.com/payswitch/payswitch/internal/dbtest"
	"github.com/payswitch/payswitch/internal/pgtest"
	"github.com/payswitch/payswitch/outbox"
	"github.com/payswitch/payswitch/smpp"
	"github.com/payswitch/payswitch/store"
	"github.com/rs/zerolog"
)

// nodePoll is how often the test's gateways look for receipts other nodes recorded.
const nodePoll = 20 * time.Millisecond

// twoNodes are two gateways on one database, each with its own handler and clock.
type twoNodes struct {
	dbs    []*store.DB
	gs     []*smpp.Gateway
	sinks  []*moSink
	clocks []*testClock
}

// onTwoNodes runs test with two gateways on one PostgreSQL database, as a subtest named
// "postgres" (on SQLite one process owns the file: there is no second node).
func onTwoNodes(t *testing.T, test func(t *testing.T, n twoNodes)) {
	t.Run(pgtest.PostgresSubtest, func(t *testing.T) {
		n := twoNodes{dbs: dbtest.Nodes(t, 2, store.Options{}, outbox.Schema, smpp.GatewaySchema)}
		for _, db := range n.dbs {
			sink, clock := newMOSink(), &testClock{}
			g, err := smpp.NewGateway(gatewayConfig(), db, sink, zerolog.Nop(), nil)
			if err != nil {
				t.Fatal(err)
			}
			smpp.SetGatewayReceiptPoll(g, nodePoll)
			smpp.SetGatewayClock(g, clock.now)
			if err := g.Start(); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { g.Close() })
			n.gs = append(n.gs, g)
			n.sinks = append(n.sinks, sink)
			n.clocks = append(n.clocks, clock)
		}
		test(t, n)
	})
}

// receiptID is the receipted_message_id of a receipt.
func receiptID(p pdu.Body) string {
	return strings.TrimRight(string(p.TLVFields()[pdutlv.TagReceiptedMessageID].Bytes()), "\x00")
}

// bindReceiver binds a go-smpp Receiver of user to addr; deliver_sm land in the channel.
func bindReceiver(t *testing.T, addr, user, password string) <-chan pdu.Body {
	t.Helper()
	dl := make(chan pdu.Body, 200)
	rx := &smppcli.Receiver{Addr: addr, User: user, Passwd: password, BindInterval: time.Hour,
		Handler: func(p pdu.Body) {
			if p.Header().ID == pdu.DeliverSMID {
				dl <- p
			}
		}}
	t.Cleanup(func() { rx.Close() })
	if st := <-rx.Bind(); st.Status() != smppcli.Connected {
		t.Fatalf("bind receiver: %v", st.Error())
	}
	return dl
}

// bindTransmitter binds a go-smpp Transmitter of user to addr.
func bindTransmitter(t *testing.T, addr, user, password string) *smppcli.Transmitter {
	t.Helper()
	tx := &smppcli.Transmitter{Addr: addr, User: user, Passwd: password, RespTimeout: 5 * time.Second, BindInterval: time.Hour}
	t.Cleanup(func() { tx.Close() })
	if st := <-tx.Bind(); st.Status() != smppcli.Connected {
		t.Fatalf("bind transmitter: %v", st.Error())
	}
	return tx
}

// awaitNoReceiptRows waits until every receipt of the database is delivered and
// forgotten.
func awaitNoReceiptRows(t *testing.T, db *store.DB) {
	t.Helper()
	deadline := time.Now().Add(waitLimit)
	for {
		var n int
		if err := db.Reader().QueryRow(`SELECT count(*) FROM smpp_server_receipts`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d receipts still owed", n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// An ESME whose transmitter is bound to one node and receiver to the other gets the
// receipt of every MO it sent, from the other node, once.
func TestGatewayNodesReceiptReachesTheOtherNode(t *testing.T) {
	onTwoNodes(t, func(t *testing.T, n twoNodes) {
		dbs, gs, sinks := n.dbs, n.gs, n.sinks
		tx := bindTransmitter(t, gs[0].Addr(), "agg-x", "secret-x")
		dl := bindReceiver(t, gs[1].Addr(), "agg-x", "secret-x")
		want := map[string]bool{}
		for i := range 20 {
			id, err := submitRD(t, tx, fmt.Sprintf("2547000001%02d", i), "BAL", pdufield.FinalDeliveryReceipt)
			if err != nil {
				t.Fatal(err)
			}
			sinks[0].take(t)
			want[id] = true
		}
		for range len(want) {
			r := expectReceipt(t, dl)
			if !want[r.id] {
				t.Fatalf("receipt for %q: not owed, or twice", r.id)
			}
			delete(want, r.id)
			r.check(t, r.id, "DELIVRD")
		}
		awaitNoReceiptRows(t, dbs[0])
		select {
		case p := <-dl:
			t.Fatalf("a receipt beyond those owed: %q", receiptID(p))
		default:
		}
	})
}

// An ESME bound to both nodes, sending from both at once, gets each receipt exactly once
// over its two receivers: the nodes claim the rows, they never both send one.
func TestGatewayNodesSendEachReceiptOnce(t *testing.T) {
	onTwoNodes(t, func(t *testing.T, n twoNodes) {
		dbs, gs := n.dbs, n.gs
		const perNode = 40
		dls := []<-chan pdu.Body{bindReceiver(t, gs[0].Addr(), "agg-y", "secret-y"), bindReceiver(t, gs[1].Addr(), "agg-y", "secret-y")}
		txs := []*smppcli.Transmitter{bindTransmitter(t, gs[0].Addr(), "agg-y", "secret-y"), bindTransmitter(t, gs[1].Addr(), "agg-y", "secret-y")}
		var mu sync.Mutex
		owed := map[string]bool{}
		var wg sync.WaitGroup
		for n, tx := range txs {
			wg.Go(func() {
				for i := range perNode {
					id, err := submitRD(t, tx, fmt.Sprintf("254700%d%05d", n, i), "BAL", pdufield.FinalDeliveryReceipt)
					if err != nil {
						t.Error(err)
						return
					}
					mu.Lock()
					owed[id] = true
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		if t.Failed() {
			return
		}
		got := map[string]int{}
		byNode := [2]int{}
		deadline := time.After(waitLimit)
		for len(got) < 2*perNode {
			select {
			case p := <-dls[0]:
				got[receiptID(p)]++
				byNode[0]++
			case p := <-dls[1]:
				got[receiptID(p)]++
				byNode[1]++
			case <-deadline:
				t.Fatalf("%d receipts of %d reached the ESME", len(got), 2*perNode)
			}
		}
		awaitNoReceiptRows(t, dbs[0])
		// Anything sent twice would have been sent before its row was deleted.
		for _, dl := range dls {
			select {
			case p := <-dl:
				got[receiptID(p)]++
			default:
			}
		}
		for id, n := range got {
			if !owed[id] || n != 1 {
				t.Errorf("receipt for %q came %d times (owed: %v)", id, n, owed[id])
			}
		}
		t.Logf("receipts sent by node 1: %d, node 2: %d", byNode[0], byNode[1])
	})
}

// blockingSink holds each MO in its handler until released, as a slow switch would.
type blockingSink struct {
	*moSink
	entered chan struct{}
	release chan struct{}
}

func (s *blockingSink) HandleMO(ctx context.Context, m smpp.MO) error {
	s.entered <- struct{}{}
	<-s.release
	return s.moSink.HandleMO(ctx, m)
}

// The receipt is recorded on the node that takes the MO while the switch handles it,
// before the submit_sm_resp: the other node, where the ESME receives, leaves it alone
// until the answer giving its id is written.
func TestGatewayNodesReceiptWaitsForTheAnswer(t *testing.T) {
	t.Run(pgtest.PostgresSubtest, func(t *testing.T) {
		dbs := dbtest.Nodes(t, 2, store.Options{}, outbox.Schema, smpp.GatewaySchema)
		slow := &blockingSink{moSink: newMOSink(), entered: make(chan struct{}, 1), release: make(chan struct{})}
		var gs []*smpp.Gateway
		for i, h := range []smpp.Handler{slow, newMOSink()} {
			g, err := smpp.NewGateway(gatewayConfig(), dbs[i], h, zerolog.Nop(), nil)
			if err != nil {
				t.Fatal(err)
			}
			smpp.SetGatewayReceiptPoll(g, nodePoll)
			if err := g.Start(); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { g.Close() })
			gs = append(gs, g)
		}
		tx := bindTransmitter(t, gs[0].Addr(), "agg-x", "secret-x")
		dl := bindReceiver(t, gs[1].Addr(), "agg-x", "secret-x")
		var releaseOnce sync.Once
		release := func() { releaseOnce.Do(func() { close(slow.release) }) }
		t.Cleanup(release) // before the gateways close, which wait for the handler
		type answer struct {
			id  string
			err error
		}
		answered := make(chan answer, 1)
		go func() {
			id, err := submitRD(t, tx, "254700000001", "BAL", pdufield.FinalDeliveryReceipt)
			answered <- answer{id, err}
		}()
		<-slow.entered
		awaitReceipts(t, dbs[1], "agg-x", 1)
		// Many of the other node's polls pass while the handler works.
		select {
		case p := <-dl:
			t.Fatalf("receipt for %q sent before its submit_sm_resp", receiptID(p))
		case <-time.After(15 * nodePoll):
		}
		release()
		a := <-answered
		if a.err != nil {
			t.Fatal(a.err)
		}
		expectReceipt(t, dl).check(t, a.id, "DELIVRD")
	})
}

// A number's pin written through one node routes its answers on the other; of two
// pins written at once, the later MO's stays.
func TestGatewayNodesSharePins(t *testing.T) {
	onTwoNodes(t, func(t *testing.T, n twoNodes) {
		dbs, gs, sinks := n.dbs, n.gs, n.sinks
		ctx := context.Background()
		x := mustBind(t, gs[0].Addr(), "agg-x", "secret-x")
		if _, err := x.submit("254700000001", shortcode, "BAL"); err != nil {
			t.Fatal(err)
		}
		sinks[0].take(t)
		if pin, err := gs[1].TargetFor(ctx, "254700000001"); err != nil || pin.Target != "server:agg-x" {
			t.Fatalf("the other node routes to %q %v, want server:agg-x", pin.Target, err)
		}
		y := mustBind(t, gs[1].Addr(), "agg-y", "secret-y")
		if _, err := y.submit("254700000001", shortcode, "BAL"); err != nil {
			t.Fatal(err)
		}
		sinks[1].take(t)
		if pin, err := gs[0].TargetFor(ctx, "254700000001"); err != nil || pin.Target != "server:agg-y" {
			t.Fatalf("the first node routes to %q %v, want server:agg-y", pin.Target, err)
		}
		// A pin stamped earlier (a node whose clock is behind) does not replace a later one.
		n.clocks[0].advance(-time.Minute)
		if _, err := x.submit("254700000001", shortcode, "BAL"); err != nil {
			t.Fatal(err)
		}
		sinks[0].take(t)
		var sid string
		if err := dbs[0].Reader().QueryRow(`SELECT system_id FROM smpp_server_pins WHERE msisdn = '254700000001'`).Scan(&sid); err != nil || sid != "agg-y" {
			t.Fatalf("pin %q %v after an older write, want agg-y", sid, err)
		}
	})
}
