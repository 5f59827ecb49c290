package outbox

import (
	"syscall"
	"time"
	"unsafe"
)

// threadCPU is the CPU time of the calling thread (CLOCK_THREAD_CPUTIME_ID, which
// package syscall does not name); lock the goroutine to its thread around the part to
// time (runtime.LockOSThread). getrusage(RUSAGE_THREAD) is no use for this: it splits
// the time by the scheduler's ticks, and a millisecond's reading came out anywhere
// between a tenth and twice the truth.
func threadCPU() time.Duration {
	const clockThreadCPUTimeID = 3
	var ts syscall.Timespec
	if _, _, errno := syscall.Syscall(syscall.SYS_CLOCK_GETTIME, clockThreadCPUTimeID,
		uintptr(unsafe.Pointer(&ts)), 0); errno != 0 {
		panic(errno)
	}
	return time.Duration(ts.Nano())
}
