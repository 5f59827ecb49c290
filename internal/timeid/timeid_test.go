package timeid

import (
	"regexp"
	"strings"
	"testing"
	"time"
)

var layout = Layout{Prefix: "TR", Alphabet: "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ", Tick: 100 * time.Millisecond,
	Epoch: time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC), TickSymbols: 7, SeqSymbols: 5}

var form = regexp.MustCompile(`^TR[0-9A-Z]{12}$`)

func TestIDsSortByTimeAndNeverRepeat(t *testing.T) {
	g := New(layout)
	at := time.Date(2026, 7, 1, 10, 0, 0, 0, time.UTC)
	seen := map[string]bool{}
	prev := ""
	for _, step := range []struct {
		name  string
		clock time.Duration // added to the clock before the ids
		n     int
	}{
		{"first tick", 0, 3},
		{"same tick", 50 * time.Millisecond, 3},
		{"next ticks", time.Second, 3},
		{"clock set back", -time.Hour, 3},
		{"clock forward again", 2 * time.Hour, 3},
	} {
		at = at.Add(step.clock)
		for range step.n {
			id := g.Next(at)
			if !form.MatchString(id) {
				t.Fatalf("%s: id %q, want TR and 12 letters or digits", step.name, id)
			}
			if seen[id] || id <= prev {
				t.Errorf("%s: id %q after %q: want each id new and after the one before", step.name, id, prev)
			}
			seen[id], prev = true, id
		}
	}
	// A full tick borrows the next one.
	started, tick, _ := g.State()
	g.SetState(started, tick, g.SeqsPerTick()-1)
	if id := g.Next(at); id <= prev {
		t.Errorf("after a full tick: id %q after %q", id, prev)
	}
	if _, next, _ := g.State(); next != tick+1 {
		t.Errorf("after a full tick: tick %d, want %d", next, tick+1)
	}
	// Before the epoch every id is in tick 0, still new.
	early := New(layout)
	a, b := early.Next(layout.Epoch.Add(-time.Hour)), early.Next(layout.Epoch.Add(-time.Hour))
	if a[:2+layout.TickSymbols] != "TR0000000" || a == b {
		t.Errorf("ids before the epoch: %q, %q", a, b)
	}
}

// Ten letters, as payment ids are written: a tick's worth and more, in order; Reseed
// goes on above where the tick started.
func TestLettersOnlyAndReseed(t *testing.T) {
	letters := "ABCDEFGHJKLMNPQRSTUVWXYZ"
	g := New(Layout{Alphabet: letters, Tick: 10 * time.Second, Epoch: layout.Epoch, TickSymbols: 6, SeqSymbols: 4})
	now := time.Date(2026, 11, 21, 23, 0, 0, 0, time.UTC)
	prev := ""
	for i := range 400_000 { // more than a tick holds
		id := g.Next(now)
		if len(id) != 10 || strings.Trim(id, letters) != "" || id <= prev {
			t.Fatalf("id %d %q after %q", i, id, prev)
		}
		prev = id
	}
	g.Next(now.Add(time.Hour))
	g.Reseed()
	if _, _, seq := g.State(); seq < g.SeqsPerTick()/2 || seq >= g.SeqsPerTick()*3/4 {
		t.Errorf("after Reseed the sequence is at %d of %d, want its third quarter", seq, g.SeqsPerTick())
	}
}

func TestAlphabetOutOfOrderIsRefused(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Fatal("New accepted an alphabet that does not sort")
		}
	}()
	New(Layout{Alphabet: "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789", Tick: time.Second, TickSymbols: 4, SeqSymbols: 4})
}

// Floor sorts below every id made at its time or later and above every id made before.
func TestFloorSortsBetweenTicks(t *testing.T) {
	g := New(layout)
	at := time.Date(2026, 7, 1, 10, 0, 0, 0, time.UTC)
	before := g.Next(at.Add(-layout.Tick))
	first := g.Next(at)
	floor := g.Floor(at)
	if !form.MatchString(floor) || !(before < floor && floor <= first) {
		t.Fatalf("Floor %q: want between %q (a tick before) and %q (at its time)", floor, before, first)
	}
	if got := g.Floor(at.Add(layout.Tick / 2)); got != floor {
		t.Fatalf("Floor within the tick %q, want %q", got, floor)
	}
	if g.Floor(at.Add(layout.Tick)) <= g.Next(at.Add(layout.Tick/2)) {
		t.Fatal("the next tick's Floor sorts below an id of this tick")
	}
}
