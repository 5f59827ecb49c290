package smpp

import (
	"crypto/sha256"
	"crypto/subtle"
	"net"
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/payswitch/payswitch/smpp/server"
)

// Bind throttling of the Gateway. smpp/server allows one bind per connection, but
// nothing limits connections: without a throttle, passwords can be tried as fast as
// the network allows.
const (
	// bindFailureLimit failed binds from one address within bindFailureWindow lock the
	// address out for bindLockout: its binds are refused without being checked.
	bindFailureLimit  = 10
	bindFailureWindow = time.Minute
	bindLockout       = time.Minute
	// bindThrottleMax is how many addresses are tracked at once; beyond it those that
	// failed longest ago are forgotten, so that the table cannot grow without bound.
	bindThrottleMax = 4096
)

// bindThrottle counts failed binds per remote address (an IPv4 address, or the /64 of
// an IPv6 one, which one host usually holds whole). A successful bind clears nothing:
// otherwise an ESME with one valid account could interleave its own binds with guesses
// at another's password.
type bindThrottle struct {
	mu    sync.Mutex // guards addrs
	addrs map[string]*bindFailures
}

type bindFailures struct {
	since       time.Time // start of the window being counted
	n           int       // failures since since
	lockedUntil time.Time
	last        time.Time // last failure
}

func newBindThrottle() *bindThrottle {
	return &bindThrottle{addrs: make(map[string]*bindFailures)}
}

// locked reports whether addr is locked out at now.
func (t *bindThrottle) locked(addr string, now time.Time) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	f := t.addrs[addr]
	return f != nil && now.Before(f.lockedUntil)
}

// failed counts a failed bind from addr and reports whether addr is now locked out.
func (t *bindThrottle) failed(addr string, now time.Time) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	f := t.addrs[addr]
	if f == nil {
		if len(t.addrs) >= bindThrottleMax {
			t.evictLocked(now)
		}
		f = &bindFailures{since: now}
		t.addrs[addr] = f
	}
	if now.Sub(f.since) >= bindFailureWindow {
		f.since, f.n = now, 0
	}
	f.n++
	f.last = now
	if f.n >= bindFailureLimit {
		f.lockedUntil = now.Add(bindLockout)
		f.since, f.n = now, 0
	}
	return now.Before(f.lockedUntil)
}

// evictLocked forgets the addresses whose failures no longer count and, when that is
// not enough, the eighth of the table that failed longest ago: a flood of new addresses
// pays for one sort per eighth of the table, not a scan per address.
func (t *bindThrottle) evictLocked(now time.Time) {
	type entry struct {
		addr string
		last time.Time
	}
	live := make([]entry, 0, len(t.addrs))
	for addr, f := range t.addrs {
		if now.Sub(f.since) >= bindFailureWindow && !now.Before(f.lockedUntil) {
			delete(t.addrs, addr)
			continue
		}
		live = append(live, entry{addr, f.last})
	}
	if len(t.addrs) < bindThrottleMax {
		return
	}
	slices.SortFunc(live, func(a, b entry) int { return a.last.Compare(b.last) })
	for _, e := range live[:bindThrottleMax/8] {
		delete(t.addrs, e.addr)
	}
}

// size is how many addresses are tracked.
func (t *bindThrottle) size() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.addrs)
}

// addrKey is what the throttle counts for a remote "host:port".
func addrKey(remote string) string {
	ap, err := netip.ParseAddrPort(remote)
	if err != nil {
		if host, _, err := net.SplitHostPort(remote); err == nil {
			return host
		}
		return remote
	}
	a := ap.Addr().Unmap()
	if a.Is4() {
		return a.String()
	}
	return netip.PrefixFrom(a, 64).Masked().String()
}

// Authenticate checks the account's password in constant time and reserves one of its
// binds; Unbound gives it back (smpp/server calls Bound and then Unbound for every bind
// that was accepted). An unknown or disabled system_id and a wrong password get the
// same answer, ESME_RINVPASWD, after the same work, so that a bind does not tell which
// accounts exist. An address locked out by failed binds gets ESME_RBINDFAIL unchecked.
func (h *gatewayHandler) Authenticate(systemID, password, bindType, remote string) uint32 {
	g := (*Gateway)(h)
	now, addr := g.now(), addrKey(remote)
	log := g.log.With().Str("system_id", systemID).Str("bind", bindType).Str("remote", remote).Logger()
	if g.guard.locked(addr, now) {
		g.quiet.Event("bind-locked", log.Info()).Msg("smpp server bind from a locked-out address refused unchecked")
		return server.StatusBindFail
	}
	a := g.accounts[systemID]
	want, reason := g.decoy, "unknown system_id"
	if a != nil {
		want, reason = a.password, "wrong password"
	}
	given := sha256.Sum256([]byte(password))
	if subtle.ConstantTimeCompare(given[:], want[:]) != 1 || a == nil {
		locked := g.guard.failed(addr, now)
		log.Info().Str("reason", reason).Bool("locked_out", locked).Msg("smpp server bind refused")
		return server.StatusInvPaswd
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.closed {
		return server.StatusBindFail
	}
	if a.binds >= a.maxBinds {
		log.Warn().Int("max_binds", a.maxBinds).Msg("smpp server bind beyond the account's limit")
		return server.StatusAlyBnd
	}
	a.binds++
	return server.StatusOK
}

// Bound makes a session that can receive a target for the account's MT.
func (h *gatewayHandler) Bound(s *server.Session) {
	a := (*Gateway)(h).accounts[s.SystemID()]
	if a == nil {
		return
	}
	a.mu.Lock()
	if s.CanReceive() {
		a.receivers = append(a.receivers, s)
	}
	up := len(a.receivers) > 0
	a.mu.Unlock()
	a.metrics.setUp(up)
	if s.CanReceive() {
		a.wakeReceipts() // those owed while it was away
	}
}

// Unbound forgets the session and frees its bind.
func (h *gatewayHandler) Unbound(s *server.Session) {
	a := (*Gateway)(h).accounts[s.SystemID()]
	if a == nil {
		return
	}
	a.mu.Lock()
	a.binds--
	for i, x := range a.receivers {
		if x == s {
			a.receivers = append(a.receivers[:i], a.receivers[i+1:]...)
			break
		}
	}
	up := len(a.receivers) > 0
	a.mu.Unlock()
	a.metrics.setUp(up)
}
