// Package receiptspool keeps delivery receipts, and the short messages phones send
// (MOs), durable between the moment an SMSC delivers one and the moment the switch has
// applied it, so that the switch can acknowledge its deliver_sm as soon as it is safe on
// disk, instead of after the main database's writer has got to it.
//
// A receipt decides no money, but an SMSC lets only a window of deliver_sm wait for
// their answers: a receipt that waits for a turn of the main writer holds a slot of that
// window as long as a payment's message does, and receipts are half of what an SMSC
// delivers per payment. The spool is a journal of its own: receipts are appended to a
// file, and one fdatasync every few milliseconds makes all those appended since the last
// durable together (an fsync costs the machine far more than the append). Kannel's
// store-file plays the same part for the messages a gateway accepts.
//
// The journal is a folder of segment files, numbered in order. A segment is closed for
// appends once it is big or old enough, and deleted once every receipt in it has been
// applied. Run applies what is spooled, at least once: at Open every receipt still in
// a segment is applied again, so a receipt applied just before a crash is applied
// twice, as when an SMSC redelivers a receipt whose answer it missed.
//
// An MO is spooled for the same reason: a phone's PAY or code held a slot of the
// window until the payment it decides was committed, and the window, not the
// machine, then set how many payments a second an SMSC could bring. An MO decides
// money, so the spool takes one only under a cap per link (an SMSC flooding MOs must
// not make everyone else's wait behind its own), keeps its text as the caller gives
// it (serve seals it: a code or an id number is never on disk in clear), and applies
// it at least once, like an SMSC that redelivers one whose answer it missed.
package receiptspool

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// Defaults of Config.
const (
	// DefaultMax is Config.Max's default: about a minute of records at a few thousand
	// payments a second.
	DefaultMax = 200_000
	// DefaultMaxMOsPerLink is Config.MaxMOsPerLink's default: a few hundred
	// milliseconds of MOs at full speed.
	DefaultMaxMOsPerLink = 1024
	// MaxMOText is the longest MO text the spool takes, in bytes; PutMO refuses a
	// longer one with ErrTooLong, and the caller applies it at once instead.
	MaxMOText = 4096
	// maxField bounds every other field of a record.
	maxField = 255
	// DefaultSyncInterval is Config.SyncInterval's default.
	DefaultSyncInterval = 2 * time.Millisecond
	// defaultSegmentBytes and defaultSegmentAge close a segment for appends.
	defaultSegmentBytes = 4 << 20
	defaultSegmentAge   = time.Second
)

// ErrFull is Put's and PutMO's answer while Config.Max records wait to be applied: the
// link then answers the SMSC with a temporary error, and it delivers the record again
// later.
var ErrFull = errors.New("receipt spool: full; the records waiting are not being applied")

// ErrClosed is Put's answer once Close has begun.
var ErrClosed = errors.New("receipt spool: closed")

// ErrLinkBusy is PutMO's answer while Config.MaxMOsPerLink MOs of the same link wait to
// be applied: the link answers the SMSC with a temporary error, which delivers the MO
// again later.
var ErrLinkBusy = errors.New("receipt spool: too many MOs of this link waiting to be applied")

// ErrTooLong is PutMO's answer for a text over MaxMOText, or an address over 255 bytes.
var ErrTooLong = errors.New("receipt spool: MO text too long to spool")

// Receipt is a delivery receipt as an SMSC reported it.
type Receipt struct {
	Link      string // the link or bind it came over
	MessageID string // the SMSC's ID of the message it reports on
	Status    string // its stat, e.g. DELIVRD
}

// MO is a short message a phone sent, as an SMSC delivered it. Text is kept as given:
// a caller that must not have it on disk in clear seals it first.
type MO struct {
	Link string // the link or bind it came over
	From string
	To   string
	Text string
	// Key is the spool's name for the MO, set on those Run applies (PutMO ignores it):
	// unique among every record the spool ever held, increasing with the order they
	// were written in, and the same each time an MO is applied again after a restart,
	// so that what it applies to can tell a second time from a first.
	Key int64
}

