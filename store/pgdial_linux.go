package store

import (
	"syscall"

	"golang.org/x/sys/unix"
)

// setDeadPeerTimeout has the kernel drop a TCP connection whose sent data stays
// unacknowledged for pgDeadPeerTimeout (TCP_USER_TIMEOUT).
func setDeadPeerTimeout(network, _ string, c syscall.RawConn) error {
	if network != "tcp" && network != "tcp4" && network != "tcp6" {
		return nil
	}
	var serr error
	err := c.Control(func(fd uintptr) {
		serr = unix.SetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_USER_TIMEOUT, int(pgDeadPeerTimeout.Milliseconds()))
	})
	if err != nil {
		return err
	}
	return serr
}
