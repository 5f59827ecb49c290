package smpp

import (
	"fmt"
	"testing"
	"time"
)

// Failed binds from more addresses than the throttle tracks keep its table at the cap.
func TestBindThrottleTableCapped(t *testing.T) {
	bt := newBindThrottle()
	t0 := time.Unix(1700000000, 0)
	for range bindFailureLimit {
		bt.failed("203.0.113.9", t0)
	}
	for i := range 3 * bindThrottleMax {
		bt.failed(fmt.Sprintf("10.%d.%d.%d", i>>16&255, i>>8&255, i&255), t0.Add(time.Duration(i)*time.Microsecond+time.Second))
		if n := bt.size(); n > bindThrottleMax {
			t.Fatalf("tracking %d addresses", n)
		}
	}
	// Once their window has passed, entries go before anything else is evicted.
	later := t0.Add(bindFailureWindow + bindLockout + time.Minute)
	bt.failed("192.0.2.1", later)
	if n := bt.size(); n > bindThrottleMax {
		t.Fatalf("tracking %d addresses", n)
	}
}

func TestAddrKey(t *testing.T) {
	for _, tc := range []struct{ remote, want string }{
		{"127.0.0.1:4000", "127.0.0.1"},
		{"[::ffff:10.0.0.1]:4000", "10.0.0.1"},
		{"[2001:db8:1:2:3:4:5:6]:4000", "2001:db8:1:2::/64"},
		{"[2001:db8:1:2:ffff::1]:99", "2001:db8:1:2::/64"},
		{"pipe", "pipe"},
	} {
		if got := addrKey(tc.remote); got != tc.want {
			t.Errorf("addrKey(%q) = %q, want %q", tc.remote, got, tc.want)
		}
	}
}
