package failures

import (
	"testing"
	"time"
)

func TestLimiter(t *testing.T) {
	l := New(3, time.Minute)
	now := time.Unix(1000, 0)
	for i := 1; i <= 3; i++ {
		if !l.Allowed("a", now) {
			t.Fatalf("refused before failure %d", i)
		}
		if limited := l.Failed("a", now); limited != (i == 3) {
			t.Fatalf("failure %d: limited %v", i, limited)
		}
	}
	if l.Allowed("a", now.Add(59*time.Second)) {
		t.Fatal("allowed within the window after the limit")
	}
	if !l.Allowed("b", now) {
		t.Fatal("another client is held back")
	}
	if !l.Allowed("a", now.Add(61*time.Second)) {
		t.Fatal("still refused after the window")
	}
	if l.Failed("a", now.Add(61*time.Second)) {
		t.Fatal("the first failure of a new window reached the limit")
	}
}
