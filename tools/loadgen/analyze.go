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
// Database"); the load then measures the switch in its steady state. A CHECKPOINT
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
	for _, q := range []string{"ANALYZE", "CHECKPOINT"} {
		if _, err := c.Exec(ctx, q); err != nil {
			return fmt.Errorf("%s after provisioning: %w", q, err)
		}
	}
	return nil
}
