package store

import "time"

// Checkpointing copies committed pages from the WAL into the database file and syncs
// both. Done by the writer (SQLite's wal_autocheckpoint), it took an eighth of the
// writer's time under load, fsyncs included. So a goroutine of its own checkpoints
// every checkpointInterval on a connection of its own, which needs no lock the writer
// holds (PASSIVE). SQLite restarts the WAL from its beginning at the writer's next
// transaction after a checkpoint has copied everything; when a checkpoint never quite
// catches up under sustained load, the writer's own checkpoint at writerAutoCheckpoint
// pages (little left to copy by then) does it.
//
// Every checkpoint the store makes is PASSIVE, and that is what lets a replica
// (package replica, Litestream) see every WAL frame while the store keeps its own
// checkpointer: Litestream holds a read transaction open on the database at all times
// except inside its own checkpoint. A PASSIVE checkpoint copies no frame past the
// snapshot of any open reader, and SQLite starts the WAL again from its beginning
// (overwriting frames) only when no reader uses the WAL; so while Litestream's read
// transaction is open, the store's checkpoints copy what Litestream has already read
// and never let a frame it has not read be overwritten. Litestream restarts the WAL
// itself, in its own checkpoint, after it has shipped every frame. The store's
// checkpointer still earns its keep with a replica: Litestream's checkpoint holds the
// write lock while it runs, and the pages the store already copied are pages it need
// not copy under that lock. The one checkpoint that would not wait for Litestream is
// Close's TRUNCATE; BeforeFinalCheckpoint lets the replica finish first.
const (
	checkpointInterval   = 100 * time.Millisecond
	writerAutoCheckpoint = 8192 // pages: 32 MiB of WAL at the default page size
)

func (db *DB) checkpointer() {
	defer db.wg.Done()
	t := time.NewTicker(checkpointInterval)
	defer t.Stop()
	for {
		select {
		case <-db.stop:
			return
		case <-t.C:
			db.checkpoint()
			db.checkFreeSpace()
		}
	}
}

// Checkpoint is what one of the checkpointer's checkpoints found: when it finished, the
// WAL's length in frames, and how many of those frames are now copied into the database
// file (SQLite's count since the WAL last restarted, not this checkpoint's alone).
type Checkpoint struct {
	Time      time.Time
	WALFrames int64
	Copied    int64
}

// checkpoint runs one PASSIVE checkpoint and records it. Errors (a full or read-only
// disk) are the writer's to report; the next tick tries again, and LastCheckpoint keeps
// the last success, so that its age shows a checkpointer that has stopped succeeding.
func (db *DB) checkpoint() {
	var busy int
	var c Checkpoint
	err := db.ckpt.QueryRow("PRAGMA wal_checkpoint(PASSIVE)").Scan(&busy, &c.WALFrames, &c.Copied)
	// busy is 1 when SQLite could not run the checkpoint at all (another connection's
	// checkpoint held the lock): the pragma answers a row, not an error, and no pages moved.
	if err != nil || busy != 0 {
		return
	}
	// time.Now, not a clock of the store's (it has none): this is an observation for
	// operators, shown as an age, and decides nothing.
	c.Time = time.Now()
	db.lastCkpt.Store(&c)
}

// LastCheckpoint is the last checkpoint the store's checkpointer completed, zero
// before the first (and for a copy opened read-only, which has no checkpointer).
func (db *DB) LastCheckpoint() Checkpoint {
	if c := db.lastCkpt.Load(); c != nil {
		return *c
	}
	return Checkpoint{}
}

// BeforeFinalCheckpoint sets fn to run in Close after the last write has committed and
// before the WAL is checkpointed and truncated: a replica ships the last frames there
// and lets go of the database, so that the truncating checkpoint neither waits for it
// nor removes frames it has not read. Call it before any Close.
func (db *DB) BeforeFinalCheckpoint(fn func()) { db.beforeFinalCheckpoint = fn }
