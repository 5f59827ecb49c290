package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/payswitch/payswitch/internal/pgtest"
	"github.com/payswitch/payswitch/tools/smscsim"
)

// startNodes starts n switches sharing one new PostgreSQL database, each with its own
// SMSC and HTTP listener, as n serve processes would (contract section 13). It skips
// the test when no PostgreSQL is installed (pgtest).
func startNodes(t *testing.T, n int, ttl, extra string) []*testSwitch {
	t.Helper()
	dbURL := pgtest.URL(t)
	nodes := make([]*testSwitch, n)
	for i := range nodes {
		nodes[i] = startSwitchOn(t, t.TempDir(), dbURL, ttl, extra)
	}
	return nodes
}

// nodesPhone is a phone whose MOs go to one node's SMSC (chosen per message) and which
// hears every node's SMSC: on PostgreSQL any node may send what the outbox holds.
type nodesPhone struct {
	t      *testing.T
	nodes  []*testSwitch
	msisdn string
	mt     chan smscsim.MT
}

func newNodesPhone(t *testing.T, nodes []*testSwitch, msisdn string) *nodesPhone {
	p := &nodesPhone{t: t, nodes: nodes, msisdn: msisdn, mt: make(chan smscsim.MT, 64)}
	for _, n := range nodes {
		ch, cancel := n.sim.Subscribe(msisdn)
		t.Cleanup(cancel)
		go func() {
			for m := range ch {
				p.mt <- m
			}
		}()
	}
	return p
}

// send sends text to the short code through node i's SMSC.
func (p *nodesPhone) send(i int, text string) {
	p.t.Helper()
	if err := p.nodes[i].sim.SendMO(context.Background(), p.msisdn, "22333", text); err != nil {
		p.t.Fatal(err)
	}
}

func (p *nodesPhone) expect(want ...string) string {
	p.t.Helper()
	return expectMT(p.t, p.mt, p.msisdn, want...)
}

// TestNodesShareAPayment: a payment begun on one node is confirmed on the other, the API
// of either sees the same books, and /healthz names the database host.
func TestNodesShareAPayment(t *testing.T) {
	nodes := startNodes(t, 2, "5m", "")
	n1, n2 := nodes[0], nodes[1]
	w := n1.open(map[string]string{"type": "wallet", "msisdn": alice, "name": "Alice"})
	m := n2.open(map[string]string{"type": "merchant", "code": "55501", "name": "Mama Mboga", "msisdn": mama})
	a := newNodesPhone(t, nodes, alice)
	n2.deposit(w.ID, 100000, "CASHIN-1")
	a.expect("deposited", "KES 1,000.00")

	a.send(0, "PAY 55501 150")
	code := codeIn(t, a.expect("KES 150.00", "Mama Mboga"))
	if b := n2.account(w.ID).Balance; b.Held != 15000 {
		t.Fatalf("held, as node 2 sees it: %+v", b)
	}
	a.send(1, code)
	a.expect("confirmed", "KES 150.00", "KES 850.00")
	for i, n := range nodes {
		if b := n.account(w.ID).Balance; b.Posted != 85000 || b.Held != 0 {
			t.Fatalf("payer on node %d: %+v", i+1, b)
		}
		if b := n.account(m.ID).Balance; b.Posted != 15000 {
			t.Fatalf("merchant on node %d: %+v", i+1, b)
		}
		var tb struct{ Balanced bool }
		if n.call("GET", "/api/v1/ledger/trial-balance", auditToken, nil, &tb); !tb.Balanced {
			t.Fatalf("trial balance off on node %d", i+1)
		}
		var h struct {
			Status   string
			Database struct {
				OK   bool
				Host string
			}
		}
		if code := n.call("GET", "/healthz", "", nil, &h); code != 200 || !h.Database.OK || !strings.HasPrefix(h.Database.Host, "127.0.0.1:") {
			t.Fatalf("healthz of node %d: %d %+v", i+1, code, h)
		}
	}
	// The same deposit reference on the other node credits nothing.
	n1.deposit(w.ID, 100000, "CASHIN-1")
	if b := n2.account(w.ID).Balance; b.Posted != 85000 {
		t.Fatalf("a repeated deposit reference credited again: %+v", b)
	}
}

// TestNodesKeepOnePaymentWaitingPerNumber: the same number's PAY reaches both nodes at
// once; one payment waits for its code, the other PAY is refused, and one hold is taken.
func TestNodesKeepOnePaymentWaitingPerNumber(t *testing.T) {
	nodes := startNodes(t, 2, "5m", "")
	w := nodes[0].open(map[string]string{"type": "wallet", "msisdn": alice, "name": "Alice"})
	nodes[0].open(map[string]string{"type": "merchant", "code": "55501", "name": "Mama Mboga"})
	a := newNodesPhone(t, nodes, alice)
	nodes[0].deposit(w.ID, 100000, "CASHIN-1")
	a.expect("deposited")
	var wg sync.WaitGroup
	for i := range nodes {
		wg.Go(func() { a.send(i, "PAY 55501 150") })
	}
	wg.Wait()
	got := []string{a.expect(), a.expect()}
	codes := 0
	for _, text := range got {
		if strings.Contains(text, "Never share") {
			codes++
		}
	}
	if codes != 1 {
		t.Fatalf("two PAY at once on two nodes: %q, want one code and one refusal", got)
	}
	if b := nodes[1].account(w.ID).Balance; b.Held != 15000 {
		t.Fatalf("held %+v, want one payment's", b)
	}
}

