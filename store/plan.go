package store

import (
	"context"
	"fmt"
)

// QueryPlan returns SQLite's plan for query with args (EXPLAIN QUERY PLAN), one line per
// step as SQLite words it ("SEARCH payments USING INDEX ...", "SCAN messages"), read on a
// reader connection. Tests use it to check that hot statements find their rows through
// an index, which no timing would show until the tables are large.
//
// On PostgreSQL it is EXPLAIN's plan, one line per row as PostgreSQL prints it ("Index
// Scan using ... on payments", "Seq Scan on messages").
func (db *DB) QueryPlan(ctx context.Context, query string, args ...any) ([]string, error) {
	if db.pg != nil {
		return db.pgQueryPlan(ctx, query, args...)
	}
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

func (db *DB) pgQueryPlan(ctx context.Context, query string, args ...any) ([]string, error) {
	rows, err := db.reader.QueryContext(ctx, "EXPLAIN "+query, args...)
	if err != nil {
		return nil, fmt.Errorf("store: query plan: %w", err)
	}
	defer rows.Close()
	var plan []string
	for rows.Next() {
		var line string
		if err := rows.Scan(&line); err != nil {
			return nil, fmt.Errorf("store: query plan: %w", err)
		}
		plan = append(plan, line)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: query plan: %w", err)
	}
	return plan, nil
}
