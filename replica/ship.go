package replica

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"slices"
	"time"

	"github.com/benbjohnson/litestream"
	"github.com/rs/zerolog"
	"github.com/superfly/ltx"
)

// target is one configured replica and what is known of it.
type target struct {
	cfg    Config
	name   string
	client litestream.ReplicaClient
	log    zerolog.Logger
	wake   chan struct{} // a round of reading the WAL ended: there may be more to send
	// lastStart is when its loop last began a round, listedAt when it was last listed;
	// only its rounds use them.
	lastStart, listedAt time.Time

	// Guarded by hub.mu:
	// has is what it holds: listed at its first round since Start, kept up to date
	// since; nil before.
	has        map[key]held
	unverified bool   // to be compared with the replica the stage was rebuilt from
	refused    string // why it is never written (rebuild.go); empty: it is
	caughtUp   time.Time
	lastErr    error
	lastErrAt  time.Time
	loggedAt   time.Time // when a failure was last logged
	rounds     int64     // successful rounds
	failures   int64     // failed rounds
	backlog    int       // files it lacked at its last round's start
}

// held is a file a replica holds.
type held struct {
	size int64
	// version is the hub's version of the file it holds; 0 when it was listed with a
	// size other than the hub's, so that it is sent again.
	version uint64
}

// relistEvery is how often a replica is listed again, rather than trusted to hold what
// it was sent: a folder emptied or a bucket restored by hand is then filled again.
const relistEvery = time.Hour

// errGone: the file was deleted or written again since the round began; the next
// round sends what there is then.
var errGone = errors.New("replica: file gone")

// shipLoop sends a replica what it lacks after each round of reading the WAL, at most
// once per its SyncInterval, until Close.
func (x *Replicator) shipLoop(t *target) {
	defer x.shipping.Done()
	ctx := x.shipCtx
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.wake:
		}
		if wait := t.cfg.SyncInterval - time.Since(t.lastStart); wait > 0 {
			timer := time.NewTimer(wait)
			select {
			case <-ctx.Done():
				timer.Stop()
				return
			case <-timer.C:
			}
		}
		t.lastStart = time.Now()
		x.ship(ctx, t)
	}
}

// ship runs one round for the replica and records its outcome, unless it was cut
// short by ctx (stopping).
func (x *Replicator) ship(ctx context.Context, t *target) error {
	version, err := x.hub.shipOnce(ctx, t)
	if ctx.Err() == nil {
		x.recordShip(t, version, err)
	}
	return err
}

// shipOnce makes the replica hold what the hub holds: first the files it lacks, in an
// order that keeps it restorable at every step, then it deletes what Litestream has
// let go. It returns the hub's version it then holds.
func (h *hub) shipOnce(ctx context.Context, t *target) (uint64, error) {
	h.mu.Lock()
	refused, listed, ready := t.refused, t.has != nil, h.files != nil
	h.mu.Unlock()
	if !ready {
		return 0, errNotReady
	}
	if refused != "" {
		return 0, errors.New(refused)
	}
	if !listed || time.Since(t.listedAt) >= h.relistEvery {
		infos, err := listAll(ctx, t.client)
		if err != nil {
			return 0, fmt.Errorf("list its files: %w", err)
		}
		if err := h.adoptListing(t, infos); err != nil {
			return 0, err
		}
		t.listedAt = time.Now()
	}
	p := h.plan(t)
	for _, w := range p.writes {
		gone, err := h.send(ctx, t, w)
		if err != nil {
			return 0, err
		}
		if gone {
			// Litestream let the file go (compacted it into another) or wrote it again
			// since the plan was made. The files after it may start past what the
			// replica now holds, and a restore would meet a gap: the round ends here,
			// and the next one plans again from the hub's files (and deletes nothing
			// before their replacements are sent).
			return 0, nil
		}
	}
	if len(p.deletes) > 0 {
		if err := t.client.DeleteLTXFiles(ctx, p.deletes); err != nil {
			return 0, fmt.Errorf("delete %d files Litestream no longer needs: %w", len(p.deletes), err)
		}
		h.forget(t, p.deletes)
	}
	if err := h.dropShipped(); err != nil {
		h.log.Warn().Err(err).Str("stage", h.stage.dir).Msg("replicas: a file every replica holds could not be let go from the stage")
	}
	return p.version, nil
}

type plan struct {
	version uint64 // the hub's version the plan brings the replica to
	writes  []pending
	deletes []*ltx.FileInfo
}

type pending struct {
	key     key
	size    int64
	version uint64
}

// plan compares what the replica holds with what the hub holds.
func (h *hub) plan(t *target) plan {
	h.mu.Lock()
	defer h.mu.Unlock()
	p := plan{version: h.version}
	for k, e := range h.files {
		if hd, ok := t.has[k]; ok && hd.version == e.version {
			continue
		}
		p.writes = append(p.writes, pending{key: k, size: e.info.Size, version: e.version})
	}
	for k, hd := range t.has {
		if h.files[k] == nil {
			p.deletes = append(p.deletes, &ltx.FileInfo{Level: k.level, MinTXID: k.min, MaxTXID: k.max, Size: hd.size})
		}
	}
	// By the transaction each file starts at, a snapshot before the levels: the hub's
	// files leave no gap, so each file then extends or lies within what the replica
	// holds, and a restore from a replica that is catching up never meets a gap.
	slices.SortFunc(p.writes, func(a, b pending) int {
		if c := cmp.Compare(a.key.min, b.key.min); c != 0 {
			return c
		}
		if c := cmp.Compare(b.key.level, a.key.level); c != 0 {
			return c
		}
		return cmp.Compare(a.key.max, b.key.max)
	})
	t.backlog = len(p.writes)
	return p
}

