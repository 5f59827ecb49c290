package ivr

import (
	"container/list"
	"context"
	"slices"
)

// Limits on the calls kept in memory. A callback needs no proof that it comes from a
// real call beyond what the listener checks, so a flood of forged first callbacks must
// not be able to fill memory, nor to turn real callers away: past either limit the
// oldest call is forgotten to make room for the newcomer, never the newcomer refused.
// A forgotten call that is still going on hears session_gone at its next key; a payment
// it started stays with the engine, confirmable by SMS until its code expires.
const (
	// maxSessions bounds the calls in memory at once, ended ones included until they
	// time out.
	maxSessions = 20_000
	// maxPerNumber bounds the calls of one number (the caller inbound, the number called
	// outbound). A phone has one call at a time; a little more leaves room for a call
	// that ended without its isActive=0 while the next one starts.
	maxPerNumber = 3
)

// sessionIndex keeps every call in memory: by the gateway's session ID, by number and
// in the order they started, so that the oldest can be forgotten in constant time.
// It is not safe for concurrent use: Service.mu guards it.
type sessionIndex struct {
	byID    map[string]*session
	byPhone map[string][]*session // oldest first; at most perNumber each
	order   *list.List            // of *session, oldest first

	max, perNumber int
}

func newSessionIndex(max, perNumber int) *sessionIndex {
	return &sessionIndex{byID: make(map[string]*session), byPhone: make(map[string][]*session),
		order: list.New(), max: max, perNumber: perNumber}
}

// get returns the call stored under id.
func (x *sessionIndex) get(id string) *session { return x.byID[id] }

func (x *sessionIndex) len() int { return len(x.byID) }

// add stores sess under id, first forgetting the oldest call of its number when that
// number has perNumber calls, and then the oldest call of all when there are max. It
// returns how many calls it forgot. id must not be stored already.
func (x *sessionIndex) add(id string, sess *session) (evicted int) {
	sess.id = id
	if mine := x.byPhone[sess.phone]; len(mine) >= x.perNumber {
		x.remove(mine[0])
		evicted++
	}
	for len(x.byID) >= x.max && x.order.Len() > 0 {
		x.remove(x.order.Front().Value.(*session))
		evicted++
	}
	x.byID[id] = sess
	x.byPhone[sess.phone] = append(x.byPhone[sess.phone], sess)
	sess.el = x.order.PushBack(sess)
	return evicted
}

// remove forgets sess, if it is still stored.
func (x *sessionIndex) remove(sess *session) {
	if sess.el == nil || x.byID[sess.id] != sess {
		return
	}
	delete(x.byID, sess.id)
	x.order.Remove(sess.el)
	sess.el = nil
	mine := slices.DeleteFunc(x.byPhone[sess.phone], func(o *session) bool { return o == sess })
	if len(mine) == 0 {
		delete(x.byPhone, sess.phone)
	} else {
		x.byPhone[sess.phone] = mine
	}
}

// Sessions is how many calls are in memory.
func (s *Service) Sessions() int {
	if s.db != nil {
		n, err := s.db.Count(context.Background())
		if err != nil {
			s.log.Error().Err(err).Msg("calls not counted")
		}
		return n
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.sessions.len()
}

// Sweep forgets calls idle longer than the session timeout and returns how many. A
// payment such a call started stays with the engine: its code still confirms it by SMS
// until it expires.
func (s *Service) Sweep() int {
	now := s.now()
	cutoff := now.Add(-s.cfg.SessionTimeout)
	if s.db != nil {
		n, err := s.db.Sweep(context.Background(), now.UnixNano(), cutoff.UnixNano())
		if err != nil {
			s.log.Error().Err(err).Msg("call sweep failed")
		}
		return n
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, sess := range s.sessions.byID {
		if !sess.mu.TryLock() { // in the middle of a step: alive
			continue
		}
		if sess.seen.Before(cutoff) {
			s.sessions.remove(sess)
			n++
		}
		sess.mu.Unlock()
	}
	return n
}

// store keeps sess as the call under id, unless a first callback of the same call raced
// it there; it reports whether sess was stored.
func (s *Service) store(id string, sess *session) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.sessions.get(id) != nil {
		return false
	}
	if n := s.sessions.add(id, sess); n > 0 {
		s.evicted.Add(float64(n))
	}
	return true
}

// end forgets a call that the gateway reports ended.
func (s *Service) end(id string) bool {
	if s.db != nil {
		ok, err := s.db.Remove(context.Background(), id)
		if err != nil {
			s.log.Error().Err(err).Msg("call removal failed")
		}
		return ok
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	sess := s.sessions.get(id)
	if sess != nil {
		s.sessions.remove(sess)
	}
	return sess != nil
}

// lookup returns the session of a call, if any.
func (s *Service) lookup(id string) (*session, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	sess := s.sessions.get(id)
	return sess, sess != nil
}

// current reports whether sess is still the session stored under id.
func (s *Service) current(id string, sess *session) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.sessions.get(id) == sess
}

// forget removes sess from under id, unless another session took its place.
func (s *Service) forget(sess *session) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sessions.remove(sess)
}
