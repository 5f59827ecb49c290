package receiptspool

import (
	"fmt"
	"time"
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
// then queues its receipts for Run and answers their Puts. A segment big or old enough
// takes no appends after this batch. A failed write or sync fails the batch and every
// later Put: the kernel may have dropped what it was writing, so nothing after can be
// called durable.
func (s *Spool) flushOnce() {
	s.mu.Lock()
	b, seg := s.open, s.active
	s.open = nil
	if b == nil {
		s.mu.Unlock()
		return
	}
	err := s.failed
	rotated := false
	if err == nil && !s.closed && (seg.size+int64(len(b.buf)) >= s.cfg.SegmentBytes || time.Since(seg.created) >= s.cfg.SegmentAge) {
		// Later Puts go to a new segment; this batch is seg's last. A segment that
		// cannot be created leaves seg taking appends.
		if next, cerr := createSegment(s.cfg.Dir, seg.seq+1); cerr == nil {
			s.active = next
			s.segments = append(s.segments, next)
			rotated = true
		}
	}
	s.mu.Unlock()

	if err == nil {
		err = seg.write(b.buf)
	}
	if err == nil && !s.cfg.NoSync {
		err = datasync(seg.f)
	}
	if rotated {
		if cerr := seg.closeFile(); err == nil {
			err = cerr
		}
	}

	s.mu.Lock()
	if err != nil {
		if s.failed == nil {
			s.failed = fmt.Errorf("receipt spool: write or sync of %s failed; restart needed: %w", seg.path, err)
		}
		b.err = s.failed
		for _, e := range b.entries {
			e.seg.unapplied--
		}
		s.depth.Add(-int64(len(b.entries)))
	} else {
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