// send writes one file to the replica, from the stage or else from another replica;
// gone reports that the hub no longer has that version of it.
func (h *hub) send(ctx context.Context, t *target, w pending) (gone bool, err error) {
	rc, err := h.source(ctx, t, w)
	if errors.Is(err, errGone) {
		return true, nil
	} else if err != nil {
		return false, err
	}
	defer rc.Close()
	info, err := t.client.WriteLTXFile(ctx, w.key.level, w.key.min, w.key.max, rc)
	if err != nil {
		return false, fmt.Errorf("write %s: %w", w.key, err)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if info.Size != w.size {
		if e := h.files[w.key]; e != nil && e.version == w.version {
			return false, fmt.Errorf("write %s: %d bytes written of %d", w.key, info.Size, w.size)
		}
		return true, nil // written again meanwhile: the next round sends the new one
	}
	if t.has != nil {
		t.has[w.key] = held{size: info.Size, version: w.version}
	}
	return false, nil
}

// source opens the file's content: the stage's copy, or a replica's that holds the
// same version.
func (h *hub) source(ctx context.Context, t *target, w pending) (io.ReadCloser, error) {
	h.mu.Lock()
	e := h.files[w.key]
	if e == nil || e.version != w.version {
		h.mu.Unlock()
		return nil, errGone
	}
	local := e.local
	var holders []*target
	for _, s := range h.holders(w.key, e, t) {
		if s.has != nil { // a replica not listed may not hold it
			holders = append(holders, s)
		}
	}
	h.mu.Unlock()
	if local {
		f, err := os.Open(h.stage.contentPath(w.key))
		if err == nil {
			return f, nil
		} else if !errors.Is(err, fs.ErrNotExist) {
			return nil, err
		}
	}
	var errs []error
	for _, s := range holders {
		rc, err := s.client.OpenLTXFile(ctx, w.key.level, w.key.min, w.key.max, 0, 0)
		if err == nil {
			return rc, nil
		}
		errs = append(errs, fmt.Errorf("replica %s: %w", s.name, err))
	}
	return nil, fmt.Errorf("%s: the stage no longer has it and no other replica that holds it could be read: %w",
		w.key, errors.Join(errs...))
}

// adoptListing takes what a replica was listed holding, after comparing it with the
// replica the stage was rebuilt from if it is to be.
func (h *hub) adoptListing(t *target, infos []*ltx.FileInfo) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if t.unverified {
		if top := topTXID(infos); top > h.adoptedTXID {
			t.refused = refusal(top, h.adoptedTXID, h.stage.dir)
			t.log.Error().Msg("replica " + t.refused)
			return errors.New(t.refused)
		}
		t.unverified = false
		if err := h.stage.writeUnverified(h.unverifiedLeft()); err != nil {
			t.unverified = true
			return fmt.Errorf("replicas: %w", err)
		}
	}
	t.has = h.heldFrom(infos)
	return nil
}

// heldFrom is what a replica listed holding: of the hub's version where the sizes
// agree. The caller holds mu.
func (h *hub) heldFrom(infos []*ltx.FileInfo) map[key]held {
	has := make(map[key]held, len(infos))
	for _, info := range infos {
		k := keyOf(info)
		hd := held{size: info.Size}
		if e := h.files[k]; e != nil && e.info.Size == info.Size {
			hd.version = e.version
		}
		has[k] = hd
	}
	return has
}

// forget notes files deleted from the replica.
func (h *hub) forget(t *target, deleted []*ltx.FileInfo) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, info := range deleted {
		delete(t.has, keyOf(info))
	}
}

// dropShipped lets go of the stage's copy of every file all replicas hold. Nothing is
// let go while a replica has not been listed since Start: it may lack anything.
func (h *hub) dropShipped() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, t := range h.targets {
		if t.refused == "" && t.has == nil {
			return nil
		}
	}
	levels := map[int]bool{}
	for k, e := range h.files {
		if !e.local || !h.everywhere(k, e) {
			continue
		}
		if err := h.stage.drop(k, e); err != nil {
			return err
		}
		e.local = false
		h.stagedBytes -= e.info.Size
		levels[k.level] = true
	}
	for level := range levels {
		if err := syncDir(h.stage.levelDir(level)); err != nil {
			return err
		}
	}
	return nil
}

// everywhere: every replica that is written holds this version of the file, and
// there is at least one. The caller holds mu.
func (h *hub) everywhere(k key, e *entry) bool {
	n := 0
	for _, t := range h.targets {
		if t.refused != "" {
			continue
		}
		if hd, ok := t.has[k]; !ok || hd.version != e.version {
			return false
		}
		n++
	}
	return n > 0
}

// listAll lists every level of a replica.
func listAll(ctx context.Context, client litestream.ReplicaClient) ([]*ltx.FileInfo, error) {
	infos := []*ltx.FileInfo{}
	for level := 0; level <= litestream.SnapshotLevel; level++ {
		itr, err := client.LTXFiles(ctx, level, 0, false)
		if err != nil {
			return nil, err
		}
		for itr.Next() {
			info := *itr.Item()
			infos = append(infos, &info)
		}
		if err := itr.Close(); err != nil {
			return nil, err
		}
	}
	return infos, nil
}
