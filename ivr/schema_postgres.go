package ivr

import "github.com/payswitch/payswitch/store"

// Schema is the package's table. It exists on PostgreSQL only: on SQLite (one process)
// calls live in memory, and there are no SQLite migrations. Pass it to
// store.OpenPostgres with the other components' schemas when Config.DB is set.
var Schema = store.Schema{Component: "ivr", Postgres: postgresMigrations}

// postgresMigrations: the calls in progress, in the shape internal/sessiondb keeps
// sessions in.
var postgresMigrations = []string{
	// 1: the calls.
	`CREATE TABLE ivr_sessions (
		key        TEXT COLLATE "C" PRIMARY KEY,
		seq        BIGINT GENERATED ALWAYS AS IDENTITY UNIQUE,
		phone      TEXT COLLATE "C" NOT NULL,
		seen       BIGINT NOT NULL,
		busy_until BIGINT NOT NULL,
		token      BIGINT NOT NULL,
		state      BYTEA NOT NULL
	);
	CREATE INDEX ivr_sessions_phone ON ivr_sessions (phone, seq);
	CREATE INDEX ivr_sessions_seen ON ivr_sessions (seen);`,
}
