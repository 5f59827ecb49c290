package main

import (
	"context"
	"fmt"
	"os"

	"github.com/jackc/pgx/v5"

	"github.com/payswitch/payswitch/internal/pgtest"
)

// startPostgres starts the throwaway PostgreSQL of -db postgres, durable (fsync and
// synchronous_commit on: a kill must lose nothing acknowledged), and makes the switch's
// database on it. close stops it.
func (h *harness) startPostgres(ctx context.Context) (url string, err error) {
	if err := os.Setenv(pgtest.DurableEnv, "1"); err != nil {
		return "", err
	}
	if h.pg, err = pgtest.Start(); err != nil {
		return "", fmt.Errorf("-db postgres: %w", err)
	}
	conn, err := pgx.Connect(ctx, h.pg.URL("postgres"))
	if err != nil {
		return "", fmt.Errorf("-db postgres: %w", err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, "CREATE DATABASE crashtest"); err != nil {
		return "", fmt.Errorf("-db postgres: %w", err)
	}
	fmt.Fprintf(h.errw, "crashtest: PostgreSQL in %s (log.txt)\n", h.pg.Dir())
	return h.pg.URL("crashtest"), nil
}
