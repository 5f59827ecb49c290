//go:build !linux

package main

// giveWriterACPU does nothing where a thread's CPUs are not set: the writer shares them.
func giveWriterACPU() (cpu int, rest []int, err error) { return -1, nil, nil }
