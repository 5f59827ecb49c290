package receiptspool

import (
	"os"
	"syscall"
)

// datasync flushes f's data (and the size it grew to) to the disk: fdatasync, which
// leaves out the modification time that fsync would write too.
func datasync(f *os.File) error {
	for {
		err := syscall.Fdatasync(int(f.Fd()))
		if err != syscall.EINTR {
			return err
		}
	}
}
