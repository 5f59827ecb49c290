package audit

import (
	"database/sql"

	"github.com/jackc/pgx/v5/stdlib"

	"github.com/payswitch/payswitch/store"
)

// dialectOf is the database db reads: PostgreSQL when its connections are pgx's (as a
// store.DB's Reader on PostgreSQL is), SQLite otherwise. Export takes the pool alone, so
// it learns the dialect here rather than from its callers.
func dialectOf(db *sql.DB) store.Dialect {
	if _, ok := db.Driver().(*stdlib.Driver); ok {
		return store.Postgres
	}
	return store.SQLite
}

// snapshotOptions begin Export's read transaction: SQLite's read transactions see one
// state throughout; PostgreSQL's do at REPEATABLE READ.
func snapshotOptions(d store.Dialect) *sql.TxOptions {
	if d == store.Postgres {
		return &sql.TxOptions{ReadOnly: true, Isolation: sql.LevelRepeatableRead}
	}
	return &sql.TxOptions{ReadOnly: true}
}
