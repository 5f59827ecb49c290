package pgtest

import "syscall"

// sysProcAttr runs a server process as cred (nil: as this process), as the leader of a
// process group of its own (so that its backends can be killed with it), and has the
// kernel stop it (SIGQUIT, PostgreSQL's immediate shutdown) should the test binary die
// without running Main's Stop.
func sysProcAttr(cred *syscall.Credential) *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Credential: cred, Setpgid: true, Pdeathsig: syscall.SIGQUIT}
}
