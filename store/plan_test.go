package store

import (
	"context"
	"path/filepath"
	"reflect"
	"testing"
)

func TestQueryPlan(t *testing.T) {
	db, err := Open(filepath.Join(t.TempDir(), "plan.db"), Options{}, Schema{Component: "t", Migrations: []string{
		`CREATE TABLE things (id INTEGER PRIMARY KEY, name TEXT NOT NULL, size INTEGER NOT NULL);
		CREATE INDEX things_by_name ON things (name);`}})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ctx := context.Background()
	for _, tc := range []struct {
		name, query string
		want        []string
	}{
		{"indexed", `SELECT id FROM things WHERE name = ?`, []string{"SEARCH things USING COVERING INDEX things_by_name (name=?)"}},
		{"by key", `SELECT name FROM things WHERE id = ?`, []string{"SEARCH things USING INTEGER PRIMARY KEY (rowid=?)"}},
		{"not indexed", `SELECT id FROM things WHERE size = ?`, []string{"SCAN things"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := db.QueryPlan(ctx, tc.query, 1)
			if err != nil || !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("plan %q, %v; want %q", got, err, tc.want)
			}
		})
	}
	if _, err := db.QueryPlan(ctx, `SELECT nonsense FROM nowhere`); err == nil {
		t.Fatal("a plan of a query that cannot be prepared")
	}
}
