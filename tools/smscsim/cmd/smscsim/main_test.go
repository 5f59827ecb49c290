package main

import (
	"bytes"
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/payswitch/payswitch/tools/smscsim"
)

func TestRunServesUntilCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	started := make(chan *smscsim.Sim, 1)
	done := make(chan error, 1)
	var stderr bytes.Buffer
	go func() {
		done <- run(ctx, []string{"-listen", "127.0.0.1:0", "-phone-api", "127.0.0.1:0", "-account", "payswitch:secret"}, &stderr, func(s *smscsim.Sim) { started <- s })
	}()
	sim := <-started
	resp, err := http.Get("http://" + sim.PhoneAddr() + "/mt/history")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("phone api status %d", resp.StatusCode)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("run: %v", err)
	}
}

func TestRunRejectsBadFlags(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"account without password separator", []string{"-account", "payswitch"}, "system_id:password"},
		{"stray argument", []string{"extra"}, "unexpected arguments"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stderr bytes.Buffer
			err := run(context.Background(), tt.args, &stderr, nil)
			if err == nil || !strings.Contains(err.Error()+stderr.String(), tt.want) {
				t.Fatalf("err %v, stderr %q, want mention of %q", err, stderr.String(), tt.want)
			}
		})
	}
}
