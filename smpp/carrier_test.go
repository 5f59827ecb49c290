package smpp_test

// Carrier-grade behaviour of links and sender against the demo SMSC (tools/smscsim)
// over loopback SMPP: prefix routing over several links, failover, a link dropped under
// load, throttling and lost responses.

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/payswitch/payswitch/internal/dbtest"
	"github.com/payswitch/payswitch/outbox"
	"github.com/payswitch/payswitch/smpp"
	"github.com/payswitch/payswitch/store"
	"github.com/payswitch/payswitch/tools/smscsim"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
)

const (
	shortcode = "22333"
	waitLimit = 20 * time.Second
)

// mustStore opens a database with the outbox and the gateway's tables: a real SQLite
// file, or a PostgreSQL database inside pgtest.Both's postgres subtest.
func mustStore(t testing.TB) (*store.DB, *outbox.Outbox) {
	t.Helper()
	db := dbtest.Open(t, store.Options{Synchronous: "NORMAL"}, outbox.Schema, smpp.GatewaySchema)
	return db, outbox.New(db, nil)
}

// startSim starts a demo SMSC that accepts the given system_ids with password "pw".
func startSim(t testing.TB, systemIDs ...string) *smscsim.Sim {
	t.Helper()
	accounts := map[string]string{}
	for _, id := range systemIDs {
		accounts[id] = "pw"
	}
	sim, err := smscsim.Start(smscsim.Config{Accounts: accounts, Log: zerolog.Nop(), ReceiptDelay: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sim.Close() })
	return sim
}

// startLink binds a link named name to sim as system_id name, with short timings.
func startLink(t testing.TB, sim *smscsim.Sim, cfg smpp.LinkConfig, h smpp.Handler, reg prometheus.Registerer) *smpp.Link {
	t.Helper()
	cfg.Address, cfg.SystemID, cfg.Password = sim.Addr(), cfg.Name, "pw"
	if cfg.RespTimeout == 0 {
		cfg.RespTimeout = 5 * time.Second
	}
	if cfg.EnquireLink == 0 {
		cfg.EnquireLink = time.Minute
	}
	if h == nil {
		h = smpp.HandlerFuncs{}
	}
	l := smpp.NewLink(cfg, h, zerolog.Nop(), reg)
	smpp.SetLinkTimings(l, 5*time.Millisecond, 3*time.Second, 20*time.Millisecond)
	l.Start(context.Background())
	t.Cleanup(func() { l.Close() })
	return l
}

// waitState polls until every target reports state.
func waitState(t testing.TB, state string, targets ...smpp.Target) {
	t.Helper()
	deadline := time.Now().Add(waitLimit)
	for _, tg := range targets {
		for tg.State() != state {
			if time.Now().After(deadline) {
				t.Fatalf("%s is %s, gave up waiting for %s", tg.Name(), tg.State(), state)
			}
			time.Sleep(2 * time.Millisecond)
		}
	}
}

// runSender runs a sender over links (and affinities) until the test ends. It retries
// after 20 ms and does not give up.
func runSender(t testing.TB, o *outbox.Outbox, links []*smpp.Link, late time.Duration, affinity ...smpp.Affinity) {
	t.Helper()
	s := smpp.NewSender(o, links, zerolog.Nop())
	for _, a := range affinity {
		s.AddAffinity(a)
	}
	smpp.SetSenderTimings(s, 20*time.Millisecond, late, 1000)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("sender: %v", err)
		}
	})
}

