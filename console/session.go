package console

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"sync"
	"time"
)

// Session lifetimes. A session ends IdleTimeout after its last request, SessionMaxAge
// after sign-in whatever happens, and at once on sign-out: the server forgets it, so a
// copied cookie dies with it.
const (
	SessionMaxAge = 12 * time.Hour
	IdleTimeout   = 30 * time.Minute
	// MaxSessions bounds the session table; when full, the session idle longest goes,
	// so that a flood of sign-ins costs memory once, not without end.
	MaxSessions = 1000
)

// session is one signed-in browser. It keeps the token's name and role, never the token.
type session struct {
	name     string // the config token's name, for logs
	role     Role
	csrf     string // the form token of every form this session is shown
	created  time.Time
	lastSeen time.Time
}

// sessions is the in-memory session table. The key is the SHA-256 of the cookie's value,
// so that a dump of the table does not hold cookies that work.
type sessions struct {
	mu sync.Mutex // guards m
	m  map[[32]byte]*session
}

func newSessions() *sessions { return &sessions{m: map[[32]byte]*session{}} }

// randomToken is 32 random bytes, URL-safe base64.
func randomToken() string {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic("console: no randomness: " + err.Error()) // crypto/rand does not fail on Linux
	}
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// create starts a session and returns its cookie value.
func (s *sessions) create(name string, role Role, now time.Time) (string, *session) {
	id := randomToken()
	sess := &session{name: name, role: role, csrf: randomToken(), created: now, lastSeen: now}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.expireLocked(now)
	if len(s.m) >= MaxSessions {
		var oldest [32]byte
		var t time.Time
		for k, v := range s.m {
			if t.IsZero() || v.lastSeen.Before(t) {
				oldest, t = k, v.lastSeen
			}
		}
		delete(s.m, oldest)
	}
	s.m[sha256.Sum256([]byte(id))] = sess
	return id, sess
}

// get returns the live session of cookie value id and marks it used at now.
func (s *sessions) get(id string, now time.Time) (session, bool) {
	if id == "" {
		return session{}, false
	}
	k := sha256.Sum256([]byte(id))
	s.mu.Lock()
	defer s.mu.Unlock()
	sess, ok := s.m[k]
	if !ok {
		return session{}, false
	}
	if expired(sess, now) {
		delete(s.m, k)
		return session{}, false
	}
	sess.lastSeen = now
	return *sess, true
}

// end forgets the session of cookie value id.
func (s *sessions) end(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.m, sha256.Sum256([]byte(id)))
}

func (s *sessions) len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.m)
}

func expired(sess *session, now time.Time) bool {
	return now.Sub(sess.created) >= SessionMaxAge || now.Sub(sess.lastSeen) >= IdleTimeout
}

// expireLocked drops the sessions that have ended; the caller holds mu.
func (s *sessions) expireLocked(now time.Time) {
	for k, v := range s.m {
		if expired(v, now) {
			delete(s.m, k)
		}
	}
}

// sameToken compares two form tokens in constant time.
func sameToken(a, b string) bool {
	return a != "" && subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1
}
