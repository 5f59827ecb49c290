package ussd

import "github.com/payswitch/payswitch/store"

// Schema is the package's tables. They exist on PostgreSQL only: on SQLite (one
// process) sessions live in memory, and there are no SQLite migrations. Pass it to
// store.OpenPostgres with the other components' schemas when Config.DB is set.
var Schema = store.Schema{Component: "ussd", Postgres: postgresMigrations}

// postgresMigrations: the dialogues (ussd_sessions) and the pushed requests
// (ussd_push_sessions), each in the shape internal/sessiondb keeps sessions in.
var postgresMigrations = []string{
	// 1: the session tables.
	`CREATE TABLE ussd_sessions (
		key        TEXT COLLATE "C" PRIMARY KEY,
		seq        BIGINT GENERATED ALWAYS AS IDENTITY UNIQUE,
		phone      TEXT COLLATE "C" NOT NULL,
		seen       BIGINT NOT NULL,
		busy_until BIGINT NOT NULL,
		token      BIGINT NOT NULL,
		state      BYTEA NOT NULL
	);
	CREATE INDEX ussd_sessions_phone ON ussd_sessions (phone, seq);
	CREATE INDEX ussd_sessions_seen ON ussd_sessions (seen);
	CREATE TABLE ussd_push_sessions (
		key        TEXT COLLATE "C" PRIMARY KEY,
		seq        BIGINT GENERATED ALWAYS AS IDENTITY UNIQUE,
		phone      TEXT COLLATE "C" NOT NULL,
		seen       BIGINT NOT NULL,
		busy_until BIGINT NOT NULL,
		token      BIGINT NOT NULL,
		state      BYTEA NOT NULL
	);
	CREATE INDEX ussd_push_sessions_phone ON ussd_push_sessions (phone, seq);
	CREATE INDEX ussd_push_sessions_seen ON ussd_push_sessions (seen);`,
}
