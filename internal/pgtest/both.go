package pgtest

import (
	"strings"
	"testing"
)

// The subtests a package's tests run each behaviour in, once per store driver, named as
// store's Dialect values are.
const (
	SQLiteSubtest   = "sqlite"
	PostgresSubtest = "postgres"
)

// Both runs test once on each driver, as subtests named "sqlite" and "postgres"; inside
// them, OnPostgres tells which driver the package's open helpers should use. The
// postgres subtest skips when PostgreSQL is not installed (URL does).
func Both(t *testing.T, test func(t *testing.T)) {
	t.Run(SQLiteSubtest, test)
	t.Run(PostgresSubtest, test)
}

// OnPostgres reports whether tb is Both's postgres subtest or runs inside one: its
// name's second part. Outside Both it is false (SQLite).
func OnPostgres(tb testing.TB) bool {
	parts := strings.Split(tb.Name(), "/")
	return len(parts) > 1 && parts[1] == PostgresSubtest
}

// Driver is the name of the driver of the Both subtest tb is, or runs inside:
// "postgres" or "sqlite" (also outside Both), the values of store.Dialect.
func Driver(tb testing.TB) string {
	if OnPostgres(tb) {
		return PostgresSubtest
	}
	return SQLiteSubtest
}
