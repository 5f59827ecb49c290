package replica

import (
	"context"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/benbjohnson/litestream"
	"github.com/superfly/ltx"
)

// fastCompaction has Litestream compact, snapshot and let go of files within a test, so
// that a replica that is down misses files that are gone by the time it is back.
var fastCompaction = tuning{
	levels: litestream.CompactionLevels{{Level: 0}, {Level: 1, Interval: 200 * time.Millisecond},
		{Level: 2, Interval: time.Second}},
	snapshotInterval: time.Second, snapshotRetention: 2 * time.Second,
	l0Retention: 200 * time.Millisecond, l0RetentionCheck: 100 * time.Millisecond,
}

// breakFolder makes a file replica unwritable and unreadable as a lost mount would: its
// folder is moved aside and a file takes its place. fix puts it back.
func breakFolder(t *testing.T, cfg Config) (fix func()) {
	t.Helper()
	dir := strings.TrimPrefix(cfg.URL, "file://")
	away := dir + ".away"
	if err := os.Rename(dir, away); err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	if err := os.WriteFile(dir, []byte("not a folder"), 0o600); err != nil {
		t.Fatal(err)
	}
	return func() {
		t.Helper()
		if err := os.Remove(dir); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(away, dir); err != nil && !os.IsNotExist(err) {
			t.Fatal(err)
		}
	}
}

