//go:build !linux

package store

// fsState is unknown here: Diagnose keeps SQLite's own word for the fault.
func fsState(string) (readOnly, full bool) { return false, false }

// freeBytes is unknown here.
func freeBytes(string) (uint64, bool) { return 0, false }
