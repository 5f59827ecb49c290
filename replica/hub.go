package replica

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/benbjohnson/litestream"
	"github.com/rs/zerolog"
	"github.com/superfly/ltx"
)

// hub is the one replica Litestream sees (a litestream.ReplicaClient). What Litestream
// writes is put in the stage and acknowledged at once, so that no replica's trouble
// ever reaches Litestream; each configured replica then receives it from there on its
// own schedule (ship.go). What Litestream lists is the stage's list; what it reads is
// the stage's copy, or a replica's when the stage has let its copy go.
type hub struct {
	stage   stage
	targets []*target
	log     zerolog.Logger
	// resetLocal removes Litestream's local state (its LTX files beside the database),
	// so that after a rebuild it goes on from the rebuilt list with a snapshot.
	resetLocal func() error
	// relistEvery is how often each replica is listed again (relistEvery; tests
	// shorten it).
	relistEvery time.Duration

	mu sync.Mutex // guards what follows, and the targets' fields marked so
	// files is what every replica is to hold; nil until Init.
	files   map[key]*entry
	version uint64 // counts the changes to files
	// marks are recent moments by which everything committed was in files: a replica
	// that holds files as of a version holds every commit made before the latest mark
	// of that version or an earlier one.
	marks       []mark
	stagedBytes int64    // content kept in the stage
	adoptedTXID ltx.TXID // unverified targets are compared with it (rebuild.go)
}

type mark struct {
	at      time.Time
	version uint64
}

// maxMarks bounds the marks kept; a replica whose last round went back further than
// them is reported as further behind than it is until its next round.
const maxMarks = 4096

var errNotReady = errors.New("replica: the replicas' state is not read yet")

// mark notes that everything committed before at is in files.
func (h *hub) mark(at time.Time) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.marks) >= maxMarks {
		h.marks = append(h.marks[:0], h.marks[len(h.marks)-maxMarks/2:]...)
	}
	h.marks = append(h.marks, mark{at: at, version: h.version})
}

// caughtUpAt is the latest mark a replica that holds files as of version has reached
// (zero: none kept). The caller holds mu.
func (h *hub) caughtUpAt(version uint64) time.Time {
	for i := len(h.marks) - 1; i >= 0; i-- {
		if h.marks[i].version <= version {
			return h.marks[i].at
		}
	}
	return time.Time{}
}

func (h *hub) Type() string { return "payswitch-replicas" }

// SetLogger is Litestream's; the hub logs through the switch's logger.
func (h *hub) SetLogger(*slog.Logger) {}