// Apply applies one receipt and returns once that is durable; an error leaves the
// receipt spooled, and Run tries it again.
type Apply func(ctx context.Context, r Receipt) error

// ApplyMO applies one MO as Apply does a receipt.
type ApplyMO func(ctx context.Context, m MO) error

// Appliers are what Run applies each kind of record with. MO may be nil when no MO is
// ever put.
type Appliers struct {
	Receipt Apply
	MO      ApplyMO
}

// Config configures a spool. Dir is required.
type Config struct {
	// Dir is the spool's folder, created (0700) if missing.
	Dir string
	// NoSync skips the fdatasync: for a database that is not synchronous FULL or
	// EXTRA either, where a crash of the machine may lose the last commits anyway.
	NoSync bool
	// SyncInterval is the shortest time between two fdatasyncs (default
	// DefaultSyncInterval): the records appended meanwhile share the next.
	SyncInterval time.Duration
	// Max caps the records spooled and not yet applied (default DefaultMax): an SMSC,
	// or a client bound to the switch's own SMPP server, cannot fill the disk with
	// records faster than they are applied.
	Max int
	// MaxMOsPerLink caps the MOs of one link spooled and not yet applied (default
	// DefaultMaxMOsPerLink), within Max.
	MaxMOsPerLink int
	// Workers is how many records Run applies at once (default 256): each waits for a
	// turn of the main writer, which groups them, so that at a few thousand receipts
	// and MOs a second, each waiting a group commit, this many keep the writer fed.
	Workers int
	// RetryAfter is how long Run waits before applying again a record whose application
	// failed (default 500 ms; it doubles up to 30 s).
	RetryAfter time.Duration
	// SegmentBytes and SegmentAge close the segment taking appends once it holds that
	// many bytes or is that old (defaults 4 MiB and 1 s), so that applied records
	// leave the disk soon and a restart applies few of them again: a segment goes only
	// once every record in it is applied, and the next Open applies all of a segment
	// that is still there.
	SegmentBytes int64
	SegmentAge   time.Duration
	// FirstSegment is the least number a new segment may take: above every segment of
	// every earlier process, so that no record key (MO.Key) is given twice even once
	// their files are gone. The caller knows the highest key it kept (KeySegment).
	FirstSegment uint64
}

// entry is a spooled record, a receipt or an MO, and the segment holding it (nil until
// it is written).
type entry struct {
	seg *segment
	key int64 // keyOf its segment and place, once written
	r   Receipt
	mo  *MO // set: the entry is this MO, and r is unused
}

// batch is the records appended since the last flush; done is closed once they are
// durable, or failed (err).
type batch struct {
	buf     []byte
	entries []entry
	done    chan struct{}
	err     error
}

// Spool is the receipts' journal: Put makes a receipt durable, Run applies them.
type Spool struct {
	cfg Config

	mu       sync.Mutex
	open     *batch     // receipts appended since the last flush; nil: none
	active   *segment   // the segment taking appends
	segments []*segment // every segment with a file, oldest first (active last)
	queue    []entry    // durable, not yet taken by a worker, oldest first
	failed   error      // the first fdatasync failure: nothing is durable after it
	closed   bool

	flush   chan struct{} // capacity 1: a batch is open
	wake    chan struct{} // capacity 1: the queue got entries
	stop    chan struct{} // closed by Close: the flusher writes what it has and ends
	flusher sync.WaitGroup

	// depth counts the records put (and being put) that are not yet applied; Put
	// refuses beyond Config.Max. moDepth counts the MOs among them, and linkMOs those
	// of each link (guarded by mu).
	depth, moDepth atomic.Int64
	linkMOs        map[string]int

	applied, appliedMOs, retried, refused atomic.Int64
}

