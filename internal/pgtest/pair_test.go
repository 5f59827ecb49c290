package pgtest

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

func connect(t *testing.T, url string) *pgx.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close(context.Background()) })
	return c
}

// TestPairFailsOverWithNothingLost: the primary commits only what the standby has
// on disk, so rows committed before the primary is killed are on the promoted standby,
// which the multi-host URL then reaches and which takes writes alone.
func TestPairFailsOverWithNothingLost(t *testing.T) {
	ctx := context.Background()
	p := NewPair(t, PairOptions{})
	if p.Primary() != p.FirstPrimary() || p.StandbyAddr() == "" || p.StandbyAddr() == p.FirstPrimary() {
		t.Fatalf("primary %s, first %s, standby %s", p.Primary(), p.FirstPrimary(), p.StandbyAddr())
	}
	url := p.URL("postgres")
	if !strings.Contains(url, p.FirstPrimary()+","+p.StandbyAddr()) || !strings.Contains(url, "target_session_attrs=read-write") {
		t.Fatalf("URL %s", url)
	}
	c := connect(t, url)
	var settings string
	if err := c.QueryRow(ctx, `SELECT current_setting('synchronous_standby_names') || ' ' ||
		current_setting('synchronous_commit') || ' ' || current_setting('fsync')`).Scan(&settings); err != nil {
		t.Fatal(err)
	}
	if settings != StandbyName+" on on" {
		t.Fatalf("primary's settings %q", settings)
	}
	if _, err := c.Exec(ctx, `CREATE TABLE paid (n INT PRIMARY KEY)`); err != nil {
		t.Fatal(err)
	}
	for i := range 100 {
		if _, err := c.Exec(ctx, `INSERT INTO paid VALUES ($1)`, i); err != nil {
			t.Fatal(err)
		}
	}

	if err := p.KillPrimary(); err != nil {
		t.Fatal(err)
	}
	if p.Primary() != "" {
		t.Fatalf("primary %q after the kill, want none", p.Primary())
	}
	if _, err := c.Exec(ctx, `SELECT 1`); err == nil {
		t.Fatal("a connection to the killed primary still answers")
	}
	short, cancel := context.WithTimeout(ctx, 5*time.Second)
	_, err := pgx.Connect(short, url)
	cancel()
	if err == nil {
		t.Fatal("the URL connects while the only server up is a standby")
	}

	if err := p.Promote(ctx); err != nil {
		t.Fatal(err)
	}
	if p.Primary() != p.StandbyAddr() {
		t.Fatalf("primary %s after promotion, want the standby %s", p.Primary(), p.StandbyAddr())
	}
	c2 := connect(t, url)
	var n int
	if err := c2.QueryRow(ctx, `SELECT count(*) FROM paid`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 100 {
		t.Fatalf("%d rows on the promoted standby, want 100", n)
	}
	if _, err := c2.Exec(ctx, `INSERT INTO paid VALUES (100)`); err != nil {
		t.Fatalf("the promoted standby refuses a write (waiting for a standby of its own?): %v", err)
	}
	if err := p.RestartPrimary(); err == nil {
		t.Fatal("the old primary restarted after the standby's promotion")
	}
}

// TestPairAloneComesBackAfterAKill: a primary without a standby, killed, starts again
// on its port with every committed row.
func TestPairAloneComesBackAfterAKill(t *testing.T) {
	ctx := context.Background()
	p := NewPair(t, PairOptions{Alone: true})
	if p.StandbyAddr() != "" {
		t.Fatalf("standby %s when alone", p.StandbyAddr())
	}
	c := connect(t, p.URL("postgres"))
	if _, err := c.Exec(ctx, `CREATE TABLE paid AS SELECT generate_series(1, 10) AS n`); err != nil {
		t.Fatal(err)
	}
	if err := p.KillPrimary(); err != nil {
		t.Fatal(err)
	}
	if err := p.RestartPrimary(); err != nil {
		t.Fatal(err)
	}
	var n int
	if err := connect(t, p.URL("postgres")).QueryRow(ctx, `SELECT count(*) FROM paid`).Scan(&n); err != nil || n != 10 {
		t.Fatalf("after the restart: %d rows, %v; want 10", n, err)
	}
}