// Init reads the stage, or rebuilds it from the replicas when there is none.
func (h *hub) Init(ctx context.Context) error {
	h.mu.Lock()
	ready := h.files != nil
	h.mu.Unlock()
	if ready {
		return nil
	}
	files, unv, err := h.stage.load()
	if err != nil {
		return fmt.Errorf("replicas: read %s: %w", h.stage.dir, err)
	}
	if files == nil {
		return h.rebuild(ctx)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.version = 1
	for _, e := range files {
		e.version = h.version
		if e.local {
			h.stagedBytes += e.info.Size
		}
	}
	h.files = files
	h.markUnverified(unv)
	return nil
}

// markUnverified flags the targets unv names. The caller holds mu.
func (h *hub) markUnverified(unv unverifiedState) {
	h.adoptedTXID = unv.TXID
	for _, t := range h.targets {
		for _, name := range unv.Replicas {
			if t.name == name {
				t.unverified = true
			}
		}
	}
}

func (h *hub) LTXFiles(_ context.Context, level int, seek ltx.TXID, _ bool) (ltx.FileIterator, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.files == nil {
		return nil, errNotReady
	}
	var infos []*ltx.FileInfo
	for k, e := range h.files {
		if k.level == level && k.min >= seek {
			info := e.info
			infos = append(infos, &info)
		}
	}
	return ltx.NewFileInfoSliceIterator(infos), nil
}

// OpenLTXFile reads the stage's copy, or else a replica's.
func (h *hub) OpenLTXFile(ctx context.Context, level int, minTXID, maxTXID ltx.TXID, offset, size int64) (io.ReadCloser, error) {
	k := key{level, minTXID, maxTXID}
	h.mu.Lock()
	e := h.files[k]
	var local bool
	var holders []*target
	if e != nil {
		local = e.local
		holders = h.holders(k, e, nil)
	}
	h.mu.Unlock()
	if e == nil {
		return nil, fmt.Errorf("%s: %w", k, fs.ErrNotExist)
	}
	if local {
		f, err := os.Open(h.stage.contentPath(k))
		if err == nil {
			return section(f, offset, size)
		}
		if !errors.Is(err, fs.ErrNotExist) { // else let go of meanwhile: every replica has it
			return nil, err
		}
	}
	var errs []error
	for _, t := range holders {
		rc, err := t.client.OpenLTXFile(ctx, level, minTXID, maxTXID, offset, size)
		if err == nil {
			return rc, nil
		}
		errs = append(errs, fmt.Errorf("replica %s: %w", t.name, err))
	}
	return nil, fmt.Errorf("%s: no replica could be read: %w", k, errors.Join(errs...))
}

// holders are the targets, other than but, that hold the file, the most current first
// (one that hangs is not), followed by those not listed yet, which may. The caller
// holds mu.
func (h *hub) holders(k key, e *entry, but *target) []*target {
	var sure, maybe []*target
	for _, t := range h.targets {
		switch {
		case t == but || t.refused != "":
		case t.has == nil:
			maybe = append(maybe, t)
		default:
			if hd, ok := t.has[k]; ok && hd.version == e.version {
				sure = append(sure, t)
			}
		}
	}
	slices.SortStableFunc(sure, func(a, b *target) int { return b.caughtUp.Compare(a.caughtUp) })
	return append(sure, maybe...)
}

func section(f *os.File, offset, size int64) (io.ReadCloser, error) {
	if offset > 0 {
		if _, err := f.Seek(offset, io.SeekStart); err != nil {
			f.Close()
			return nil, err
		}
	}
	if size <= 0 {
		return f, nil
	}
	return struct {
		io.Reader
		io.Closer
	}{io.LimitReader(f, size), f}, nil
}

// WriteLTXFile puts the file in the stage; the replicas receive it from there.
func (h *hub) WriteLTXFile(_ context.Context, level int, minTXID, maxTXID ltx.TXID, r io.Reader) (*ltx.FileInfo, error) {
	k := key{level, minTXID, maxTXID}
	tmp, info, err := h.stage.prepare(k, r)
	if err != nil {
		return nil, fmt.Errorf("replicas: stage %s: %w", k, err)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	old := h.files[k]
	if err := h.stage.commit(k, tmp, old); err != nil {
		return nil, fmt.Errorf("replicas: stage %s: %w", k, err)
	}
	if old != nil && old.local {
		h.stagedBytes -= old.info.Size
	}
	h.version++
	h.files[k] = &entry{info: info, local: true, version: h.version}
	h.stagedBytes += info.Size
	return &info, nil
}

// DeleteLTXFiles forgets files Litestream no longer needs; each replica deletes them
// at its next round.
func (h *hub) DeleteLTXFiles(_ context.Context, a []*ltx.FileInfo) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, info := range a {
		k := keyOf(info)
		e := h.files[k]
		if e == nil {
			continue
		}
		if err := h.stage.remove(k, e); err != nil {
			return fmt.Errorf("replicas: %w", err)
		}
		delete(h.files, k)
		if e.local {
			h.stagedBytes -= e.info.Size
		}
		h.version++
	}
	return nil
}

// DeleteAll is not used by the switch; emptying every replica at once is not offered.
func (h *hub) DeleteAll(context.Context) error {
	return errors.New("replica: deleting every replica's files is not supported")
}

var _ litestream.ReplicaClient = (*hub)(nil)
