//go:build !linux

package main

// yieldToServe does nothing here; see backup_linux.go.
func yieldToServe() {}
