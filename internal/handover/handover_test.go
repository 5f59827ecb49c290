package handover

import (
	"slices"
	"testing"
)

// Items handed over reach the worker in order, up to what it asks for; beyond the max
// held (handed, or taken and not done) they are spilled; Done makes room again; a
// closed queue drops what is handed, and Close returns what was not taken.
func TestQueue(t *testing.T) {
	q := New[int](3)
	q.Hand(0) // closed: dropped
	if q.IsOpen() {
		t.Fatal("a new queue is open")
	}
	if h, s := q.Take(-1); len(h)+len(s) != 0 {
		t.Fatalf("a closed queue kept %v and %v", h, s)
	}
	q.Open()
	for i := 1; i <= 5; i++ {
		q.Hand(i)
	}
	select {
	case <-q.Ready():
	default:
		t.Fatal("no signal after Hand")
	}
	h, s := q.Take(2)
	if !slices.Equal(h, []int{1, 2}) || !slices.Equal(s, []int{4, 5}) {
		t.Fatalf("took %v, spilled %v", h, s)
	}
	q.Hand(6) // 1, 2 taken and 3 handed: still full
	if _, s := q.Take(0); !slices.Equal(s, []int{6}) {
		t.Fatalf("spilled %v, want [6]", s)
	}
	q.Done(2)
	q.Hand(7)
	q.Hand(8)
	q.Hand(9)
	if h, s := q.Close(); !slices.Equal(h, []int{3, 7, 8}) || !slices.Equal(s, []int{9}) {
		t.Fatalf("Close returned %v and %v", h, s)
	}
	q.Hand(10)
	if h, s := q.Take(-1); len(h)+len(s) != 0 || q.IsOpen() {
		t.Fatalf("after Close: %v and %v", h, s)
	}
}