// TestUSSDDialogueMovesBetweenNodes: the gateway sends each step of one USSD session to
// whichever node it likes; the dialogue carries on and the payment completes.
func TestUSSDDialogueMovesBetweenNodes(t *testing.T) {
	nodes := startNodes(t, 2, "5m", "")
	w := nodes[0].open(map[string]string{"type": "wallet", "msisdn": alice, "name": "Alice"})
	nodes[0].open(map[string]string{"type": "merchant", "code": "55501", "name": "Mama Mboga"})
	a := newNodesPhone(t, nodes, alice)
	nodes[0].deposit(w.ID, 100000, "CASHIN-1")
	a.expect("deposited")
	steps := 0
	step := func(text string) string {
		n := nodes[steps%2]
		steps++
		return ussdStep(t, n.base, "S1", "+254700000001", text)
	}
	if got := step(""); !strings.HasPrefix(got, "CON ") || !strings.Contains(got, "2. Pay merchant") {
		t.Fatalf("menu = %q", got)
	}
	step("2")
	step("2*55501")
	if got := step("2*55501*150"); !strings.HasPrefix(got, "CON") {
		t.Fatalf("after amount = %q", got)
	}
	code := codeIn(t, a.expect("KES 150.00"))
	if got := step("2*55501*150*" + code); !strings.HasPrefix(got, "END") || !strings.Contains(got, "confirmed") {
		t.Fatalf("after code = %q", got)
	}
	if b := nodes[1].account(w.ID).Balance; b.Posted != 85000 {
		t.Fatalf("balance %+v", b)
	}
}

// TestNodesStartingAtOnceMigrateOnce: two serve processes start on one empty database at
// the same moment; one makes the tables, the other waits for it, and both serve.
func TestNodesStartingAtOnceMigrateOnce(t *testing.T) {
	dbURL := pgtest.URL(t)
	nodes := make([]*testSwitch, 2)
	var wg sync.WaitGroup
	for i := range nodes {
		sim, err := smscsim.Start(smscsim.Config{Listen: "127.0.0.1:0", Accounts: map[string]string{"payswitch": "pw"}, Log: zerolog.Nop()})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { sim.Close() })
		nodes[i] = &testSwitch{t: t, dir: t.TempDir(), sim: sim, ttl: "5m", clock: &switchClock{}, dbURL: dbURL}
	}
	errs := make([]error, len(nodes))
	for i, n := range nodes {
		cfg := n.config()
		wg.Go(func() {
			a, err := startAppWith(context.Background(), cfg, zerolog.Nop(), appOptions{Now: n.clock.now})
			if err == nil {
				n.app, n.base = a, "http://"+a.httpAddr
				t.Cleanup(func() { a.Close() })
			}
			errs[i] = err
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatalf("two nodes starting at once: %v", err)
	}
	w := nodes[0].open(map[string]string{"type": "wallet", "msisdn": alice, "name": "Alice"})
	nodes[1].deposit(w.ID, 5000, "CASHIN-1")
	if b := nodes[0].account(w.ID).Balance; b.Posted != 5000 {
		t.Fatalf("balance %+v", b)
	}
}

// TestUnreachableDatabaseStopsTheStartWithAMessage: a database.url where nothing
// listens ends the start quickly, naming the database without its password.
func TestUnreachableDatabaseStopsTheStartWithAMessage(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	s := &testSwitch{t: t, dir: t.TempDir(), ttl: "5m", clock: &switchClock{},
		dbURL: fmt.Sprintf("postgres://payswitch:s3cret@%s/payswitch?sslmode=disable", addr)}
	sim, err := smscsim.Start(smscsim.Config{Listen: "127.0.0.1:0", Accounts: map[string]string{"payswitch": "pw"}, Log: zerolog.Nop()})
	if err != nil {
		t.Fatal(err)
	}
	defer sim.Close()
	s.sim = sim
	start := time.Now()
	_, err = startApp(context.Background(), s.config(), zerolog.Nop())
	if err == nil {
		t.Fatal("serve started without its database")
	}
	if msg := err.Error(); !strings.Contains(msg, "unreachable") || !strings.Contains(msg, addr) || strings.Contains(msg, "s3cret") {
		t.Fatalf("start error %q: want it to say the database at %s is unreachable, without the password", msg, addr)
	}
	if took := time.Since(start); took > 20*time.Second {
		t.Fatalf("start took %s to give up", took)
	}
}
