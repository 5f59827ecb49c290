package merchant_test

import (
	"context"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/payswitch/payswitch/internal/pgtest"
	"github.com/payswitch/payswitch/ledger"
	"github.com/payswitch/payswitch/merchant"
	"github.com/payswitch/payswitch/store"
)

// clock is a test clock that moves only when the test says so.
type clock struct {
	mu sync.Mutex // guards t
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

// driverOf is the driver of the pgtest.Both subtest tb is, or runs inside (SQLite
// outside one).
func driverOf(tb testing.TB) store.Dialect { return store.Dialect(pgtest.Driver(tb)) }

// openDB opens the package's tables (and the ledger's, which the stores' triggers name)
// on a new database of t's driver: a real SQLite file in a temporary directory, or a new
// PostgreSQL database. It returns the options with a clock the test moves.
func openDB(t *testing.T) (*store.DB, merchant.Options, *clock) {
	t.Helper()
	c := &clock{t: time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)}
	return openNodes(t, 1)[0], merchant.Options{Now: c.Now}, c
}

// openNodes opens n store.DBs on one new database of t's driver, as n switch nodes
// would. SQLite has one writer per file, so there the n "nodes" are one DB.
func openNodes(t *testing.T, n int) []*store.DB {
	t.Helper()
	dbs := make([]*store.DB, n)
	if driverOf(t) == store.Postgres {
		url := pgtest.URL(t)
		for i := range dbs {
			db, err := store.OpenPostgres(context.Background(), url, store.Options{}, ledger.Schema, merchant.Schema)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { db.Close() })
			dbs[i] = db
		}
		return dbs
	}
	db, err := store.Open(filepath.Join(t.TempDir(), "merchant.db"), store.Options{Synchronous: "OFF"}, ledger.Schema, merchant.Schema)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	for i := range dbs {
		dbs[i] = db
	}
	return dbs
}

// storeTx is a transaction of the store's writer.
type storeTx = store.Tx
