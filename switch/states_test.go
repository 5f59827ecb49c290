package payswitch

import (
	"context"
	"testing"

	"github.com/looplab/fsm"
)

// TestNextAgreesWithAFreshFSM checks Next's table against looplab/fsm itself for every
// state and event the machine names, allowed or not, and an unknown one of each.
func TestNextAgreesWithAFreshFSM(t *testing.T) {
	states := map[State]bool{"no_such_state": true}
	events := map[Event]bool{"no_such_event": true}
	for _, tr := range transitions {
		events[Event(tr.Name)] = true
		states[State(tr.Dst)] = true
		for _, src := range tr.Src {
			states[State(src)] = true
		}
	}
	allowed := 0
	for s := range states {
		for ev := range events {
			f := fsm.NewFSM(string(s), transitions, nil)
			ferr := f.Event(context.Background(), string(ev))
			got, err := Next(s, ev)
			switch {
			case ferr == nil && (err != nil || got != State(f.Current())):
				t.Errorf("Next(%s, %s) = %s, %v; the FSM says %s", s, ev, got, err, f.Current())
			case ferr != nil && (err == nil || got != s):
				t.Errorf("Next(%s, %s) = %s, %v; the FSM refuses it: %v", s, ev, got, err, ferr)
			case ferr == nil:
				allowed++
			}
		}
	}
	if allowed != len(moves) {
		t.Errorf("%d moves allowed by the FSM, %d in the table", allowed, len(moves))
	}
}
