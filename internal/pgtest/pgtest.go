// Package pgtest gives tests a real, throwaway PostgreSQL: one server per test binary,
// made with initdb in a temporary folder and started on a free loopback port with a
// socket folder of its own, and a new empty database for each test that asks.
//
// A package that uses it runs its tests through Main, which stops the server and removes
// its folder when the tests end:
//
//	func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }
//
// and a test asks for a database with URL(t). The server starts on the first URL, so a
// run that asks for none starts nothing. The binaries are looked for in
// PAYSWITCH_POSTGRES_BIN (a folder), then /usr/lib/postgresql/<version>/bin (the newest
// first, as Debian installs them), then PATH; PostgreSQL 15 or later is needed. Without
// them URL skips the test with a message saying so, unless PAYSWITCH_REQUIRE_POSTGRES=1
// (as in CI), where it fails instead.
//
// PostgreSQL refuses to run as root, and tests here often do: then the server runs as
// the user nobody, and its folder is made in the system's temporary folder (which every
// user can reach) and given to nobody.
//
// The server trusts every local connection and syncs nothing (fsync, synchronous_commit
// and full_page_writes are off): it is for tests, which need its locking, constraints and
// concurrency, not its durability. Figures measured on it say so, or are measured with
// PAYSWITCH_PGTEST_DURABLE=1, which turns the three on.
//
// For the failover drill, StartPair (or NewPair in a test) starts a durable primary with
// one synchronous standby, each a server of its own, and gives their multi-host URL and
// the means to kill the primary and promote the standby. pair.go and server.go do not
// import testing, so tools that run the drill (tools/crashtest) use them too.
package pgtest

import (
	"context"
	"fmt"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/jackc/pgx/v5"
)

// RequireEnv is the environment variable that makes a missing PostgreSQL a failure.
const RequireEnv = "PAYSWITCH_REQUIRE_POSTGRES"

// DurableEnv, set to 1, makes the server durable (fsync and synchronous_commit on), for
// benchmarks that must count the WAL flush of every commit.
const DurableEnv = "PAYSWITCH_PGTEST_DURABLE"

var shared struct {
	mu      sync.Mutex
	inMain  bool
	started bool
	srv     *Server
	err     error
	admin   *pgx.Conn // to the "postgres" database, for CREATE and DROP DATABASE
}

var dbSeq atomic.Int64

// Main runs m and then stops the server, if a test started it. Its result is the exit
// code for os.Exit.
func Main(m *testing.M) int {
	shared.mu.Lock()
	shared.inMain = true
	shared.mu.Unlock()
	code := m.Run()
	shared.mu.Lock()
	defer shared.mu.Unlock()
	if shared.admin != nil {
		shared.admin.Close(context.Background())
	}
	if shared.srv != nil {
		if err := shared.srv.Stop(); err != nil {
			fmt.Fprintf(os.Stderr, "pgtest: %v\n", err)
		}
	}
	return code
}

// URL returns the URL of a new, empty database on the shared server, which it starts on
// first use; the database is dropped when tb ends. It skips tb when PostgreSQL is not
// installed (fails it when RequireEnv is 1).
func URL(tb testing.TB) string {
	tb.Helper()
	admin, srv := server(tb)
	name := fmt.Sprintf("t%d_%s", dbSeq.Add(1), sanitize(tb.Name()))
	shared.mu.Lock()
	_, err := admin.Exec(context.Background(), "CREATE DATABASE "+pgx.Identifier{name}.Sanitize())
	shared.mu.Unlock()
	if err != nil {
		tb.Fatalf("pgtest: create database %s: %v", name, err)
	}
	tb.Cleanup(func() {
		shared.mu.Lock()
		defer shared.mu.Unlock()
		// FORCE ends connections a test left open (a DB not closed on a failure path).
		if _, err := admin.Exec(context.Background(), "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)"); err != nil {
			tb.Errorf("pgtest: drop database %s: %v", name, err)
		}
	})
	return srv.URL(name)
}

// server returns the shared server and an admin connection to it, starting it on first
// use, or ends tb when it cannot.
func server(tb testing.TB) (*pgx.Conn, *Server) {
	tb.Helper()
	shared.mu.Lock()
	defer shared.mu.Unlock()
	if !shared.inMain {
		tb.Fatal("pgtest: the package's TestMain must run its tests through pgtest.Main, which stops the server")
	}
	if !shared.started {
		shared.started = true
		shared.srv, shared.err = Start()
		if shared.err == nil {
			shared.admin, shared.err = pgx.Connect(context.Background(), shared.srv.URL("postgres"))
		}
	}
	if shared.err != nil {
		if skips(shared.err) {
			tb.Skipf("pgtest: %v (set %s=1 to make this a failure)", shared.err, RequireEnv)
		}
		tb.Fatalf("pgtest: %v", shared.err)
	}
	return shared.admin, shared.srv
}

// skips reports whether a server that failed to start with err skips the test rather
// than failing it: only when PostgreSQL is not installed and RequireEnv is not 1.
func skips(err error) bool {
	return errNotInstalled(err) && os.Getenv(RequireEnv) != "1"
}

// sanitize makes a test's name fit in a database name: lower-case letters, digits and
// underscores, at most 40 of them (PostgreSQL keeps 63 bytes).
func sanitize(name string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(name) {
		if b.Len() == 40 {
			break
		}
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' {
			b.WriteRune(r)
		} else {
			b.WriteByte('_')
		}
	}
	return b.String()
}

// NewPair starts a primary with a synchronous standby (see StartPair) for tb alone, and
// stops both when tb ends. It skips tb when PostgreSQL is not installed (fails it when
// RequireEnv is 1). A pair takes a few seconds to start: tests share one where they can.
func NewPair(tb testing.TB, opts PairOptions) *Pair {
	tb.Helper()
	p, err := StartPair(opts)
	if err != nil {
		if skips(err) {
			tb.Skipf("pgtest: %v (set %s=1 to make this a failure)", err, RequireEnv)
		}
		tb.Fatalf("pgtest: %v", err)
	}
	tb.Cleanup(func() {
		if err := p.Stop(); err != nil {
			tb.Errorf("pgtest: stop the pair: %v", err)
		}
	})
	return p
}
