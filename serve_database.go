package main

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/payswitch/payswitch/config"
	"github.com/payswitch/payswitch/ivr"
	"github.com/payswitch/payswitch/ledger"
	"github.com/payswitch/payswitch/merchant"
	"github.com/payswitch/payswitch/otp"
	"github.com/payswitch/payswitch/outbox"
	"github.com/payswitch/payswitch/sales"
	"github.com/payswitch/payswitch/smpp"
	"github.com/payswitch/payswitch/store"
	payswitch "github.com/payswitch/payswitch/switch"
	"github.com/payswitch/payswitch/ussd"
	"github.com/payswitch/payswitch/webhook"
)

// schemas are every component's tables, in the order they are made: a component's
// tables after those its own refer to (merchant's and sales' triggers read the ledger's
// and the payments' tables). ussd and ivr have tables on PostgreSQL only, where any node
// must continue any session; on SQLite their sessions are in the one process's memory.
var schemas = []store.Schema{ledger.Schema, otp.Schema, outbox.Schema, payswitch.Schema, smpp.GatewaySchema,
	merchant.Schema, webhook.Schema, sales.Schema, ussd.Schema, ivr.Schema}

// openDatabase opens the switch's database, SQLite (database.path) or PostgreSQL
// (database.url), and migrates it. On SQLite it first takes the file's single-process
// lock (closed by the caller after the database): one serve per file, since a starting
// serve releases every claim it finds on the outbox, which is only right if the process
// that made them is gone. On PostgreSQL several serve processes share the database: each
// component claims its work row by row and releases at start only the claims whose
// lease ran out, and migrations run under an advisory lock, so that of several nodes
// starting at once one migrates and the others wait.
func openDatabase(ctx context.Context, d config.Database, opts store.Options) (*store.DB, *os.File, error) {
	if d.Postgres() {
		db, err := store.OpenPostgres(ctx, d.URL, opts, schemas...)
		if err != nil {
			return nil, nil, dbURLStartError(d, err)
		}
		return db, nil, nil
	}
	lock, err := lockExclusive(d.Path + ".serve.lock")
	if err != nil {
		return nil, nil, dbStartError(d.Path, err)
	}
	// Before the writer starts: setting GOMAXPROCS also stops Go from setting it again
	// from the CPUs of its monitor thread, which a writer with a CPU of its own moves
	// off that CPU (writerThreadHook).
	spareProcForWriter.Do(func() { runtime.GOMAXPROCS(procsWithWriter(runtime.GOMAXPROCS(0), os.Getenv("GOMAXPROCS"))) })
	db, err := store.Open(d.Path, opts, schemas...)
	if err != nil {
		lock.Close()
		return nil, nil, dbStartError(d.Path, err)
	}
	return db, lock, nil
}

// spareProcForWriter raises GOMAXPROCS once per process (procsWithWriter).
var spareProcForWriter sync.Once

// procsWithWriter is the GOMAXPROCS of a serve on SQLite that runs with procs and the
// environment's GOMAXPROCS env: one P more than it has, unless the operator chose. A
// SQLite store's writer keeps an OS thread of its own and holds a P whenever it runs,
// most of the time under load; without one more, the network handlers, the sender and
// the API would share what is left (one P of two on a 2-core machine). Measured in
// README, Performance.
func procsWithWriter(procs int, env string) int {
	if env != "" {
		return procs
	}
	return procs + 1
}

// dbURLStartError says why serve could not open its PostgreSQL database, naming it
// without its password.
func dbURLStartError(d config.Database, err error) error {
	switch store.FaultOf(err) {
	case store.FaultUnreachable:
		return fmt.Errorf("database %s is unreachable: start PostgreSQL or correct database.url: %w", d.Where(), err)
	case store.FaultReadOnly:
		return fmt.Errorf("database %s only takes reads (a standby?): point database.url at the primary, or add target_session_attrs=read-write to a multi-host URL: %w", d.Where(), err)
	}
	return fmt.Errorf("database %s: %w", d.Where(), err)
}

// writerHost is the host:port of the PostgreSQL server that this node writes to, for
// /healthz: after a failover, the promoted standby. "" when it cannot be reached (the
// database's fault says so besides).
func (a *app) writerHost(ctx context.Context) string {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	host, err := a.db.WriterHost(ctx)
	if err != nil {
		return ""
	}
	return host
}

// nodeName names this serve among the nodes sharing a PostgreSQL database: the host's
// name and the HTTP address it listens on, which no two live nodes share (one of them
// could not bind it) and a node started again keeps. With a port picked at start
// (":0") it is "", and names nothing.
func nodeName(cfg *config.Config) string {
	if !cfg.Database.Postgres() || strings.HasSuffix(cfg.HTTP.Listen, ":0") {
		return ""
	}
	host, err := os.Hostname()
	if err != nil {
		return ""
	}
	return host + "/" + cfg.HTTP.Listen
}
