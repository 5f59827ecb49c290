package store

import (
	"os"
	"syscall"
)

// datasync flushes f's data and the metadata needed to read it back (its size), as
// SQLite itself does on Linux: fdatasync skips the timestamps that fsync would also write.
func datasync(f *os.File) error { return syscall.Fdatasync(int(f.Fd())) }

func inode(f *os.File) (uint64, error) {
	fi, err := f.Stat()
	if err != nil {
		return 0, err
	}
	return fi.Sys().(*syscall.Stat_t).Ino, nil
}
