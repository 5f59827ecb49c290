package main

import (
	"testing"
	"time"
)

func TestWriterLine(t *testing.T) {
	a := writerStats{groups: 100, ops: 1000, run: 1, commit: 0.5, synced: 2}
	b := writerStats{groups: 3460, ops: 35060, run: 7, commit: 1.9, synced: 4.4}
	got := writerLine(a, b, 10*time.Second)
	want := "store writer during the load: busy 74% (operations 60%, COMMIT 14%), fsync 24% of the time, 336 groups/s of 10.1 operations"
	if got != want {
		t.Errorf("writerLine =\n%q, want\n%q", got, want)
	}
	a.writes, a.waited, b.writes, b.waited = 10, 0.1, 20010, 120.1
	if got, want := writerLine(a, b, 10*time.Second), want+", a write answered 6.0 ms after its call on average"; got != want {
		t.Errorf("with writes timed, writerLine =\n%q, want\n%q", got, want)
	}
}
