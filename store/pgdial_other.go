//go:build !linux

package store

import "syscall"

// setDeadPeerTimeout does nothing here: only Linux has TCP_USER_TIMEOUT, and keep-alive
// probes alone find a dead server's machine when the connection is idle.
func setDeadPeerTimeout(string, string, syscall.RawConn) error { return nil }
