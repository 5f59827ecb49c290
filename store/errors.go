package store

import (
	"errors"
	"os"
	"path/filepath"
	"syscall"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// Fault is why the database cannot be written (or read) right now, in the one word that
// /healthz, the API's errors and the logs use for it. The zero Fault means the error is
// not the database's: a constraint, a caller's own error, or nil.
type Fault string

// The faults of the database, and what ends each.
const (
	// FaultBusy: another process holds SQLite's write lock longer than the busy
	// timeout (a stuck backup, a maintenance script). It passes when that process lets go.
	FaultBusy Fault = "busy"
	// FaultFull: the filesystem, or the user's quota, has no room for the write-ahead
	// log or the database to grow. It passes, without a restart, once space is freed.
	FaultFull Fault = "full"
	// FaultReadOnly: the file or its filesystem cannot be written: mounted read-only, or
	// remounted read-only by the kernel after a disk error. The operator repairs the
	// filesystem and restarts the switch; SQLite then recovers every durable commit.
	FaultReadOnly Fault = "read-only"
	// FaultIO: the disk reported an I/O error. As with FaultReadOnly, the operator
	// repairs and restarts.
	FaultIO Fault = "io-error"
	// FaultCorrupt: the file is not a database SQLite can use.
	FaultCorrupt Fault = "corrupt"
	// FaultUnreachable: PostgreSQL does not answer or dropped the connection (down,
	// restarting, failing over, or the network between). It passes when it answers again.
	FaultUnreachable Fault = "unreachable"
)

// FaultOf classifies err, as returned by Write, Ping or a read, by its SQLite result
// code or PostgreSQL SQLSTATE or, for what the store does to the files itself (the fsync
// of the WAL), by its errno. It is "" for an error that says nothing about the
// database's health.
func FaultOf(err error) Fault {
	if err == nil {
		return ""
	}
	if f, ok := pgFault(err); ok {
		return f
	}
	var se *sqlite.Error
	if errors.As(err, &se) {
		switch se.Code() & 0xff { // the primary code; modernc reports extended ones
		case sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED:
			return FaultBusy
		case sqlite3.SQLITE_FULL:
			return FaultFull
		case sqlite3.SQLITE_READONLY:
			return FaultReadOnly
		case sqlite3.SQLITE_IOERR, sqlite3.SQLITE_CANTOPEN:
			return FaultIO
		case sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB:
			return FaultCorrupt
		}
		return ""
	}
	var errno syscall.Errno
	if errors.As(err, &errno) {
		switch errno {
		case syscall.ENOSPC, syscall.EDQUOT:
			return FaultFull
		case syscall.EROFS:
			return FaultReadOnly
		case syscall.EIO:
			return FaultIO
		}
	}
	return ""
}

// Diagnose is FaultOf refined by a look at the filesystem that holds the database,
// because SQLite reports every failed write(2) other than ENOSPC as an I/O error: an I/O
// error on a filesystem that is now read-only is FaultReadOnly, and one on a filesystem
// with no free block is FaultFull.
// On PostgreSQL it is FaultOf: the files are the server's.
func (db *DB) Diagnose(err error) Fault {
	if db.pg != nil {
		return FaultOf(err)
	}
	return Diagnose(db.path, err)
}

// Diagnose is DB.Diagnose for the database at path, for when it could not be opened.
func Diagnose(path string, err error) Fault {
	f := FaultOf(err)
	if f != FaultIO {
		return f
	}
	dir := filepath.Dir(path)
	readOnly, full := fsState(dir)
	if !readOnly {
		// statfs does not tell every read-only filesystem: on recent kernels an ext4 that
		// aborted after an error refuses writes with EROFS yet stays "rw" to statfs
		// (/proc/mounts adds "emergency_ro"). Creating a file asks the filesystem itself.
		switch FaultOf(probeWrite(dir)) {
		case FaultReadOnly:
			readOnly = true
		case FaultFull:
			full = true
		}
	}
	switch {
	case readOnly:
		return FaultReadOnly
	case full:
		return FaultFull
	}
	return f
}

// probeWrite creates and removes an empty file in dir.
func probeWrite(dir string) error {
	f, err := os.CreateTemp(dir, ".payswitch-probe-")
	if err != nil {
		return err
	}
	f.Close()
	return os.Remove(f.Name())
}
