package main

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// analyze runs ANALYZE on the tables of the PostgreSQL database at url that hold rows.
// Provisioning grows its tables from a few rows to thousands in seconds, sooner than
// autovacuum's next look (a minute apart by default), and the plans a node's connections
// cached meanwhile were made for the few rows: a lock of two accounts by id, say, planned
// as a scan of the whole table. ANALYZE records the tables' sizes, which makes
// PostgreSQL plan those statements again, as an operator's bulk load should be followed
// by it (PostgreSQL's "Populating a Database"); the load then measures the switch in its
// steady state. The tables still empty (codes, holds, the outbox's parts) are left
// alone: analyzed empty, PostgreSQL would plan them by their size at the moment, a page
// or two, and keep scanning them whole as the load fills them; never analyzed, it
// assumes ten pages at least, which is what a table that fills looks like. A CHECKPOINT
// follows, so that every run starts just after one: the runs share one server, and a
// checkpoint due during a run (every five minutes by default) or the full-page images
// that follow it would slow that run alone, which alternated rounds showed favouring
// whichever of a round's runs came second.
func analyze(ctx context.Context, url string) error {
	c, err := pgx.Connect(ctx, url)
	if err != nil {
		return fmt.Errorf("analyze after provisioning: %w", err)
	}
	defer c.Close(context.Background())
	tables, err := filledTables(ctx, c)
	if err != nil {
		return err
	}
	for _, t := range tables {
		if _, err := c.Exec(ctx, "ANALYZE "+pgx.Identifier{t}.Sanitize()); err != nil {
			return fmt.Errorf("analyze %s after provisioning: %w", t, err)
		}
	}
	if _, err := c.Exec(ctx, "CHECKPOINT"); err != nil {
		return fmt.Errorf("checkpoint after provisioning: %w", err)
	}
	return nil
}

// filledTables lists the tables of the current schema that hold at least one row.
func filledTables(ctx context.Context, c *pgx.Conn) ([]string, error) {
	rows, err := c.Query(ctx, `SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE c.relkind = 'r' AND n.nspname = current_schema() ORDER BY c.relname`)
	if err != nil {
		return nil, fmt.Errorf("list tables: %w", err)
	}
	all, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("list tables: %w", err)
	}
	var filled []string
	for _, t := range all {
		var hasRows bool
		if err := c.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM "+pgx.Identifier{t}.Sanitize()+")").Scan(&hasRows); err != nil {
			return nil, fmt.Errorf("look into %s: %w", t, err)
		}
		if hasRows {
			filled = append(filled, t)
		}
	}
	return filled, nil
}
