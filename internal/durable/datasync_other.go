//go:build !linux

package durable

import "os"

// Datasync flushes f to the disk.
func Datasync(f *os.File) error { return f.Sync() }
