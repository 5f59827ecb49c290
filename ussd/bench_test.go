package ussd

import (
	"context"
	"fmt"
	"runtime"
	"sync/atomic"
	"testing"

	payswitch "github.com/payswitch/payswitch/switch"
)

// BenchmarkUSSDSessions holds 100,000 dialogues open at once, each at the account menu,
// and reports the memory they take; each timed step is one dialogue's next input
// (back to the main menu, or into the account menu again) among all of them. The
// engine is real but these inputs do not reach the database: this measures the menus
// and their session store, not SQLite.
func BenchmarkUSSDSessions(b *testing.B) {
	const sessions = 100_000
	h := newHarness(b, nil)
	// Every number has an account, without 100,000 of them in the database.
	h.menu.engine = everyoneRegistered{h.Engine}
	ctx := context.Background()
	id := func(i int) string { return fmt.Sprintf("http:ATUid_%016x", i*7919) }
	phone := func(i int) string { return fmt.Sprintf("2547%08d", i) }

	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	for i := range sessions {
		in := Input{SessionID: id(i), Phone: phone(i), Text: ""}
		if _, err := h.menu.Step(ctx, in); err != nil {
			b.Fatal(err)
		}
		in.Text = "4"
		if scr, err := h.menu.Step(ctx, in); err != nil || scr.End {
			b.Fatal(scr, err)
		}
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	if n := h.menu.Sessions(); n != sessions {
		b.Fatalf("%d sessions", n)
	}
	heap := float64(after.HeapAlloc) - float64(before.HeapAlloc)

	// Each session alternates between the main menu and the account menu.
	inputs := [2]string{"0", "4"}
	parity := make([]atomic.Uint32, sessions)
	var next atomic.Uint64
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			i := int(next.Add(7919) % sessions)
			p := parity[i].Add(1) % 2
			in := Input{SessionID: id(i), Phone: phone(i), Incremental: true, NewInput: inputs[p]}
			scr, err := h.menu.Step(ctx, in)
			if err != nil || scr.End {
				b.Fatal(scr, err)
			}
		}
	})
	b.StopTimer()
	// Reported after the timed part: ResetTimer clears reported metrics.
	b.ReportMetric(heap/(1<<20), "MB/100k-sessions")
	b.ReportMetric(heap/sessions, "B/session")
	if n := h.menu.Sessions(); n != sessions {
		b.Fatalf("%d sessions after the steps", n)
	}
}

// everyoneRegistered is the engine with an account for every number.
type everyoneRegistered struct{ *payswitch.Engine }

func (everyoneRegistered) HasAccount(context.Context, string) (bool, error) { return true, nil }

// BenchmarkUSSDBalanceStep is a step that reaches the database: a dialogue's last input
// answers the balance (the engine reads it inside a store transaction). It shows what a
// database step adds to the menus' own cost.
func BenchmarkUSSDBalanceStep(b *testing.B) {
	h := newHarness(b, nil)
	h.Wallet(alice, 100000)
	ctx := context.Background()
	n := 0
	b.ReportAllocs()
	for b.Loop() {
		n++
		sid := fmt.Sprintf("b%d", n)
		h.menu.Step(ctx, Input{SessionID: sid, Phone: alice, Incremental: true, Begin: true, NewInput: "4"})
		scr, err := h.menu.Step(ctx, Input{SessionID: sid, Phone: alice, Incremental: true, NewInput: "1"})
		if err != nil || !scr.End {
			b.Fatal(scr, err)
		}
	}
}
