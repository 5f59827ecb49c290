package ussd

import (
	"hash/maphash"
	"sync"
)

// node is a place in the menu: what the session's next input answers.
type node uint8

const (
	nodeMain           node = iota // the main menu
	nodeSendNumber                 // 1: recipient's number
	nodeSendAmount                 // 1*<number>: amount
	nodeMerchantCode               // 2: merchant code
	nodeMerchantAmount             // 2*<code>: amount
	nodeAirtimeChoice              // 3: for me or another number
	nodeAirtimeNumber              // 3*2: the number
	nodeAirtimeAmount              // 3*1 or 3*2*<number>: amount
	nodeAccount                    // 4: balance or last payments
	nodeCode                       // a payment waits for its code
	nodePage                       // a long screen is being paged
	nodeDone                       // the session answered END; kept to answer a repeat
)

// session is one dialogue's place in the menu. It is kept small: 100,000 of them live in
// memory at once on a busy switch, with no goroutine or timer of their own.
type session struct {
	mu sync.Mutex // serialises steps of this session; guards every field below

	node     node   // what the next input answers
	lastEnd  bool   // last was an END screen
	consumed uint16 // inputs of the gateway's text already acted on
	seen     int64  // unix nanoseconds of the last step, for expiry
	phone    string // the caller, normalised; a session never changes hands
	raw      string // the caller as the transport spelt it on the dial, to skip normalising
	payment  string // ID of the payment waiting for its code (nodeCode)
	field    string // number or merchant code collected before the amount
	last     string // the screen last shown, for a repeated request
	page     *paging
}

// paging is what is left of a long screen while the user reads its first pages.
type paging struct {
	rest, opts string
	shown      string // the page on the screen, shown again after a stray input
	end        bool
	next       node // where the session goes after the last page
}

// shards is a map of sessions split under several mutexes, so that concurrent steps of
// different sessions rarely wait for each other. A shard lock is held only to find,
// add or remove a session, never across a step.
type shards struct {
	seed maphash.Seed
	s    [shardCount]shard
}

const shardCount = 32

type shard struct {
	mu sync.Mutex // guards m
	m  map[string]*session
}

func newShards() *shards {
	ss := &shards{seed: maphash.MakeSeed()}
	for i := range ss.s {
		ss.s[i].m = make(map[string]*session)
	}
	return ss
}

func (ss *shards) of(key string) *shard {
	return &ss.s[maphash.String(ss.seed, key)%shardCount]
}

// current reports whether s is still the session stored under key.
func (ss *shards) current(key string, s *session) bool {
	sh := ss.of(key)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	return sh.m[key] == s
}

// open returns the live session under key. When there is none (or replace is set) and
// create is set, it stores a new session for phone and returns it locked, with fresh set;
// a session it did not create is returned unlocked.
func (ss *shards) open(key, phone string, cutoff int64, create, replace bool) (s *session, fresh bool) {
	sh := ss.of(key)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if !replace {
		s = sh.m[key]
		if s != nil && s.mu.TryLock() { // a session busy with a step is alive
			expired := s.seen < cutoff
			s.mu.Unlock()
			if expired {
				delete(sh.m, key)
				s = nil
			}
		}
		if s != nil || !create {
			return s, false
		}
	}
	s = &session{phone: phone}
	s.mu.Lock()
	sh.m[key] = s
	return s, true
}

// remove drops the session under key, if any, and reports whether there was one.
func (ss *shards) remove(key string) bool {
	sh := ss.of(key)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	_, ok := sh.m[key]
	delete(sh.m, key)
	return ok
}

// sweep removes every session idle since before cutoff and returns how many. Sessions
// in the middle of a step are alive and stay.
func (ss *shards) sweep(cutoff int64) int {
	n := 0
	for i := range ss.s {
		sh := &ss.s[i]
		sh.mu.Lock()
		for k, s := range sh.m {
			if !s.mu.TryLock() {
				continue
			}
			if s.seen < cutoff {
				delete(sh.m, k)
				n++
			}
			s.mu.Unlock()
		}
		sh.mu.Unlock()
	}
	return n
}

func (ss *shards) len() int {
	n := 0
	for i := range ss.s {
		sh := &ss.s[i]
		sh.mu.Lock()
		n += len(sh.m)
		sh.mu.Unlock()
	}
	return n
}
