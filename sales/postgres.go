package sales

import (
	"database/sql"

	"github.com/jackc/pgx/v5/stdlib"
	"github.com/payswitch/payswitch/store"
)

// dialectOf is the database db reads: PostgreSQL when its connections are pgx's (as
// store.OpenPostgres's reader is), SQLite otherwise. New takes the reader pool alone,
// so Reports learns its dialect here rather than from its callers.
func dialectOf(db *sql.DB) store.Dialect {
	if _, ok := db.Driver().(*stdlib.Driver); ok {
		return store.Postgres
	}
	return store.SQLite
}

// readOptions begin a report's read transaction. On SQLite a read transaction sees one
// state throughout; on PostgreSQL REPEATABLE READ makes it so, so that the journal span,
// the hours and the entries a report reads agree with each other.
func readOptions(d store.Dialect) *sql.TxOptions {
	if d == store.Postgres {
		return &sql.TxOptions{ReadOnly: true, Isolation: sql.LevelRepeatableRead}
	}
	return &sql.TxOptions{ReadOnly: true}
}

// hasHoursSQL asks whether sales_hourly exists. On PostgreSQL it must not fail when it
// does not (a failed statement aborts the read transaction), so it asks to_regclass.
func hasHoursSQL(d store.Dialect) string {
	if d == store.Postgres {
		return `SELECT count(*) FROM (SELECT to_regclass('sales_hourly') AS t) r WHERE t IS NOT NULL`
	}
	return `SELECT count(*) FROM sqlite_master
		WHERE type = 'table' AND name = 'sales_hourly'`
}
