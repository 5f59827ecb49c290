package config

import (
	"strings"
	"testing"
)

func TestDatabaseIsExactlyOneOfPathAndURL(t *testing.T) {
	for _, tc := range []struct {
		name      string
		db        Database
		wantKey   string // "" when valid
		wantInMsg string
	}{
		{name: "path", db: Database{Path: "data/payswitch.db"}},
		{name: "url", db: Database{URL: "postgres://payswitch@db1,db2/payswitch?target_session_attrs=read-write"}},
		{name: "neither", db: Database{}, wantKey: "database.path", wantInMsg: "database.url"},
		{name: "both", db: Database{Path: "x.db", URL: "postgres://h/db"}, wantKey: "database.url", wantInMsg: "only one"},
		{name: "not postgres", db: Database{URL: "mysql://u:secret@h/db"}, wantKey: "database.url", wantInMsg: "postgres://"},
		{name: "replicas on postgres", db: Database{URL: "postgres://h/db", Replicas: []Replica{{URL: "file:///r"}}},
			wantKey: "database.replicas", wantInMsg: "standby"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := &Config{Database: tc.db}
			k := &checker{c: c}
			c.validateDatabase(k)
			if tc.wantKey == "" {
				if len(k.errs) != 0 {
					t.Fatalf("valid database %+v refused: %v", tc.db, k.errs)
				}
				return
			}
			if len(k.errs) != 1 || k.errs[0].(*Error).Key != tc.wantKey || !strings.Contains(k.errs[0].Error(), tc.wantInMsg) {
				t.Fatalf("errors %v, want one on %s saying %q", k.errs, tc.wantKey, tc.wantInMsg)
			}
			if strings.Contains(k.errs[0].Error(), "secret") {
				t.Fatalf("error shows the password: %v", k.errs[0])
			}
		})
	}
}

func TestWhereHidesThePassword(t *testing.T) {
	for _, u := range []string{
		"postgres://payswitch:s3cret@db1:5432,db2:5432/payswitch?target_session_attrs=read-write",
		"postgres://db1/payswitch?user=payswitch&password=s3cret",
	} {
		got := Database{URL: u}.Where()
		if strings.Contains(got, "s3cret") || !strings.Contains(got, "payswitch") {
			t.Errorf("Where(%q) = %q, want it without the password", u, got)
		}
	}
	if got := (Database{Path: "data/p.db"}).Where(); got != "data/p.db" {
		t.Errorf("Where of a path = %q", got)
	}
}