// enqueue adds SMS from the shortcode as the engine does and kicks the sender.
func enqueue(t testing.TB, db *store.DB, o *outbox.Outbox, ms ...outbox.Message) []int64 {
	t.Helper()
	var ids []int64
	err := db.Write(context.Background(), func(tx store.Tx) error {
		ids = ids[:0]
		for _, m := range ms {
			m.Kind, m.From = outbox.KindSMS, shortcode
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

// waitMessage polls the outbox until message id satisfies cond.
func waitMessage(t testing.TB, o *outbox.Outbox, id int64, what string, cond func(outbox.Message) bool) outbox.Message {
	t.Helper()
	deadline := time.Now().Add(waitLimit)
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

func sent(m outbox.Message) bool {
	return m.State == outbox.StateSent || m.State == outbox.StateDelivered
}

// collector gathers every MT that phones of some SMSCs receive.
type collector struct {
	mu  sync.Mutex // guards mts
	mts []smscsim.MT
	wg  sync.WaitGroup
}

func collect(t testing.TB, sims ...*smscsim.Sim) *collector {
	c := &collector{}
	var stops []func()
	t.Cleanup(func() {
		for _, stop := range stops {
			stop()
		}
		c.wg.Wait()
	})
	for _, sim := range sims {
		ch, stop := sim.Subscribe("")
		stops = append(stops, stop)
		c.wg.Go(func() {
			for mt := range ch {
				c.mu.Lock()
				c.mts = append(c.mts, mt)
				c.mu.Unlock()
			}
		})
	}
	return c
}

// byText returns the MTs received so far, grouped by text.
func (c *collector) byText() map[string][]smscsim.MT {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := map[string][]smscsim.MT{}
	for _, mt := range c.mts {
		out[mt.Text] = append(out[mt.Text], mt)
	}
	return out
}

// waitFor polls until the collector holds at least n MTs with text.
func (c *collector) waitFor(t testing.TB, text string, n int) []smscsim.MT {
	t.Helper()
	deadline := time.Now().Add(waitLimit)
	for {
		got := c.byText()[text]
		if len(got) >= n {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d MT %q at the phones, want %d", len(got), text, n)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func TestPrefixRoutingAndFailover(t *testing.T) {
	db, o := mustStore(t)
	simA, simB := startSim(t, "carrier-a"), startSim(t, "carrier-b", "carrier-c")
	a := startLink(t, simA, smpp.LinkConfig{Name: "carrier-a", Prefixes: []string{"2547"}, Failover: "carrier-b"}, nil, nil)
	b := startLink(t, simB, smpp.LinkConfig{Name: "carrier-b", Prefixes: []string{"25471"}}, nil, nil)
	c := startLink(t, simB, smpp.LinkConfig{Name: "carrier-c"}, nil, nil) // [] = any
	waitState(t, smpp.StateBound, a, b, c)
	mts := collect(t, simA, simB)
	runSender(t, o, []*smpp.Link{a, b, c}, time.Second)

	send := func(to, text string) outbox.Message {
		t.Helper()
		id := enqueue(t, db, o, outbox.Message{To: to, Text: text})[0]
		return waitMessage(t, o, id, "sent", sent)
	}
	routes := []struct {
		name, to, want string
	}{
		{"prefix", "254700000001", "carrier-a"},
		{"longest prefix wins", "254710000001", "carrier-b"},
		{"no prefix matches: the link without prefixes", "255700000001", "carrier-c"},
	}
	for _, tc := range routes {
		t.Run(tc.name, func(t *testing.T) {
			text := "route " + tc.name
			m := send(tc.to, text)
			got := mts.waitFor(t, text, 1)
			if m.Link != tc.want || got[0].SystemID != tc.want || got[0].To != tc.to {
				t.Fatalf("outbox link %s, SMSC got it from %s for %s; want %s", m.Link, got[0].SystemID, got[0].To, tc.want)
			}
		})
	}

	// carrier-a goes down and stays down: its MT go over its failover link.
	simA.SetRefuseBinds(true)
	simA.DropConnections()
	waitState(t, smpp.StateDown, a)
	m := send("254700000002", "while carrier-a is down")
	if got := mts.waitFor(t, m.Text, 1); m.Link != "carrier-b" || got[0].SystemID != "carrier-b" {
		t.Fatalf("went over %s (%s), want the failover carrier-b", m.Link, got[0].SystemID)
	}

	// The failover goes down too: the MT waits in the outbox, and leaves over
	// carrier-a once it is back.
	simB.SetRefuseBinds(true)
	simB.DropConnections()
	waitState(t, smpp.StateDown, b, c)
	id := enqueue(t, db, o, outbox.Message{To: "254700000003", Text: "while both are down"})[0]
	waitMessage(t, o, id, "retried", func(m outbox.Message) bool {
		return m.Attempts >= 2 && strings.Contains(m.LastError, smpp.ErrNotBound.Error())
	})
	simA.SetRefuseBinds(false)
	m = waitMessage(t, o, id, "sent", sent)
	if got := mts.waitFor(t, m.Text, 1); m.Link != "carrier-a" || len(got) != 1 || got[0].SystemID != "carrier-a" {
		t.Fatalf("after rebind: link %s, %d MT %+v", m.Link, len(got), got)
	}
	for text, got := range mts.byText() {
		if len(got) != 1 {
			t.Errorf("%q reached the phone %d times", text, len(got))
		}
	}
}

// A link dropped while it carries a stream of MT loses none: every message reaches a
// phone, over the link or its failover. A submit_sm whose response was lost with the
// connection may have been taken by the SMSC, and is sent again (SMPP 3.4 has no way to
// ask); such a second copy is detectable, because every attempt at one outbox message
// carries the same user_message_reference, and there are at most as many as the
// link's window had in flight when it dropped.
func TestLinkDroppedUnderLoad(t *testing.T) {
	db, o := mustStore(t)
	simA, simB := startSim(t, "carrier-a"), startSim(t, "carrier-b")
	const window = 10
	a := startLink(t, simA, smpp.LinkConfig{Name: "carrier-a", Prefixes: []string{"2547"}, Failover: "carrier-b", Window: window}, nil, nil)
	b := startLink(t, simB, smpp.LinkConfig{Name: "carrier-b", Window: window}, nil, nil)
	waitState(t, smpp.StateBound, a, b)
	mts := collect(t, simA, simB)
	runSender(t, o, []*smpp.Link{a, b}, time.Second)

	const n = 400
	var msgs []outbox.Message
	for i := range n {
		msgs = append(msgs, outbox.Message{To: fmt.Sprintf("2547%08d", i%50), Text: fmt.Sprintf("load %03d", i)})
	}
	ids := enqueue(t, db, o, msgs...)
	// Drop carrier-a once some traffic went through it, and keep it down a moment.
	deadline := time.Now().Add(waitLimit)
	for len(simA.MTs("")) < n/8 {
		if time.Now().After(deadline) {
			t.Fatal("no traffic on carrier-a")
		}
		time.Sleep(time.Millisecond)
	}
	simA.SetRefuseBinds(true)
	simA.DropConnections()
	waitState(t, smpp.StateDown, a)
	for len(simB.MTs("")) < 10 { // traffic flows over carrier-b meanwhile
		if time.Now().After(deadline) {
			t.Fatal("nothing went over the failover link")
		}
		time.Sleep(time.Millisecond)
	}
	simA.SetRefuseBinds(false)

	for _, id := range ids {
		waitMessage(t, o, id, "sent", sent)
	}
	byText := mts.byText()
	dups, viaB := 0, 0
	for i, id := range ids {
		got := byText[msgs[i].Text]
		if len(got) == 0 {
			t.Fatalf("message %d %q never reached a phone", id, msgs[i].Text)
		}
		for _, mt := range got {
			if mt.To != msgs[i].To || mt.UserRef == 0 || mt.UserRef != got[0].UserRef {
				t.Fatalf("copy of %q to %s with user_message_reference %d, first %d", mt.Text, mt.To, mt.UserRef, got[0].UserRef)
			}
			if mt.SystemID == "carrier-b" {
				viaB++
			}
		}
		dups += len(got) - 1
	}
	if viaB == 0 {
		t.Fatal("nothing went over the failover link")
	}
	if dups > window {
		t.Fatalf("%d second copies, more than the %d submit_sm that can have been in flight at the drop", dups, window)
	}
	t.Logf("%d MT, %d over the failover, %d detectable second copies", n, viaB, dups)
}

// The SMSC throttles: the link pauses and sends the refused parts again, so every
// message arrives once, in the first outbox attempt.
func TestThrottlingBacksOffAndDelivers(t *testing.T) {
	db, o := mustStore(t)
	sim := startSim(t, "carrier-a")
	reg := prometheus.NewRegistry()
	a := startLink(t, sim, smpp.LinkConfig{Name: "carrier-a", Window: 5}, nil, reg)
	waitState(t, smpp.StateBound, a)
	mts := collect(t, sim)
	runSender(t, o, []*smpp.Link{a}, time.Second)
	// Five parts in flight share each pause, so no part meets more than two of the
	// eight refusals: none is handed back to the outbox.
	const throttled = 8
	sim.SetThrottle(throttled)
	var msgs []outbox.Message
	for i := range 20 {
		msgs = append(msgs, outbox.Message{To: "254700000001", Text: fmt.Sprintf("throttled %02d", i)})
	}
	ids := enqueue(t, db, o, msgs...)
	for i, id := range ids {
		m := waitMessage(t, o, id, "sent", sent)
		if got := mts.waitFor(t, msgs[i].Text, 1); len(got) != 1 {
			t.Fatalf("%q arrived %d times", msgs[i].Text, len(got))
		}
		if m.Attempts != 1 {
			t.Fatalf("message %d took %d outbox attempts; the link should have resent it itself", id, m.Attempts)
		}
	}
	st := a.Stats()
	if st.Throttled != throttled || st.Submitted != 20 || st.Failed != 0 || st.InFlight != 0 {
		t.Fatalf("stats %+v", st)
	}
	if v := metricValue(t, reg, "payswitch_smpp_submit_errors_total", "carrier-a", "status", "0x00000058"); v != throttled {
		t.Fatalf("submit_errors_total{status=0x58} = %v", v)
	}
	if v := metricValue(t, reg, "payswitch_smpp_messages_total", "carrier-a", "direction", "out"); v != 20 {
		t.Fatalf("messages_total{out} = %v", v)
	}
	if v := metricValue(t, reg, "payswitch_smpp_window_in_flight", "carrier-a"); v != 0 {
		t.Fatalf("window_in_flight = %v once all is answered", v)
	}
}

// A submit_sm whose response comes after the response timeout: within the late window
// the message counts as sent and is never sent again; after it the message is sent
// again, and the phone's second copy carries the same user_message_reference.
func TestResponseTimeout(t *testing.T) {
	tests := []struct {
		name       string
		delay      time.Duration // how late the SMSC answers the first submit_sm
		late       time.Duration // how long the link listens after its timeout
		copies     int
		attempts   int
		sameIDAsMT bool
	}{
		{"late answer within the window: sent once", 1200 * time.Millisecond, 5 * time.Second, 1, 1, true},
		{"answer lost: sent again, detectably", 4 * time.Second, 600 * time.Millisecond, 2, 2, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			db, o := mustStore(t)
			sim := startSim(t, "carrier-a")
			a := startLink(t, sim, smpp.LinkConfig{Name: "carrier-a", RespTimeout: 400 * time.Millisecond, EnquireLink: time.Hour}, nil, nil)
			smpp.SetLinkTimings(a, 5*time.Millisecond, tc.late, 20*time.Millisecond)
			waitState(t, smpp.StateBound, a)
			mts := collect(t, sim)
			runSender(t, o, []*smpp.Link{a}, tc.late)
			sim.SetResponseDelay(1, tc.delay)
			text := "Your code is 482913 " + tc.name
			id := enqueue(t, db, o, outbox.Message{To: "254700000001", Text: text})[0]
			got := mts.waitFor(t, text, tc.copies)
			m := waitMessage(t, o, id, "sent", func(m outbox.Message) bool { return sent(m) && m.Attempts == tc.attempts })
			if len(got) != tc.copies {
				t.Fatalf("%d copies at the phone, want %d", len(got), tc.copies)
			}
			if got[0].UserRef == 0 || got[len(got)-1].UserRef != got[0].UserRef {
				t.Fatalf("user_message_reference %d then %d: a resubmission must carry the same", got[0].UserRef, got[len(got)-1].UserRef)
			}
			if tc.sameIDAsMT && (len(m.MessageIDs) != 1 || m.MessageIDs[0] != got[0].ID) {
				t.Fatalf("outbox ids %v, the SMSC's late answer said %s", m.MessageIDs, got[0].ID)
			}
		})
	}
}

// metricValue reads one counter or gauge of reg whose link label is link (and, when
// given, whose label k equals v).
func metricValue(t testing.TB, reg *prometheus.Registry, name, link string, kv ...string) float64 {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
	metrics:
		for _, m := range f.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["link"] != link {
				continue
			}
			for i := 0; i+1 < len(kv); i += 2 {
				if labels[kv[i]] != kv[i+1] {
					continue metrics
				}
			}
			if c := m.GetCounter(); c != nil {
				return c.GetValue()
			}
			return m.GetGauge().GetValue()
		}
	}
	t.Fatalf("no %s{link=%q %v}", name, link, kv)
	return 0
}
