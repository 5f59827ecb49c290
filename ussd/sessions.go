package ussd

import (
	"container/list"
	"hash/maphash"
	"slices"
	"sync"
	"sync/atomic"
)

// Limits on the sessions kept in memory. Only a dial creates a session and a dial
// proves nothing beyond what the callback listener checks, so a flood of forged dials
// must not fill memory nor turn real users away: past either limit the oldest session
// (by dial) is forgotten to make room for the newcomer, never the newcomer refused. A
// forgotten session that is still in use ends with session_expired at its next input;
// a payment it started stays with the engine, confirmable by SMS until its code
// expires.
const (
	// maxSessions bounds the sessions in memory at once, ended ones included until
	// they time out.
	maxSessions = 100_000
	// maxPerNumber bounds the sessions of one phone. A phone has one USSD dialogue at
	// a time; a little more leaves room for one that ended without the gateway saying
	// so while the next one starts.
	maxPerNumber = 3
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
	nodePushChoice                 // a pushed request: 1 pays, 2 refuses (push.go)
	nodePushCode                   // a pushed request waits for its code
	nodeProductCode                // 2*<code>*0: the product's code (buy.go)
	nodeQuantity                   // 2*<code>*0*<product>: how many
	nodeBuyConfirm                 // 2*<code>*0*<product>*<quantity>: 1 buys, 2 does not
	nodeWithdrawAgent              // 5: the agent's number (withdraw.go)
	nodeWithdrawAmount             // 5*<agent>: amount
)

// session is one dialogue's place in the menu. It is kept small: up to maxSessions of
// them live in memory at once, with no goroutine or timer of their own.
type session struct {
	// key, el and gone are the roster's, guarded by roster.mu. gone is set when the
	// session leaves its shard before admit has enrolled it, so that admit does not.
	key  string
	el   *list.Element
	gone bool

	mu sync.Mutex // serialises steps of this session; guards every field below

	node     node   // what the next input answers
	lastEnd  bool   // last was an END screen
	consumed uint16 // inputs of the gateway's text already acted on
	seen     int64  // unix nanoseconds of the last step, for expiry
	phone    string // the caller, normalised; a session never changes hands
	raw      string // the caller as the transport spelt it on the dial, to skip normalising
	payment  string // ID of the payment waiting for its code (nodeCode)
	field    string // number or merchant code collected before the amount
	product  string // the product code of a purchase (buy.go)
	quantity uint16 // how many of it
	last     string // the screen last shown, for a repeated request
	page     *paging
	push     *pushInfo // set in a push session (push.go), nil in a dialogue
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
// add or remove a session, never across a step. The roster keeps the limits.
type shards struct {
	seed   maphash.Seed
	s      [shardCount]shard
	roster roster
}

// roster orders every session by dial and groups them by phone, so that the limits
// can find the oldest in constant time. Its lock is taken after a shard lock or alone,
// never before one: admit releases it before it removes what it evicted.
type roster struct {
	mu      sync.Mutex            // guards order, byPhone and the sessions' key and el
	order   *list.List            // of *session, oldest first
	byPhone map[string][]*session // oldest first; at most perNumber each

	max, perNumber int
	evicted        atomic.Int64 // sessions forgotten to make room
}

const shardCount = 32

type shard struct {
	mu sync.Mutex // guards m
	m  map[string]*session
}

func newShards(max, perNumber int) *shards {
	ss := &shards{seed: maphash.MakeSeed(), roster: roster{order: list.New(), byPhone: make(map[string][]*session),
		max: max, perNumber: perNumber}}
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
// a session it did not create is returned unlocked. A new session may evict others
// (see maxSessions).
func (ss *shards) open(key, phone string, cutoff int64, create, replace bool) (s *session, fresh bool) {
	sh := ss.of(key)
	sh.mu.Lock()
	old := sh.m[key]
	if !replace {
		s = old
		if s != nil && s.mu.TryLock() { // a session busy with a step is alive
			expired := s.seen < cutoff
			s.mu.Unlock()
			if expired {
				delete(sh.m, key)
				ss.roster.drop(s)
				s = nil
			}
		}
		if s != nil || !create {
			sh.mu.Unlock()
			return s, false
		}
	} else if old != nil {
		ss.roster.drop(old)
	}
	s = &session{phone: phone}
	s.mu.Lock()
	sh.m[key] = s
	sh.mu.Unlock()
	ss.admit(key, s)
	return s, true
}

// admit enrols s, stored under key, in the roster, and removes the sessions it evicts
// to make room for it.
func (ss *shards) admit(key string, s *session) {
	r := &ss.roster
	var evicted []*session
	r.mu.Lock()
	if s.gone { // removed from its shard already (an end notice raced the dial)
		r.mu.Unlock()
		return
	}
	if mine := r.byPhone[s.phone]; len(mine) >= r.perNumber {
		evicted = append(evicted, mine[0])
		r.dropLocked(mine[0])
	}
	for r.order.Len() >= r.max && r.order.Len() > 0 {
		oldest := r.order.Front().Value.(*session)
		evicted = append(evicted, oldest)
		r.dropLocked(oldest)
	}
	s.key = key
	s.el = r.order.PushBack(s)
	r.byPhone[s.phone] = append(r.byPhone[s.phone], s)
	r.mu.Unlock()
	r.evicted.Add(int64(len(evicted)))
	for _, v := range evicted {
		ss.removeSession(v)
	}
}

// removeSession removes s from its shard, unless another session took its key.
func (ss *shards) removeSession(s *session) {
	r := &ss.roster
	r.mu.Lock()
	key := s.key
	r.mu.Unlock()
	sh := ss.of(key)
	sh.mu.Lock()
	if sh.m[key] == s {
		delete(sh.m, key)
	}
	sh.mu.Unlock()
}

// drop takes s off the roster, if it is on it.
func (r *roster) drop(s *session) {
	r.mu.Lock()
	r.dropLocked(s)
	r.mu.Unlock()
}

func (r *roster) dropLocked(s *session) {
	if s.el == nil {
		s.gone = true
		return
	}
	r.order.Remove(s.el)
	s.el = nil
	mine := slices.DeleteFunc(r.byPhone[s.phone], func(o *session) bool { return o == s })
	if len(mine) == 0 {
		delete(r.byPhone, s.phone)
	} else {
		r.byPhone[s.phone] = mine
	}
}

// has reports whether a session, live or not, is stored under key.
func (ss *shards) has(key string) bool {
	sh := ss.of(key)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	_, ok := sh.m[key]
	return ok
}

// ofPhone returns the sessions of phone on the roster, oldest first.
func (ss *shards) ofPhone(phone string) []*session {
	r := &ss.roster
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.byPhone[phone])
}

// remove drops the session under key, if any, and reports whether there was one.
func (ss *shards) remove(key string) bool {
	sh := ss.of(key)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	s, ok := sh.m[key]
	if ok {
		delete(sh.m, key)
		ss.roster.drop(s)
	}
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
				ss.roster.drop(s)
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