func (l *liveDB) waitStatus(t *testing.T, i int, what string, ok func(Status) bool) Status {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if s := l.rep.Status()[i]; ok(s) {
			return s
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("replica %d never %s: %+v", i, what, l.rep.Status()[i])
	return Status{}
}

// hubFiles is a copy of what the hub lists.
func (l *liveDB) hubFiles() map[key]ltx.FileInfo {
	h := l.rep.hub
	h.mu.Lock()
	defer h.mu.Unlock()
	out := make(map[key]ltx.FileInfo, len(h.files))
	for k, e := range h.files {
		out[k] = e.info
	}
	return out
}

// topTXID is the last transaction the hub holds.
func (l *liveDB) topTXID() ltx.TXID {
	var top ltx.TXID
	for k := range l.hubFiles() {
		top = max(top, k.max)
	}
	return top
}

// writeUntilCompactedPast writes until Litestream has let go of a level-0 file after
// transaction top (compacted into level 1) and taken a snapshot after it, so that a
// replica that stopped at top can only catch up through compacted files. Meanwhile the
// first replica must hold every commit a moment after it: the worst lag it showed and
// the longest a commit took to reach it are returned.
func (l *liveDB) writeUntilCompactedPast(t *testing.T, top ltx.TXID) (worstLag, worstReach time.Duration) {
	t.Helper()
	seenL0 := map[key]bool{}
	var lostL0, snapshot bool
	deadline := time.Now().Add(30 * time.Second)
	for !lostL0 || !snapshot {
		if time.Now().After(deadline) {
			t.Fatalf("Litestream never let go of a level-0 file or snapshotted (let go %v, snapshot %v)", lostL0, snapshot)
		}
		l.write(t, 10)
		mark := time.Now()
		st := l.waitCaughtUp(t, 0, mark)
		worstReach = max(worstReach, time.Since(mark))
		worstLag = max(worstLag, st.Lag)
		files := l.hubFiles()
		for k := range files {
			if k.level == 0 && k.min > top {
				seenL0[k] = true
			}
			if k.level == litestream.SnapshotLevel && k.max > top {
				snapshot = true
			}
		}
		for k := range seenL0 {
			if _, ok := files[k]; !ok {
				lostL0 = true
			}
		}
	}
	return worstLag, worstReach
}

// One replica down while commits go on and Litestream compacts, snapshots and lets go
// of level-0 files: the other stays current, the writes go on, the broken one says
// so; once fixed it catches up from the stage through the compacted files, and both
// restore the source exactly.
func TestABrokenReplicaHoldsNoOneBack(t *testing.T) {
	a, b := fileReplica(t, "a"), fileReplica(t, "b")
	l := openLive(t, filepath.Join(t.TempDir(), "live.db"), fastCompaction, a, b)
	l.write(t, 100)
	mark := time.Now()
	l.waitCaughtUp(t, 0, mark)
	l.waitCaughtUp(t, 1, mark)

	bTop := l.topTXID()
	broke := time.Now()
	fix := breakFolder(t, b)
	l.unwritable = true
	// Until a commit, b holds everything committed so far; after this one, it cannot.
	l.write(t, 1)
	wrote := time.Now()
	worstLag, worstReach := l.writeUntilCompactedPast(t, bTop)
	st := l.waitFailing(t, 1)
	if st.CaughtUp.After(wrote) || st.Lag < time.Since(wrote)-time.Second || st.Behind == 0 {
		t.Errorf("the broken replica's status: %+v", st)
	}
	if !strings.Contains(st.Error, "not a directory") {
		t.Errorf("the broken replica's error: %q", st.Error)
	}
	t.Logf("while the other replica was down for %v: the healthy one's lag at most %v; a commit reached it within %v",
		time.Since(broke).Round(time.Millisecond), worstLag.Round(time.Millisecond), worstReach.Round(time.Millisecond))

	fix()
	l.unwritable = false
	mark = time.Now()
	want := countRows(t, l.path)
	st = l.waitCaughtUp(t, 1, mark)
	t.Logf("the fixed replica caught up %v after it was fixed", time.Since(mark).Round(time.Millisecond))
	if n := countRows(t, restored(t, b)); n < want {
		t.Errorf("the caught-up replica restores %d rows, %d were committed before it was fixed", n, want)
	}
	l.write(t, 20)
	if err := l.db.Close(); err != nil {
		t.Fatal(err)
	}
	assertEqualRestores(t, l.path, a, b)
}

// stallingClient is a replica whose writes hang while stalled, as a server that takes
// the request and never answers.
type stallingClient struct {
	litestream.ReplicaClient
	stalled atomic.Bool
	hanging chan struct{}
	release chan struct{}
}

func (c *stallingClient) WriteLTXFile(ctx context.Context, level int, minTXID, maxTXID ltx.TXID, r io.Reader) (*ltx.FileInfo, error) {
	if c.stalled.Load() {
		select {
		case c.hanging <- struct{}{}:
		default:
		}
		select {
		case <-c.release:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	return c.ReplicaClient.WriteLTXFile(ctx, level, minTXID, maxTXID, r)
}

// A replica that hangs holds no one back: the other stays current while the hanging
// one's lag grows, and once it answers again it catches up.
func TestASlowReplicaHoldsNoOneBack(t *testing.T) {
	a, b := fileReplica(t, "a"), fileReplica(t, "b")
	slow := &stallingClient{hanging: make(chan struct{}, 1), release: make(chan struct{})}
	tun := tuning{wrap: func(cfg Config, c litestream.ReplicaClient) litestream.ReplicaClient {
		if cfg.Name() != b.Name() {
			return c
		}
		slow.ReplicaClient = c
		return slow
	}}
	l := openLive(t, filepath.Join(t.TempDir(), "live.db"), tun, a, b)
	l.write(t, 50)
	mark := time.Now()
	l.waitCaughtUp(t, 0, mark)
	l.waitCaughtUp(t, 1, mark)
	slow.stalled.Store(true)
	l.write(t, 10)
	wrote := time.Now() // b cannot hold what was committed by then
	select {
	case <-slow.hanging:
	case <-time.After(20 * time.Second):
		t.Fatal("the slow replica was never written")
	}
	for range 5 {
		l.write(t, 10)
		mark := time.Now()
		l.waitCaughtUp(t, 0, mark)
	}
	before := time.Now()
	if st := l.rep.Status()[1]; st.CaughtUp.After(wrote) || st.Lag < before.Sub(wrote) || st.Behind == 0 {
		t.Errorf("the hanging replica's status: %+v", st)
	}
	slow.stalled.Store(false)
	close(slow.release)
	l.waitCaughtUp(t, 1, time.Now())
	l.write(t, 10)
	if err := l.db.Close(); err != nil {
		t.Fatal(err)
	}
	assertEqualRestores(t, l.path, a, b)
}

// A restart while a replica is down: the other goes on at once, and the one that was
// behind is brought up to date from the stage when it is back.
func TestARestartCatchesUpAReplicaBehind(t *testing.T) {
	a, b := fileReplica(t, "a"), fileReplica(t, "b")
	path := filepath.Join(t.TempDir(), "live.db")
	l := openLive(t, path, tuning{}, a, b)
	l.write(t, 100)
	mark := time.Now()
	l.waitCaughtUp(t, 0, mark)
	l.waitCaughtUp(t, 1, mark)
	fix := breakFolder(t, b)
	l.unwritable = true
	l.write(t, 100)
	l.waitCaughtUp(t, 0, time.Now())
	l.waitFailing(t, 1)
	if err := l.db.Close(); err != nil {
		t.Fatal(err)
	}

	l = openLive(t, path, tuning{}, a, b)
	l.unwritable = true
	l.write(t, 50)
	l.waitCaughtUp(t, 0, time.Now())
	l.waitFailing(t, 1)
	if l.rep.hub.stagedBytes == 0 {
		t.Error("the stage keeps nothing for the replica that is behind")
	}
	fix()
	l.unwritable = false
	l.waitCaughtUp(t, 1, time.Now())
	l.write(t, 50)
	if err := l.db.Close(); err != nil {
		t.Fatal(err)
	}
	assertEqualRestores(t, path, a, b)
	if n := countRows(t, path); n != 300 {
		t.Errorf("source has %d rows", n)
	}
}

// The disk is lost: the database is restored from one replica onto a new disk, with no
// stage, and the other replica cannot be reached at the first start. The reachable one
// is written at once; the other, once it can be listed and found no further along, is
// caught up.
func TestAfterALostDiskTheStageIsRebuilt(t *testing.T) {
	a, b := fileReplica(t, "a"), fileReplica(t, "b")
	l := openLive(t, filepath.Join(t.TempDir(), "live.db"), tuning{}, a, b)
	l.write(t, 100)
	if err := l.db.Close(); err != nil {
		t.Fatal(err)
	}

	path := filepath.Join(t.TempDir(), "live.db")
	if _, err := Restore(context.Background(), a, path, time.Time{}); err != nil {
		t.Fatal(err)
	}
	fix := breakFolder(t, b)
	l = openLive(t, path, tuning{}, a, b)
	l.unwritable = true
	l.write(t, 50)
	l.waitCaughtUp(t, 0, time.Now())
	l.waitFailing(t, 1)
	fix()
	l.unwritable = false
	l.waitCaughtUp(t, 1, time.Now())
	l.write(t, 20)
	if err := l.db.Close(); err != nil {
		t.Fatal(err)
	}
	assertEqualRestores(t, path, a, b)
	if n := countRows(t, path); n != 170 {
		t.Errorf("source has %d rows", n)
	}
	if _, err := os.Stat(filepath.Join(stageDir(path), unverifiedFile)); !os.IsNotExist(err) {
		t.Errorf("the replica is still to be compared: %v", err)
	}
}

// The same, but the replica that could not be reached holds more than the one the
// database was restored from: it is never written, so that its longer history stays
// whole, and it says why.
func TestAfterALostDiskAReplicaFurtherAlongIsLeftAlone(t *testing.T) {
	a, b := fileReplica(t, "a"), fileReplica(t, "b")
	l := openLive(t, filepath.Join(t.TempDir(), "live.db"), tuning{}, a, b)
	l.write(t, 100)
	mark := time.Now()
	l.waitCaughtUp(t, 0, mark)
	l.waitCaughtUp(t, 1, mark)
	fixA := breakFolder(t, a)
	l.unwritable = true
	l.write(t, 100)
	if err := l.db.Close(); err != nil {
		t.Fatal(err)
	}
	fixA()
	bDir := strings.TrimPrefix(b.URL, "file://")
	before := folderState(t, bDir)

	path := filepath.Join(t.TempDir(), "live.db")
	if _, err := Restore(context.Background(), a, path, time.Time{}); err != nil {
		t.Fatal(err)
	}
	fixB := breakFolder(t, b)
	l = openLive(t, path, tuning{}, a, b)
	l.unwritable = true
	l.write(t, 10)
	l.waitCaughtUp(t, 0, time.Now())
	fixB()
	st := l.waitStatus(t, 1, "refused", func(s Status) bool { return strings.Contains(s.Error, "not written") })
	if st.OK || st.Rounds != 0 {
		t.Errorf("status %+v", st)
	}
	l.write(t, 10)
	l.waitCaughtUp(t, 0, time.Now())
	if err := l.db.Close(); err != nil {
		t.Fatal(err)
	}
	if after := folderState(t, bDir); after != before {
		t.Errorf("the replica further along was written:\nbefore %s\nafter  %s", before, after)
	}
	if n := countRows(t, restored(t, b)); n != 200 {
		t.Errorf("the replica further along restores %d rows, want 200", n)
	}
	assertEqualRestores(t, path, a)
}

// folderState lists a folder's files with their sizes and times.
func folderState(t *testing.T, dir string) string {
	t.Helper()
	var b strings.Builder
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, path)
		fmt.Fprintf(&b, "%s %d %s; ", rel, fi.Size(), fi.ModTime())
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// The stage is gone but Litestream's local files are not (as on the first start after
// an upgrade from a single replica), and a replica is added: the stage is rebuilt from
// the replica there was, the new one is filled, and both restore the source.
func TestAnUpgradeRebuildsTheStageAndFillsANewReplica(t *testing.T) {
	a, b := fileReplica(t, "a"), fileReplica(t, "b")
	path := filepath.Join(t.TempDir(), "live.db")
	l := openLive(t, path, tuning{}, a)
	l.write(t, 100)
	if err := l.db.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(stageDir(path)); err != nil {
		t.Fatal(err)
	}
	l = openLive(t, path, tuning{}, a, b)
	l.write(t, 50)
	mark := time.Now()
	l.waitCaughtUp(t, 0, mark)
	l.waitCaughtUp(t, 1, mark)
	l.write(t, 50)
	if err := l.db.Close(); err != nil {
		t.Fatal(err)
	}
	assertEqualRestores(t, path, a, b)
	if n := countRows(t, path); n != 200 {
		t.Errorf("source has %d rows", n)
	}
}

// steppingClient is a replica whose writes wait for a step each while stepping: the
// test looks at it between any two.
type steppingClient struct {
	litestream.ReplicaClient
	stepping atomic.Bool
	step     chan struct{}
	stepped  chan struct{}
}

func (c *steppingClient) WriteLTXFile(ctx context.Context, level int, minTXID, maxTXID ltx.TXID, r io.Reader) (*ltx.FileInfo, error) {
	if !c.stepping.Load() {
		return c.ReplicaClient.WriteLTXFile(ctx, level, minTXID, maxTXID, r)
	}
	select {
	case <-c.step:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	defer func() { c.stepped <- struct{}{} }()
	return c.ReplicaClient.WriteLTXFile(ctx, level, minTXID, maxTXID, r)
}

// A replica catching up after Litestream compacted away files it never received
// restores after every file it receives: never a gap, never fewer rows than before.
func TestAReplicaCatchingUpRestoresAtEveryStep(t *testing.T) {
	a, b := fileReplica(t, "a"), fileReplica(t, "b")
	slow := &steppingClient{step: make(chan struct{}), stepped: make(chan struct{})}
	tun := fastCompaction
	tun.wrap = func(cfg Config, c litestream.ReplicaClient) litestream.ReplicaClient {
		if cfg.Name() != b.Name() {
			return c
		}
		slow.ReplicaClient = c
		return slow
	}
	l := openLive(t, filepath.Join(t.TempDir(), "live.db"), tun, a, b)
	l.write(t, 50)
	mark := time.Now()
	l.waitCaughtUp(t, 0, mark)
	l.waitCaughtUp(t, 1, mark)
	slow.stepping.Store(true)
	t.Cleanup(func() { slow.stepping.Store(false) }) // before the store's Close, if the test stops early
	l.writeUntilCompactedPast(t, l.topTXID())
	behind := countRows(t, restored(t, b))

	mark = time.Now()
	steps := 0
	for deadline := time.Now().Add(30 * time.Second); ; {
		if s := l.rep.Status()[1]; s.OK && s.CaughtUp.After(mark) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the replica never caught up: %+v", l.rep.Status()[1])
		}
		select {
		case slow.step <- struct{}{}:
		case <-time.After(20 * time.Millisecond):
			continue // nothing to write at the moment
		}
		<-slow.stepped
		steps++
		n := countRows(t, restored(t, b))
		if n < behind {
			t.Fatalf("after %d files the replica restores %d rows, %d before", steps, n, behind)
		}
		behind = n
	}
	t.Logf("caught up in %d files", steps)
	if steps < 3 {
		t.Errorf("caught up in %d files: the test did not see compacted files sent", steps)
	}
	slow.stepping.Store(false)
	l.write(t, 10)
	if err := l.db.Close(); err != nil {
		t.Fatal(err)
	}
	assertEqualRestores(t, l.path, a, b)
}

// A replica emptied by hand is filled again when it is next listed, with files the stage
// has already let go of: from the other replica.
func TestAnEmptiedReplicaIsFilledFromTheOther(t *testing.T) {
	a, b := fileReplica(t, "a"), fileReplica(t, "b")
	tun := tuning{relistEvery: 100 * time.Millisecond}
	l := openLive(t, filepath.Join(t.TempDir(), "live.db"), tun, a, b)
	l.write(t, 100)
	mark := time.Now()
	l.waitCaughtUp(t, 0, mark)
	l.waitCaughtUp(t, 1, mark)
	l.waitStatus(t, 1, "let go of the stage's copies", func(Status) bool {
		l.rep.hub.mu.Lock()
		defer l.rep.hub.mu.Unlock()
		return l.rep.hub.stagedBytes == 0
	})
	if err := os.RemoveAll(strings.TrimPrefix(b.URL, "file://")); err != nil {
		t.Fatal(err)
	}
	l.waitStatus(t, 1, "was filled again", func(Status) bool {
		_, err := Restore(context.Background(), b, filepath.Join(t.TempDir(), "probe.db"), time.Time{})
		return err == nil
	})
	l.write(t, 10)
	if err := l.db.Close(); err != nil {
		t.Fatal(err)
	}
	assertEqualRestores(t, l.path, a, b)
}
