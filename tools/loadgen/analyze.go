package main

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// analyze runs ANALYZE on the PostgreSQL database at url. Provisioning grows its tables
// from a few rows to thousands in seconds, sooner than autovacuum's next look (a minute
// apart by default), and the plans a node's connections cached meanwhile were made for
// the few rows: a lock of two accounts by id, say, planned as a scan of the whole table.
// ANALYZE records the tables' sizes, which makes PostgreSQL plan those statements again,
// as an operator's bulk load should be followed by it (PostgreSQL's "Populating a
// Database"); the load then measures the switch in its steady state.
func analyze(ctx context.Context, url string) error {
	c, err := pgx.Connect(ctx, url)
	if err != nil {
		return fmt.Errorf("analyze after provisioning: %w", err)
	}
	defer c.Close(context.Background())
	if _, err := c.Exec(ctx, "ANALYZE"); err != nil {
		return fmt.Errorf("analyze after provisioning: %w", err)
	}
	return nil
}
