package store

import (
	"path/filepath"
	"testing"
	"time"
)

// The checkpointer records each checkpoint it completes: after a write, LastCheckpoint
// soon reports one that finished after it.
func TestLastCheckpointFollowsWrites(t *testing.T) {
	db := mustOpen(t, filepath.Join(t.TempDir(), "x.db"), testSchema)
	if err := insert(db, "a"); err != nil {
		t.Fatal(err)
	}
	written := time.Now()
	deadline := time.Now().Add(10 * time.Second)
	for {
		c := db.LastCheckpoint()
		if c.Time.After(written) {
			if c.Copied > c.WALFrames || c.WALFrames < 0 {
				t.Errorf("checkpoint %+v: copied more frames than the WAL has", c)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("no checkpoint after the write within 10s; last %+v", c)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
