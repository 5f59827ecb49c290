package main

import (
	"os"
	"strconv"

	"golang.org/x/sys/unix"
)

// yieldToServe lowers this process's CPU priority (nice 10) and asks for idle-class
// I/O, so that a backup takes what serve leaves: on a machine with two cores the copy
// and its check otherwise take one of them, and its writes queue ahead of serve's WAL
// fsyncs. Linux keeps both per thread, so every thread the process has is changed;
// threads started later inherit from the one that starts them. Best effort: a kernel
// or scheduler that ignores either changes nothing else.
func yieldToServe() {
	tasks, err := os.ReadDir("/proc/self/task")
	if err != nil {
		return
	}
	const ioprioClassIdle, ioprioClassShift, ioprioWhoProcess = 3, 13, 1
	for _, t := range tasks {
		tid, err := strconv.Atoi(t.Name())
		if err != nil {
			continue
		}
		unix.Setpriority(unix.PRIO_PROCESS, tid, 10)
		unix.Syscall(unix.SYS_IOPRIO_SET, ioprioWhoProcess, uintptr(tid), ioprioClassIdle<<ioprioClassShift)
	}
}
