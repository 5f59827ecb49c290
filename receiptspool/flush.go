package receiptspool

import (
	"fmt"
	"time"

	"github.com/payswitch/payswitch/internal/durable"
)

// runFlusher writes and syncs the open batch, at most once per Config.SyncInterval, until
// Close; then it flushes what is left and ends.
func (s *Spool) runFlusher() {
	defer s.flusher.Done()
	var last time.Time
	for {
		select {
		case <-s.flush:
		case <-s.stop:
			s.flushOnce()
			return
		}
		if wait := s.cfg.SyncInterval - time.Since(last); wait > 0 {
			t := time.NewTimer(wait)
			select {
			case <-t.C:
			case <-s.stop:
				t.Stop()
			}
		}
		last = time.Now()
		s.flushOnce()
	}
}

// flushOnce appends the open batch to the active segment in one write, syncs it, and
// then queues its receipts for Run and answers their Puts. A failed write fails the batch
// (its Puts answer an error, and the SMSC sends those receipts again) and ends the
// segment, whose torn tail the next Open drops: the next batch starts a new one. A failed
// fdatasync fails the batch and every later Put: the kernel may have dropped what it was
// writing, so nothing after can be called durable until the process starts again (as the
// store does for its WAL).
func (s *Spool) flushOnce() {
	s.mu.Lock()
	b := s.open
	s.open = nil
	if b == nil {
		s.mu.Unlock()
		return
	}
	err := s.failed
	if err == nil {
		err = s.segmentFor(int64(len(b.buf)))
	}
	seg := s.active
	s.mu.Unlock()

	if err == nil {
		if err = seg.write(b.buf); err != nil {
			seg.broken = true
		} else if !s.cfg.NoSync {
			if err = durable.Datasync(seg.f); err != nil {
				s.mu.Lock()
				if s.failed == nil {
					s.failed = fmt.Errorf("receipt spool: fdatasync of %s failed; restart needed: %w", seg.path, err)
				}
				s.mu.Unlock()
			}
		}
	}

	s.mu.Lock()
	if err != nil {
		b.err = fmt.Errorf("receipt spool: %w", err)
		s.depth.Add(-int64(len(b.entries)))
		for _, e := range b.entries {
			if e.mo != nil {
				s.countMO(e.mo.Link, -1)
			}
		}
	} else {
		for i := range b.entries {
			b.entries[i].seg, b.entries[i].key = seg, keyOf(seg.seq, seg.records+i)
		}
		seg.records += len(b.entries)
		seg.unapplied += len(b.entries)
		s.queue = append(s.queue, b.entries...)
	}
	s.mu.Unlock()
	if err == nil {
		select {
		case s.wake <- struct{}{}:
		default:
		}
	}
	close(b.done)
}

// segmentFor makes sure the active segment may take n more bytes: a segment that is
// big or old enough, or whose last write failed, gives way to a new one, and goes at
// once if every receipt in it is applied. A new segment that cannot be created leaves
// the old one taking appends, unless its last write failed; s.mu held.
func (s *Spool) segmentFor(n int64) error {
	seg := s.active
	if !seg.broken && seg.size+n < s.cfg.SegmentBytes && time.Since(seg.created) < s.cfg.SegmentAge {
		return nil
	}
	next, err := createSegment(s.cfg.Dir, seg.seq+1)
	if err != nil {
		if seg.broken {
			return err
		}
		return nil
	}
	_ = seg.closeFile()
	s.active = next
	s.segments = append(s.segments, next)
	if seg.unapplied == 0 {
		s.drop(seg)
	}
	return nil
}
