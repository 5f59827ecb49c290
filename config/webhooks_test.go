package config

import (
	"strings"
	"testing"
	"time"
)

func TestWebhooksDefaults(t *testing.T) {
	want := Webhooks{Timeout: 10 * time.Second, RetryFor: 72 * time.Hour, Workers: 32, MaxFailuresBeforePause: 5, Pause: time.Minute}
	if c := mustParse(t, minimal, nil); c.Webhooks != want {
		t.Fatalf("left out: %+v, want %+v", c.Webhooks, want)
	}
	if c := mustParse(t, minimal+"webhooks: {}\n", nil); c.Webhooks != want {
		t.Fatalf("empty: %+v, want %+v", c.Webhooks, want)
	}
	c, err := Load("../config.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if c.Webhooks != want {
		t.Fatalf("config.yaml shows %+v, the defaults are %+v", c.Webhooks, want)
	}
}

func TestWebhooksSet(t *testing.T) {
	c := mustParse(t, minimal+`
webhooks:
  timeout: 5s
  retry_for: ${RETRY:-96h}
  workers: 16
  max_failures_before_pause: 3
  pause: 10m
`, nil)
	want := Webhooks{Timeout: 5 * time.Second, RetryFor: 96 * time.Hour, Workers: 16, MaxFailuresBeforePause: 3, Pause: 10 * time.Minute}
	if c.Webhooks != want {
		t.Fatalf("webhooks %+v, want %+v", c.Webhooks, want)
	}
}

func TestWebhooksRefusals(t *testing.T) {
	for _, tc := range []struct{ name, yaml, key, msg string }{
		{"unknown key", "webhooks: {retries: 3}\n", "webhooks.retries", "unknown key"},
		{"timeout past the contract's", "webhooks: {timeout: 30s}\n", "webhooks.timeout", "at most 10s"},
		{"no timeout", "webhooks: {timeout: 0s}\n", "webhooks.timeout", "must be > 0"},
		{"timeout not a duration", "webhooks: {timeout: ten}\n", "webhooks.timeout", "not a duration"},
		{"retry_for under a day", "webhooks: {retry_for: 12h}\n", "webhooks.retry_for", "at least 24h"},
		{"no workers", "webhooks: {workers: 0}\n", "webhooks.workers", "must be 2..256"},
		{"one worker", "webhooks: {workers: 1}\n", "webhooks.workers", "must be 2..256"},
		{"too many workers", "webhooks: {workers: 1000}\n", "webhooks.workers", "must be 2..256"},
		{"no failures", "webhooks: {max_failures_before_pause: 0}\n", "webhooks.max_failures_before_pause", "must be > 0"},
		{"negative pause", "webhooks: {pause: -1m}\n", "webhooks.pause", "must be > 0"},
		{"not a mapping", "webhooks: [1]\n", "webhooks", "want a mapping"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(minimal+tc.yaml), nil)
			if err == nil {
				t.Fatal("accepted")
			}
			if !strings.Contains(err.Error(), "config: "+tc.key+":") || !strings.Contains(err.Error(), tc.msg) {
				t.Fatalf("error %q, want one naming %s and saying %q", err, tc.key, tc.msg)
			}
			if !strings.Contains(err.Error(), "(line 6)") {
				t.Fatalf("error %q does not give the line", err)
			}
		})
	}
}
