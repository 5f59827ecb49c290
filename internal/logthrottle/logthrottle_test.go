package logthrottle

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"
)

func TestLogThrottleLogsOncePerIntervalAndCountsTheRest(t *testing.T) {
	var buf bytes.Buffer
	log := zerolog.New(&buf)
	now := time.Unix(1000, 0)
	th := New(10*time.Second, func() time.Time { return now })
	fail := func(key string) { th.Event(key, log.Error()).Msg(key + " failed") }

	for range 50 { // a poll every 200 ms for 10 s, all refused
		fail("claim")
		now = now.Add(199 * time.Millisecond)
	}
	fail("mo") // another kind of failure is not held back by the first
	now = now.Add(time.Second)
	fail("claim") // the interval is over: logged, with the count

	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 3 {
		t.Fatalf("%d lines, want 3 (first claim, mo, claim after the interval):\n%s", len(lines), buf.String())
	}
	if !strings.Contains(lines[0], "claim failed") || strings.Contains(lines[0], "suppressed") {
		t.Errorf("first line %s", lines[0])
	}
	if !strings.Contains(lines[1], "mo failed") {
		t.Errorf("second line %s", lines[1])
	}
	if !strings.Contains(lines[2], `"suppressed":49`) {
		t.Errorf("third line %s, want the 49 left out", lines[2])
	}
}
