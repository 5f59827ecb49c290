//go:build unix

package main

import (
	"os"
	"syscall"
)

// sigTerm asks serve to shut down gracefully.
var sigTerm os.Signal = syscall.SIGTERM

// serveProcAttr puts serve into a process group of its own, so that a Ctrl-C at the
// terminal reaches only loadgen, which then stops serve itself after its checks. On
// Linux serve is also killed when loadgen dies without stopping it (a second Ctrl-C).
func serveProcAttr() *syscall.SysProcAttr {
	a := &syscall.SysProcAttr{Setpgid: true}
	setParentDeathSignal(a)
	return a
}
