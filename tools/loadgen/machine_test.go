package main

import (
	"context"
	"runtime"
	"testing"

	"github.com/jackc/pgx/v5"
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

// TestAnalyze runs analyze on a real PostgreSQL database: the tables that hold rows get
// statistics, an empty one keeps none (so that its size is not taken for zero when it
// fills), and a server that is not there is an error.
func TestAnalyze(t *testing.T) {
	ctx := context.Background()
	url := pgtest.URL(t)
	c, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(ctx)
	for _, q := range []string{`CREATE TABLE filled (id BIGINT PRIMARY KEY)`, `CREATE TABLE empty (id BIGINT PRIMARY KEY)`,
		`INSERT INTO filled SELECT generate_series(1, 500)`} {
		if _, err := c.Exec(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	if err := analyze(ctx, url); err != nil {
		t.Fatal(err)
	}
	for table, want := range map[string]bool{"filled": true, "empty": false} {
		var analyzed bool
		var tuples float64
		if err := c.QueryRow(ctx, `SELECT last_analyze IS NOT NULL, (SELECT reltuples FROM pg_class WHERE relname = $1)
			FROM pg_stat_user_tables WHERE relname = $1`, table).Scan(&analyzed, &tuples); err != nil {
			t.Fatal(err)
		}
		if analyzed != want {
			t.Errorf("%s analyzed %v, want %v (reltuples %v)", table, analyzed, want, tuples)
		}
		if want && tuples != 500 || !want && tuples != -1 {
			t.Errorf("%s: reltuples %v", table, tuples)
		}
	}
	if err := analyze(ctx, "postgres://nobody@127.0.0.1:1/none?connect_timeout=2"); err == nil {
		t.Fatal("analyze of a database that is not there: no error")
	}
}
