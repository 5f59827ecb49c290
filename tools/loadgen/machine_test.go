package main

import (
	"context"
	"runtime"
	"testing"

	"github.com/payswitch/payswitch/internal/pgtest"
)

// TestMachineCPU reads the machine's CPU time twice around some work: on Linux the
// totals are known, busy and steal fit in the total, and both readings only grow.
func TestMachineCPU(t *testing.T) {
	busy0, steal0, total0 := machineCPU()
	if runtime.GOOS != "linux" {
		if busy0 != -1 || steal0 != -1 || total0 != -1 {
			t.Fatalf("machineCPU off Linux = %v %v %v, want -1s", busy0, steal0, total0)
		}
		return
	}
	x := 0
	for i := range 20_000_000 {
		x += i % 7
	}
	busy1, steal1, total1 := machineCPU()
	if busy0 < 0 || steal0 < 0 || total0 <= 0 || busy0+steal0 > total0 {
		t.Fatalf("first reading busy %v steal %v total %v", busy0, steal0, total0)
	}
	if busy1 < busy0 || steal1 < steal0 || total1 < total0 || busy1+steal1 > total1 {
		t.Fatalf("second reading busy %v steal %v total %v after %v %v %v (%d)", busy1, steal1, total1, busy0, steal0, total0, x)
	}
}

// TestAnalyze runs analyze on a real PostgreSQL database, and refuses a server that is
// not there.
func TestAnalyze(t *testing.T) {
	if err := analyze(context.Background(), pgtest.URL(t)); err != nil {
		t.Fatal(err)
	}
	if err := analyze(context.Background(), "postgres://nobody@127.0.0.1:1/none?connect_timeout=2"); err == nil {
		t.Fatal("analyze of a database that is not there: no error")
	}
}
