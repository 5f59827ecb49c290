package store

import (
	"context"
	"database/sql/driver"
	"fmt"
	"path/filepath"
	"testing"
)

// Statements whose text varies (a VALUES list per batch size) fill the cache; a
// statement first run after that is cached all the same, in place of the one least
// recently used, and one run all along stays.
func TestStatementCacheKeepsWhatIsUsed(t *testing.T) {
	conn, err := newConnector("file:"+filepath.Join(t.TempDir(), "c.db"), nil).Connect(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	c := conn.(*cachingConn)
	defer c.Close()
	ctx := context.Background()
	exec := func(q string, args ...driver.NamedValue) {
		t.Helper()
		if _, err := c.ExecContext(ctx, q, args); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	exec(`CREATE TABLE t (x INTEGER)`)
	const hot = `INSERT INTO t (x) VALUES (?)`
	for i := range 3 * maxCachedStmts {
		exec(hot, driver.NamedValue{Ordinal: 1, Value: int64(i)})
		exec(fmt.Sprintf(`UPDATE t SET x = x WHERE x = %d`, i)) // a text of its own each time
	}
	if len(c.stmts) != maxCachedStmts {
		t.Fatalf("%d statements cached, want the cap %d", len(c.stmts), maxCachedStmts)
	}
	if _, ok := c.stmts[hot]; !ok {
		t.Fatal("the statement run all along was evicted")
	}
	const late = `DELETE FROM t WHERE x < 0`
	exec(late)
	if _, ok := c.stmts[late]; !ok {
		t.Fatal("a statement first run once the cache was full was not cached")
	}

	// A statement with rows open is never evicted: its rows still read from it.
	rows, err := c.QueryContext(ctx, `SELECT x FROM t ORDER BY x`, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 2 * maxCachedStmts {
		exec(fmt.Sprintf(`UPDATE t SET x = x WHERE x = -%d`, i+1))
	}
	dest := make([]driver.Value, 1)
	if err := rows.Next(dest); err != nil || dest[0] != int64(0) {
		t.Fatalf("the open rows read %v, %v; want 0", dest[0], err)
	}
	if err := rows.Close(); err != nil {
		t.Fatal(err)
	}
}
