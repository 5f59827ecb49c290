package receiptspool

import (
	"context"
	"sync"
	"time"
)

// maxRetryAfter caps the doubling of Config.RetryAfter.
const maxRetryAfter = 30 * time.Second

// Run applies the spooled records with apply's function for their kind, the oldest
// first, Config.Workers at once; a record leaves the spool once its application
// returned nil, and one that failed is tried again after Config.RetryAfter, doubling.
// It returns when ctx is done, once the records in hand are applied or left spooled.
//
// MOs of one phone are not applied in their order of arrival when several wait at
// once, as an SMSC's window lets several of them reach the switch at once without a
// spool: each is a decision of its own, which the engine takes on the database's
// state.
func (s *Spool) Run(ctx context.Context, apply Appliers) {
	var workers sync.WaitGroup
	for range s.cfg.Workers {
		workers.Add(1)
		go func() {
			defer workers.Done()
			for {
				e, ok := s.next(ctx)
				if !ok {
					return
				}
				if s.applyOne(ctx, e, apply) {
					s.done(e)
				}
			}
		}()
	}
	workers.Wait()
}

// next waits for the oldest queued receipt; false once ctx is done.
func (s *Spool) next(ctx context.Context) (entry, bool) {
	for {
		if e, ok := s.take(); ok {
			return e, true
		}
		select {
		case <-s.wake:
		case <-ctx.Done():
			return entry{}, false
		}
	}
}

// applyOne applies e until it succeeds (true) or ctx is done (false: it stays spooled).
func (s *Spool) applyOne(ctx context.Context, e entry, apply Appliers) bool {
	wait := s.cfg.RetryAfter
	for {
		var err error
		if e.mo != nil {
			m := *e.mo
			m.Key = e.key
			err = apply.MO(ctx, m)
		} else {
			err = apply.Receipt(ctx, e.r)
		}
		if err == nil {
			s.applied.Add(1)
			if e.mo != nil {
				s.appliedMOs.Add(1)
			}
			return true
		}
		if ctx.Err() != nil {
			return false
		}
		s.retried.Add(1)
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return false
		}
		wait = min(2*wait, maxRetryAfter)
	}
}
