package otp

import (
	"errors"
	"testing"
	"time"
)

// The code rules of contract section 4, one row each, over the pure functions alone.
func TestJudge(t *testing.T) {
	c, err := Config{MaxAttempts: 3}.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 12, 6, 10, 0, 0, 0, time.UTC)
	live := CodeState{Exists: true, State: "active", ExpiresAt: now.Add(time.Minute)}
	with := func(f func(*CodeState)) CodeState { s := live; f(&s); return s }
	for _, tc := range []struct {
		name    string
		s       CodeState
		right   bool
		want    Result
		action  Action
		compare bool // the code given is compared with the issued one
	}{
		{"no code issued", CodeState{}, true, Result{Missing: true}, NoWrite, false},
		{"right code", live, true, Result{OK: true, AttemptsLeft: 3}, MarkUsed, true},
		{"right code after a wrong one", with(func(s *CodeState) { s.Attempts = 1 }), true, Result{OK: true, AttemptsLeft: 2}, MarkUsed, true},
		{"wrong code, tries left", live, false, Result{AttemptsLeft: 2}, CountWrong, true},
		{"the last wrong code", with(func(s *CodeState) { s.Attempts = 2 }), false, Result{Exhausted: true}, CountWrong, true},
		{"expired at its deadline", with(func(s *CodeState) { s.ExpiresAt = now }), true, Result{Expired: true}, MarkExpired, false},
		{"a used code works once", with(func(s *CodeState) { s.State = "used" }), true, Result{Used: true}, NoWrite, false},
		{"exhausted stays exhausted", with(func(s *CodeState) { s.State, s.DeadReason = "dead", "exhausted" }), true, Result{Exhausted: true}, NoWrite, false},
		{"expired stays expired", with(func(s *CodeState) { s.State, s.DeadReason = "dead", "expired" }), true, Result{Expired: true}, NoWrite, false},
		{"killed by cancel or expiry", with(func(s *CodeState) { s.State, s.DeadReason = "dead", "killed" }), true, Result{Missing: true}, NoWrite, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			compared := false
			got, action := c.Judge(tc.s, now, func() bool { compared = true; return tc.right })
			if got != tc.want || action != tc.action {
				t.Errorf("Judge = %+v, %v; want %+v, %v", got, action, tc.want, tc.action)
			}
			if compared != tc.compare {
				t.Errorf("compared the code: %v, want %v", compared, tc.compare)
			}
		})
	}
}

func TestMayResend(t *testing.T) {
	c, err := Config{MaxResends: 2, ResendInterval: 30 * time.Second}.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 12, 6, 10, 0, 0, 0, time.UTC)
	live := CodeState{Exists: true, State: "active", IssuedAt: now.Add(-time.Minute), ExpiresAt: now.Add(time.Minute)}
	with := func(f func(*CodeState)) CodeState { s := live; f(&s); return s }
	for _, tc := range []struct {
		name          string
		s             CodeState
		undeliverable bool
		want          error
	}{
		{"a live code", live, false, nil},
		{"one that timed out but was never checked", with(func(s *CodeState) { s.ExpiresAt = now.Add(-time.Second) }), false, nil},
		{"none issued", CodeState{}, false, ErrNoCode},
		{"used", with(func(s *CodeState) { s.State = "used" }), false, ErrNoCode},
		{"dead", with(func(s *CodeState) { s.State, s.DeadReason = "dead", "exhausted" }), false, ErrNoCode},
		{"the limit", with(func(s *CodeState) { s.Resends = 2 }), false, ErrResendLimit},
		{"too soon", with(func(s *CodeState) { s.IssuedAt = now.Add(-29 * time.Second) }), false, ErrResendTooSoon},
		{"exactly the interval", with(func(s *CodeState) { s.IssuedAt = now.Add(-30 * time.Second) }), false, nil},
		{"undeliverable: no interval", with(func(s *CodeState) { s.IssuedAt = now }), true, nil},
		{"undeliverable: still the limit", with(func(s *CodeState) { s.IssuedAt, s.Resends = now, 2 }), true, ErrResendLimit},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := c.MayResend(tc.s, now, tc.undeliverable); !errors.Is(got, tc.want) || (got == nil) != (tc.want == nil) {
				t.Errorf("MayResend = %v, want %v", got, tc.want)
			}
		})
	}
}
