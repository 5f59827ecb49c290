package main

import (
	"bufio"
	"context"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/payswitch/payswitch/tools/smscsim"
)

// TestPhoneShowsEarlierMessages starts the phone after its number got replies: it
// shows them first, then what arrives, each once.
func TestPhoneShowsEarlierMessages(t *testing.T) {
	sim, err := smscsim.Start(smscsim.Config{PhoneAPI: "127.0.0.1:0", RespTimeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sim.Close() })
	echoESME(t, sim)
	const me = "254700000001"

	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	for _, text := range []string{"BAL", "MINI"} {
		if err := sim.SendMO(ctx, me, "22333", text); err != nil {
			t.Fatal(err)
		}
	}
	sim.SendMO(ctx, "254700000002", "22333", "HELP") // another phone's, never shown
	for len(sim.MTs(me)) < 2 || len(sim.MTs("254700000002")) < 1 {
		if ctx.Err() != nil {
			t.Fatalf("the echo ESME did not answer: %v", sim.MTs(""))
		}
		time.Sleep(10 * time.Millisecond)
	}

	pr, pw := io.Pipe()
	done := make(chan error, 1)
	stdin, typing := io.Pipe() // left open: the phone keeps listening
	defer typing.Close()
	go func() {
		done <- run(ctx, []string{"-api", sim.PhoneAddr(), me}, stdin, pw)
		pw.Close()
	}()
	lines := bufio.NewScanner(pr)
	next := func() string {
		t.Helper()
		if !lines.Scan() {
			t.Fatalf("output ended: %v", lines.Err())
		}
		return lines.Text()
	}
	for _, want := range []string{"< 22333: you said: BAL", "< 22333: you said: MINI"} {
		if got := next(); got != want {
			t.Fatalf("got %q, want the earlier message %q", got, want)
		}
	}
	if got := next(); !strings.HasPrefix(got, "phone "+me+" ready") {
		t.Fatalf("got %q, want the ready line", got)
	}
	io.WriteString(typing, "HELP\n")
	for _, want := range []string{"> HELP", "< 22333: you said: HELP"} {
		if got := next(); got != want {
			t.Fatalf("got %q, want %q (an earlier message shown twice, or another phone's?)", got, want)
		}
	}
	cancel()
	go io.Copy(io.Discard, pr)
	if err := <-done; err != nil {
		t.Fatalf("run: %v", err)
	}
}
