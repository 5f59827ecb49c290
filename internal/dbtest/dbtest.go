// Package dbtest opens the databases that packages' tests run on, on the driver of the
// pgtest.Both subtest they run in: a real SQLite file in a temporary folder, or a new
// PostgreSQL database of pgtest's throwaway server.
package dbtest

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/payswitch/payswitch/internal/pgtest"
	"github.com/payswitch/payswitch/store"
)

// Dialect is the driver of the pgtest.Both subtest tb is, or runs inside (SQLite
// outside one).
func Dialect(tb testing.TB) store.Dialect { return store.Dialect(pgtest.Driver(tb)) }

// Open opens schemas on a new database of tb's driver, closed when tb ends.
func Open(tb testing.TB, opts store.Options, schemas ...store.Schema) *store.DB {
	tb.Helper()
	return Nodes(tb, 1, opts, schemas...)[0]
}

// Nodes opens n store.DBs on one new database of tb's driver, as n switch nodes would,
// each closed when tb ends. SQLite has one writer per file, so there the n "nodes" are
// one DB.
func Nodes(tb testing.TB, n int, opts store.Options, schemas ...store.Schema) []*store.DB {
	tb.Helper()
	dbs := make([]*store.DB, n)
	if Dialect(tb) == store.Postgres {
		url := pgtest.URL(tb)
		for i := range dbs {
			db, err := store.OpenPostgres(context.Background(), url, opts, schemas...)
			if err != nil {
				tb.Fatal(err)
			}
			tb.Cleanup(func() { db.Close() })
			dbs[i] = db
		}
		return dbs
	}
	db, err := store.Open(filepath.Join(tb.TempDir(), "payswitch.db"), opts, schemas...)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { db.Close() })
	for i := range dbs {
		dbs[i] = db
	}
	return dbs
}
