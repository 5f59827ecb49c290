package webhook

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/payswitch/payswitch/internal/pgtest"

	"github.com/payswitch/payswitch/store"
)

// node is another switch node on the rig's database: its own store.DB and Hooks, with
// the rig's configuration and clock. On SQLite, which one process delivers from, it is
// the rig's own Hooks.
func (r *rig) node() *Hooks {
	r.t.Helper()
	if r.url == "" {
		return r.h
	}
	db, err := r.openDB()
	if err != nil {
		r.t.Fatal(err)
	}
	r.t.Cleanup(func() { db.Close() })
	h, err := New(db, r.cfg)
	if err != nil {
		r.t.Fatal(err)
	}
	return h
}

// Eight writers on two nodes queue one event at once: one row, and every writer's
// change commits (the others' Enqueue finds the first's event and queues nothing).
func testNodesEnqueueOneEvent(t *testing.T) {
	r := newRig(t, nil)
	r.setEndpoint("M1", "https://shop.example/a", secretA)
	nodes := []*Hooks{r.h, r.node()}
	for round := range 20 {
		subject := fmt.Sprintf("PAY%07d", round)
		var start, wg sync.WaitGroup
		start.Add(1)
		for i := range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				h := nodes[i%2]
				start.Wait()
				if err := h.db.Write(ctx, func(tx store.Tx) error {
					return h.Enqueue(ctx, tx, "M1", PaymentCompleted, subject, []byte(payment), r.clock.Now())
				}); err != nil {
					t.Errorf("enqueue %d: %v", i, err)
				}
			}()
		}
		start.Done()
		wg.Wait()
		if n := r.count(`SELECT count(*) FROM webhook_events WHERE subject = ?`, subject); n != 1 {
			t.Fatalf("round %d: %d events, want 1", round, n)
		}
	}
}

// Two nodes deliver from one queue at once: every event reaches its merchant once, and
// is recorded delivered once.
func testNodesDeliverEachEventOnce(t *testing.T) {
	const merchants, perMerchant = 6, 40
	var mu sync.Mutex
	got := map[string]int{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		var e struct{ ID string }
		if err := json.NewDecoder(req.Body).Decode(&e); err != nil {
			t.Errorf("body: %v", err)
		}
		mu.Lock()
		got[e.ID]++
		mu.Unlock()
	}))
	t.Cleanup(srv.Close)
	r := newRig(t, func(c *Config) { c.Workers = 4; c.PerMerchant = 2 })
	for m := range merchants {
		r.setEndpoint(fmt.Sprintf("M%d", m), srv.URL, secretA)
	}
	for i := range merchants * perMerchant {
		r.enqueue(fmt.Sprintf("M%d", i%merchants), PaymentCompleted, fmt.Sprintf("PAY%07d", i), payment)
	}
	r.h.finished, r.h.idle = nil, nil // nothing reads them here
	runCtx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	nodes := []*Hooks{r.h}
	if r.url != "" { // SQLite has one deliverer per file
		nodes = append(nodes, r.node())
	}
	for _, h := range nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := h.Run(runCtx); err != nil {
				t.Errorf("Run: %v", err)
			}
		}()
	}
	defer func() { cancel(); wg.Wait() }()
	deadline := time.Now().Add(3 * waitLimit)
	for r.count(`SELECT count(*) FROM webhook_events WHERE state = 'delivered'`) < merchants*perMerchant {
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d delivered", r.count(`SELECT count(*) FROM webhook_events WHERE state = 'delivered'`),
				merchants*perMerchant)
		}
		time.Sleep(10 * time.Millisecond) // polls the workers' progress; no lifetime is waited out
	}
	cancel()
	wg.Wait()
	mu.Lock()
	defer mu.Unlock()
	if len(got) != merchants*perMerchant {
		t.Fatalf("%d events reached merchants, want %d", len(got), merchants*perMerchant)
	}
	for id, n := range got {
		if n != 1 {
			t.Fatalf("event %s delivered %d times", id, n)
		}
	}
	if n := r.count(`SELECT count(*) FROM webhook_events WHERE state = 'delivered' AND attempts = 1 AND last_at > 0`); n != merchants*perMerchant {
		t.Fatalf("%d attempts recorded, want %d", n, merchants*perMerchant)
	}
}

// A merchant paused by one node is left out of every node's claims, its events queued
// during the pause too, until the pause ends or its endpoint is set again.
func TestPauseHoldsOnEveryNodeOnPostgres(t *testing.T) {
	t.Run("postgres", func(t *testing.T) {
		r := newRig(t, nil)
		other := r.node()
		r.setEndpoint("M1", "https://shop.example/a", secretA)
		if err := r.h.pauseMerchant(ctx, "M1", r.clock.Now().Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
		r.enqueue("M1", PaymentCompleted, "PAY0000001", payment)
		if cs, _, err := other.claim(ctx, 10, nil, nil); err != nil || len(cs) != 0 {
			t.Fatalf("the other node claimed %d events of a paused merchant: %v", len(cs), err)
		}
		if next, ok, err := other.nextDue(ctx, nil); err != nil || !ok || !next.Equal(r.clock.Now().Add(time.Hour)) {
			t.Fatalf("next due %v %v %v, want the pause's end", next, ok, err)
		}
		r.clock.Advance(time.Hour)
		if cs, _, err := other.claim(ctx, 10, nil, nil); err != nil || len(cs) != 1 {
			t.Fatalf("after the pause the other node claimed %d: %v", len(cs), err)
		}
		if err := r.h.pauseMerchant(ctx, "M1", r.clock.Now().Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
		r.enqueue("M1", PaymentCompleted, "PAY0000002", payment)
		r.setEndpoint("M1", "https://shop.example/b", secretA)
		if cs, _, err := other.claim(ctx, 10, nil, nil); err != nil || len(cs) != 1 || cs[0].url != "https://shop.example/b" {
			t.Fatalf("after a new endpoint the other node claimed %+v: %v", cs, err)
		}
	})
}

func TestNodesEnqueueOneEvent(t *testing.T)      { pgtest.Both(t, testNodesEnqueueOneEvent) }
func TestNodesDeliverEachEventOnce(t *testing.T) { pgtest.Both(t, testNodesDeliverEachEventOnce) }