// Open opens (or creates) the spool in cfg.Dir and queues what a previous process left
// in it, so that Run applies those first.
func Open(cfg Config) (*Spool, error) {
	if cfg.Dir == "" {
		return nil, errors.New("receipt spool: no folder")
	}
	if cfg.Max <= 0 {
		cfg.Max = DefaultMax
	}
	if cfg.MaxMOsPerLink <= 0 {
		cfg.MaxMOsPerLink = DefaultMaxMOsPerLink
	}
	if cfg.Workers <= 0 {
		cfg.Workers = 256
	}
	if cfg.RetryAfter <= 0 {
		cfg.RetryAfter = 500 * time.Millisecond
	}
	if cfg.SyncInterval <= 0 {
		cfg.SyncInterval = DefaultSyncInterval
	}
	if cfg.SegmentBytes <= 0 {
		cfg.SegmentBytes = defaultSegmentBytes
	}
	if cfg.SegmentAge <= 0 {
		cfg.SegmentAge = defaultSegmentAge
	}
	if err := os.MkdirAll(cfg.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("receipt spool: %w", err)
	}
	s := &Spool{cfg: cfg, flush: make(chan struct{}, 1), wake: make(chan struct{}, 1), stop: make(chan struct{}),
		linkMOs: make(map[string]int)}
	next, err := s.recover()
	if err != nil {
		return nil, err
	}
	if s.active, err = createSegment(cfg.Dir, next); err != nil {
		s.closeFiles()
		return nil, err
	}
	s.segments = append(s.segments, s.active)
	s.flusher.Add(1)
	go s.runFlusher()
	return s, nil
}

// Put spools r and returns once it is durable: ErrFull while Config.Max records wait,
// an error when the write of its batch failed (the next batch goes to a new segment),
// and an error for good once an fdatasync of the journal has failed (nothing can be
// called durable after that until the process starts again).
func (s *Spool) Put(ctx context.Context, r Receipt) error {
	r = Receipt{Link: clip(r.Link), MessageID: clip(r.MessageID), Status: clip(r.Status)}
	return s.put(ctx, entry{r: r})
}

// PutMO spools m as Put does a receipt, and also answers ErrLinkBusy while
// Config.MaxMOsPerLink MOs of m.Link wait, and ErrTooLong for a text over MaxMOText or
// a link or address over 255 bytes: an MO is never clipped, since its text may be
// sealed to its addresses.
func (s *Spool) PutMO(ctx context.Context, m MO) error {
	if len(m.Text) > MaxMOText || len(m.Link) > maxField || len(m.From) > maxField || len(m.To) > maxField {
		return ErrTooLong
	}
	return s.put(ctx, entry{mo: &m})
}

// put appends e to the open batch and waits for its flush.
func (s *Spool) put(ctx context.Context, e entry) error {
	if s.depth.Add(1) > int64(s.cfg.Max) {
		s.depth.Add(-1)
		s.refused.Add(1)
		return ErrFull
	}
	s.mu.Lock()
	err := s.refusal()
	if err == nil && e.mo != nil {
		if s.linkMOs[e.mo.Link] >= s.cfg.MaxMOsPerLink {
			err = ErrLinkBusy
			s.refused.Add(1)
		} else {
			s.countMO(e.mo.Link, 1)
		}
	}
	if err != nil {
		s.mu.Unlock()
		s.depth.Add(-1)
		return err
	}
	b := s.open
	if b == nil {
		b = &batch{done: make(chan struct{})}
		s.open = b
	}
	b.buf = appendEntry(b.buf, e)
	b.entries = append(b.entries, e) // its segment is the one its flush writes to
	s.mu.Unlock()
	select {
	case s.flush <- struct{}{}:
	default:
	}
	if e.mo != nil {
		// An MO answered with an error is delivered again, and a second copy would be
		// another MO to decide: its Put waits for the flush, which a stopping link does
		// not delay (Close flushes what is open).
		<-b.done
		return b.err
	}
	select {
	case <-b.done:
		if b.err != nil {
			return b.err
		}
		return nil
	case <-ctx.Done():
		// Written or not, it is the SMSC's to deliver again: applied twice at worst.
		return ctx.Err()
	}
}

