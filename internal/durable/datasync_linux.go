package durable

import (
	"os"
	"syscall"
)

// Datasync flushes f's data and the metadata needed to read it back (its size), as
// SQLite itself does on Linux: fdatasync skips the timestamps that fsync would also
// write. A signal that interrupts it does not count as a failure.
func Datasync(f *os.File) error {
	for {
		if err := syscall.Fdatasync(int(f.Fd())); err != syscall.EINTR {
			return err
		}
	}
}
