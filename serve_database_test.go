package main

import (
	"path/filepath"
	"runtime"
	"testing"

	"github.com/payswitch/payswitch/config"
	"github.com/payswitch/payswitch/store"
)

// A serve on SQLite takes one P more than it would have, for the writer's own thread,
// unless the operator set GOMAXPROCS; and only once however many times a process opens
// a database (the tests start many serves in one process).
func TestServeSparesAProcForTheWriter(t *testing.T) {
	for _, tc := range []struct {
		procs int
		env   string
		want  int
	}{{2, "", 3}, {1, "", 2}, {8, "", 9}, {2, "2", 2}, {2, "4", 2}} {
		if got := procsWithWriter(tc.procs, tc.env); got != tc.want {
			t.Errorf("procsWithWriter(%d, %q) = %d, want %d", tc.procs, tc.env, got, tc.want)
		}
	}
	open := func() {
		db, lock, err := openDatabase(t.Context(), config.Database{Path: filepath.Join(t.TempDir(), "payswitch.db")},
			store.Options{})
		if err != nil {
			t.Fatal(err)
		}
		db.Close()
		lock.Close()
	}
	open() // raises GOMAXPROCS, unless an earlier test's serve did
	raised := runtime.GOMAXPROCS(0)
	open()
	if got := runtime.GOMAXPROCS(0); got != raised {
		t.Fatalf("GOMAXPROCS went from %d to %d on a second open", raised, got)
	}
}
