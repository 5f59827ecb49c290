package merchant_test

import (
	"os"
	"sync"
	"testing"
	"time"

	"github.com/payswitch/payswitch/internal/dbtest"

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

// openDB opens the package's tables (and the ledger's, which the stores' triggers name)
// on a new database of t's driver: a real SQLite file in a temporary directory, or a new
// PostgreSQL database. It returns the options with a clock the test moves.
func openDB(t *testing.T) (*store.DB, merchant.Options, *clock) {
	t.Helper()
	c := &clock{t: time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)}
	return dbtest.Open(t, store.Options{Synchronous: "OFF"}, ledger.Schema, merchant.Schema), merchant.Options{Now: c.Now}, c
}

// openNodes opens n nodes on one new database of t's driver (dbtest.Nodes).
func openNodes(t *testing.T, n int) []*store.DB {
	return dbtest.Nodes(t, n, store.Options{Synchronous: "OFF"}, ledger.Schema, merchant.Schema)
}

// storeTx is a transaction of the store's writer.
type storeTx = store.Tx