// countMO adds n to the MOs of link waiting; s.mu held.
func (s *Spool) countMO(link string, n int) {
	s.moDepth.Add(int64(n))
	if s.linkMOs[link] += n; s.linkMOs[link] <= 0 {
		delete(s.linkMOs, link)
	}
}

// refusal is why Put cannot take a receipt now, if it cannot; s.mu held.
func (s *Spool) refusal() error {
	if s.closed {
		return ErrClosed
	}
	return s.failed
}

// Depth is how many records (receipts and MOs) are spooled and not yet applied.
func (s *Spool) Depth() int64 { return s.depth.Load() }

// KeySegment is the number of the segment that holds the record of key k: a spool
// opened with Config.FirstSegment above it gives no key up to k again.
func KeySegment(k int64) uint64 { return uint64(k) >> keyBits }

// OldestKey is a key below every record still in the spool: the records of lower keys
// are applied and gone from the disk, and no Open applies them again.
func (s *Spool) OldestKey() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.segments) == 0 { // closed: nothing can be said
		return 0
	}
	return keyOf(s.segments[0].seq, 0)
}

// MODepth is how many of Depth's records are MOs.
func (s *Spool) MODepth() int64 { return s.moDepth.Load() }

// Counts are running totals since Open: records applied, failed applications retried,
// and Puts refused by ErrFull or ErrLinkBusy.
func (s *Spool) Counts() (applied, retried, refused int64) {
	return s.applied.Load(), s.retried.Load(), s.refused.Load()
}

// AppliedMOs is how many of Counts' applied records were MOs.
func (s *Spool) AppliedMOs() int64 { return s.appliedMOs.Load() }

// Drain waits until every record spooled has been applied, or ctx is done (its error
// then).
func (s *Spool) Drain(ctx context.Context) error {
	t := time.NewTicker(5 * time.Millisecond)
	defer t.Stop()
	for s.depth.Load() > 0 {
		select {
		case <-t.C:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

// Close makes what was put durable, answers every Put and closes the journal's files,
// deleting the segments whose receipts are all applied. Run must have returned; what
// is still spooled waits for the next Open.
func (s *Spool) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	s.mu.Unlock()
	close(s.stop)
	s.flusher.Wait()
	s.mu.Lock()
	defer s.mu.Unlock()
	var errs []error
	for _, seg := range s.segments {
		if seg.unapplied == 0 {
			errs = append(errs, seg.remove())
		} else {
			errs = append(errs, seg.closeFile())
		}
	}
	s.segments = nil
	return errors.Join(errs...)
}

// take removes the oldest queued receipt, or says there is none.
func (s *Spool) take() (entry, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.queue) == 0 {
		return entry{}, false
	}
	e := s.queue[0]
	s.queue[0] = entry{}
	s.queue = s.queue[1:]
	if len(s.queue) == 0 {
		s.queue = nil // let the backing array go once drained
	} else {
		select { // there is work for another worker too
		case s.wake <- struct{}{}:
		default:
		}
	}
	return e, true
}

// done notes that e was applied: its segment is deleted once all of its receipts are
// and it takes no more appends.
func (s *Spool) done(e entry) {
	s.depth.Add(-1)
	s.mu.Lock()
	defer s.mu.Unlock()
	if e.mo != nil {
		s.countMO(e.mo.Link, -1)
	}
	e.seg.unapplied--
	if e.seg.unapplied == 0 && e.seg != s.active {
		s.drop(e.seg)
	}
}

// drop deletes seg's file and forgets it; s.mu held. A deletion that fails leaves the
// file, whose records the next Open applies again: the segment is kept in the list
// then, so that OldestKey stays below its records (Close tries the deletion again).
func (s *Spool) drop(seg *segment) {
	if seg.remove() != nil {
		return
	}
	for i, x := range s.segments {
		if x == seg {
			s.segments = append(s.segments[:i], s.segments[i+1:]...)
			return
		}
	}
}

// clip bounds a field a peer sent: SMPP's own fields are far shorter (a message_id is
// at most 65 octets), and a record must stay small.
func clip(v string) string {
	if len(v) > maxField {
		return v[:maxField]
	}
	return v
}
