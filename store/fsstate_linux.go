package store

import "syscall"

// stRdonly is ST_RDONLY, the statfs flag of a filesystem mounted read-only.
const stRdonly = 0x1

// fsState reports whether the filesystem holding dir is mounted read-only, and whether
// it has no block left that this process may use. Unknown (statfs failed) is neither.
func fsState(dir string) (readOnly, full bool) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return false, false
	}
	return st.Flags&stRdonly != 0, st.Bavail == 0
}

// freeBytes is the space left on the filesystem holding dir for this process; ok is
// false when statfs cannot tell.
func freeBytes(dir string) (free uint64, ok bool) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return 0, false
	}
	return st.Bavail * uint64(st.Bsize), true
}
