package merchant_test

import (
	"path/filepath"
	"sync"
	"testing"
	"time"

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

// openDB opens the package's tables (and the ledger's, which the stores' triggers name) on a real SQLite file in a temporary directory, and
// returns its options with a clock the test moves.
func openDB(t *testing.T) (*store.DB, merchant.Options, *clock) {
	t.Helper()
	db, err := store.Open(filepath.Join(t.TempDir(), "merchant.db"), store.Options{Synchronous: "OFF"}, ledger.Schema, merchant.Schema)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	c := &clock{t: time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)}
	return db, merchant.Options{Now: c.Now}, c
}

// storeTx is a transaction of the store's writer.
type storeTx = store.Tx
