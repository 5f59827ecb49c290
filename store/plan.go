package store

import (
	"context"
	"fmt"
)

// QueryPlan returns SQLite's plan for query with args (EXPLAIN QUERY PLAN), one line per
// step as SQLite words it ("SEARCH payments USING INDEX ...", "SCAN messages"), read on a
// reader connection. Tests use it to check that hot statements find their rows through
// an index, which no timing would show until the tables are large.
func (db *DB) QueryPlan(ctx context.Context, query string, args ...any) ([]string, error) {
	rows, err := db.reader.QueryContext(ctx, "EXPLAIN QUERY PLAN "+query, args...)
	if err != nil {
		return nil, fmt.Errorf("store: query plan: %w", err)
	}
	defer rows.Close()
	var plan []string
	for rows.Next() {
		var id, parent, unused int
		var detail string
		if err := rows.Scan(&id, &parent, &unused, &detail); err != nil {
			return nil, fmt.Errorf("store: query plan: %w", err)
		}
		plan = append(plan, detail)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: query plan: %w", err)
	}
	return plan, nil
}
