package api

import (
	"testing"
	"time"
)

func TestGuessLimiter(t *testing.T) {
	g := newGuessLimiter(3, time.Minute)
	now := time.Date(2026, 11, 21, 9, 0, 0, 0, time.UTC)
	for i := range 3 {
		if !g.allowed("10.0.0.1", now) {
			t.Fatalf("refused after %d failures", i)
		}
		g.failed("10.0.0.1", now)
	}
	if g.allowed("10.0.0.1", now.Add(time.Second)) {
		t.Fatal("allowed after 3 failures")
	}
	if !g.allowed("10.0.0.2", now) {
		t.Fatal("another client refused")
	}
	if !g.allowed("10.0.0.1", now.Add(61*time.Second)) {
		t.Fatal("still refused after the window")
	}
}
