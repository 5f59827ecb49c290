package airtime

import (
	"slices"
	"testing"
	"time"
)

func newTestBreaker(clock *testClock) (*breaker, *[]bool) {
	var changes []bool
	return &breaker{now: clock.Now, threshold: 3, cooldown: 10 * time.Second,
		onChange: func(open bool) { changes = append(changes, open) }}, &changes
}

// send runs one request through b with verdict v and reports whether it was allowed.
func send(b *breaker, v verdict) bool {
	gen, ok := b.allow()
	if ok {
		b.done(gen, v)
	}
	return ok
}

func TestBreakerCounting(t *testing.T) {
	tests := []struct {
		name     string
		verdicts []verdict
		wantOpen bool
	}{
		{"threshold faults open it", []verdict{fault, fault, fault}, true},
		{"fewer stay closed", []verdict{fault, fault}, false},
		{"an answer resets the count", []verdict{fault, fault, healthy, fault, fault}, false},
		{"neutral neither counts nor resets", []verdict{fault, neutral, fault, neutral, fault}, true},
		{"answers never open it", []verdict{healthy, healthy, healthy, healthy}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, _ := newTestBreaker(&testClock{})
			for _, v := range tt.verdicts {
				send(b, v)
			}
			if b.isOpen() != tt.wantOpen {
				t.Fatalf("open = %v, want %v", b.isOpen(), tt.wantOpen)
			}
		})
	}
}

func TestBreakerHalfOpen(t *testing.T) {
	clock := &testClock{t: time.Unix(1000, 0)}
	b, changes := newTestBreaker(clock)
	for range 3 {
		send(b, fault)
	}
	if _, ok := b.allow(); ok {
		t.Fatal("open breaker allowed a request")
	}
	clock.Add(10 * time.Second)

	trial, ok := b.allow()
	if !ok {
		t.Fatal("no trial after the cooldown")
	}
	if _, ok := b.allow(); ok {
		t.Fatal("a second request allowed while the trial is in flight")
	}
	b.done(trial, neutral) // the caller gave up: another request may be the trial
	trial, ok = b.allow()
	if !ok {
		t.Fatal("no new trial after a neutral one")
	}
	b.done(trial, fault)
	if _, ok := b.allow(); ok {
		t.Fatal("failed trial did not reopen the breaker")
	}
	clock.Add(10 * time.Second)
	if !send(b, healthy) {
		t.Fatal("no trial after the second cooldown")
	}
	if b.isOpen() {
		t.Fatal("successful trial did not close the breaker")
	}
	if want := []bool{true, true, false}; !slices.Equal(*changes, want) {
		t.Fatalf("changes %v, want %v", *changes, want)
	}
}

// A request sent before the breaker changed state must not move it when it finishes.
func TestBreakerIgnoresStaleVerdicts(t *testing.T) {
	clock := &testClock{}
	b, _ := newTestBreaker(clock)
	slow, _ := b.allow() // sent while closed, answers late
	for range 3 {
		send(b, fault)
	}
	b.done(slow, healthy)
	if !b.isOpen() {
		t.Fatal("a late answer from before the breaker opened closed it")
	}
}
