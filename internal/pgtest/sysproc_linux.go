package pgtest

import "syscall"

// sysProcAttr runs a server process as cred (nil: as this process) and has the kernel
// stop it (SIGQUIT, PostgreSQL's immediate shutdown) should the test binary die without
// running Main's Stop.
func sysProcAttr(cred *syscall.Credential) *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Credential: cred, Pdeathsig: syscall.SIGQUIT}
}
