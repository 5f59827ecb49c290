package webhook

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// listener is one of the switch's own listeners (Config.Forbidden), which no endpoint
// may point at: a merchant's key must not make the switch call its own API or callbacks
// with a body and headers of its choosing.
type listener struct {
	addr string     // as configured, for messages
	host string     // lower case, no trailing dot; "" for every interface
	ip   netip.Addr // host as an IP, if it is one
	port uint16
	// all: the listener takes every interface (host "", 0.0.0.0 or ::), so every
	// address of this machine reaches it; local holds those addresses.
	all   bool
	local []netip.Addr
	// loopback: the listener is on loopback (127.0.0.0/8, ::1, localhost), which every
	// loopback name and address reaches.
	loopback bool
}

func parseListeners(addrs []string) ([]listener, error) {
	var out []listener
	var local []netip.Addr
	for _, a := range addrs {
		if a == "" {
			continue // a listener that is off
		}
		host, port, err := net.SplitHostPort(a)
		if err != nil {
			return nil, fmt.Errorf("webhook: forbidden address %q: %w", a, err)
		}
		p, err := strconv.ParseUint(port, 10, 16)
		if err != nil {
			return nil, fmt.Errorf("webhook: forbidden address %q: bad port", a)
		}
		if p == 0 {
			continue // a port chosen at start-up: the caller passes the one chosen
		}
		l := listener{addr: a, host: normalHost(host), port: uint16(p)}
		l.ip, _ = parseIP(host)
		l.all = host == "" || l.ip.IsValid() && l.ip.IsUnspecified()
		l.loopback = isLoopbackName(host)
		if l.all {
			if local == nil {
				local = localAddrs()
			}
			l.local = local
		}
		out = append(out, l)
	}
	return out, nil
}

// reaches reports whether a connection to host:port (a name or an IP) would reach l.
func (l listener) reaches(host string, port uint16) bool {
	if port != l.port {
		return false
	}
	ip, isIP := parseIP(host)
	switch {
	case l.all:
		if isLoopbackName(host) {
			return true
		}
		for _, a := range l.local {
			if isIP && a == ip {
				return true
			}
		}
		return false
	case l.loopback:
		return isLoopbackName(host)
	case l.ip.IsValid():
		return isIP && ip == l.ip
	}
	return normalHost(host) == l.host
}

// Forbid adds listeners to Config.Forbidden: those whose port was chosen when they were
// bound, after New (a listen address with port 0). Endpoints set before are checked
// again when they are dialled.
func (h *Hooks) Forbid(addrs ...string) error {
	more, err := parseListeners(addrs)
	if err != nil {
		return err
	}
	for {
		old := h.forbidden.Load()
		all := append(append([]listener(nil), *old...), more...)
		if h.forbidden.CompareAndSwap(old, &all) {
			return nil
		}
	}
}

// forbiddenHost returns the listener that host:port would reach, if any.
func (h *Hooks) forbiddenHost(host string, port uint16) (string, bool) {
	for _, l := range *h.forbidden.Load() {
		if l.reaches(host, port) {
			return l.addr, true
		}
	}
	return "", false
}

// errForbiddenDial: a delivery would have connected to one of the switch's listeners
// (a name that resolves to one, or a redirect of DNS after the endpoint was set).
var errForbiddenDial = errors.New("webhook: the endpoint resolves to one of the switch's own listeners")

// dialControl refuses a connection, once its name is resolved, to a Forbidden address.
func (h *Hooks) dialControl(_, address string, _ syscall.RawConn) error {
	host, port, err := net.SplitHostPort(address)
	if err != nil {
		return err
	}
	p, err := strconv.ParseUint(port, 10, 16)
	if err != nil {
		return err
	}
	if _, ok := h.forbiddenHost(host, uint16(p)); ok {
		return errForbiddenDial
	}
	return nil
}

// defaultClient is the client for Config.HTTPClient nil: Timeout for the whole exchange,
// no proxy (the dial check must see the endpoint's own address), no redirects followed
// (a 3xx is not a 2xx, so the event is retried), and connections to Forbidden addresses
// refused.
func (h *Hooks) defaultClient() *http.Client {
	dialer := &net.Dialer{Timeout: h.cfg.Timeout, KeepAlive: 30 * time.Second, Control: h.dialControl}
	return &http.Client{
		Transport: &http.Transport{
			DialContext:            dialer.DialContext,
			ForceAttemptHTTP2:      true,
			MaxIdleConns:           64,
			MaxIdleConnsPerHost:    h.cfg.PerMerchant,
			IdleConnTimeout:        90 * time.Second,
			TLSHandshakeTimeout:    h.cfg.Timeout,
			ResponseHeaderTimeout:  h.cfg.Timeout,
			MaxResponseHeaderBytes: 64 << 10,
		},
		Timeout:       h.cfg.Timeout,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// parseIP reads host as an IP address (brackets, zone and IPv4-in-IPv6 form removed).
func parseIP(host string) (netip.Addr, bool) {
	host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	if i := strings.IndexByte(host, '%'); i >= 0 {
		host = host[:i]
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return netip.Addr{}, false
	}
	return ip.Unmap(), true
}

// isLoopbackName reports whether host names this machine by loopback: localhost (and
// names under .localhost), a loopback IP, or the unspecified address, which a connection
// reaches this machine by too.
func isLoopbackName(host string) bool {
	h := normalHost(host)
	if h == "localhost" || strings.HasSuffix(h, ".localhost") {
		return true
	}
	ip, ok := parseIP(host)
	return ok && (ip.IsLoopback() || ip.IsUnspecified())
}

func normalHost(host string) string {
	return strings.TrimSuffix(strings.ToLower(host), ".")
}

// localAddrs are this machine's addresses, for a listener on every interface.
func localAddrs() []netip.Addr {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return nil
	}
	var out []netip.Addr
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok {
			if ip, ok := netip.AddrFromSlice(n.IP); ok {
				out = append(out, ip.Unmap())
			}
		}
	}
	return out
}
