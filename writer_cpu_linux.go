package main

import (
	"errors"
	"fmt"
	"os"
	"strconv"

	"golang.org/x/sys/unix"
)

// giveWriterACPU, called on the store writer's own OS thread, keeps that thread on the
// last CPU this process may use and moves every other thread of the process to the
// others; threads started later inherit the CPUs of the thread that starts them, and Go
// starts none from a locked thread such as the writer's. It returns the writer's CPU
// and the others', or -1 when the process may use only one CPU (nothing changes then).
func giveWriterACPU() (cpu int, rest []int, err error) {
	var allowed unix.CPUSet
	if err := unix.SchedGetaffinity(0, &allowed); err != nil {
		return -1, nil, fmt.Errorf("the CPUs this process may use: %w", err)
	}
	var cpus []int
	for i := range cpuSetSize {
		if allowed.IsSet(i) {
			cpus = append(cpus, i)
		}
	}
	if len(cpus) < 2 {
		return -1, nil, nil
	}
	cpu, rest = cpus[len(cpus)-1], cpus[:len(cpus)-1]
	others := allowed
	others.Clear(cpu)
	self := unix.Gettid()
	// A thread that another thread starts while the first pass runs may still have the
	// writer's CPU: a second pass catches it. A failed pass gives every thread back all
	// the CPUs: the rest of serve must not lose one that the writer does not get.
	for range 2 {
		if err := moveThreads(self, &others); err != nil {
			_ = moveThreads(self, &allowed)
			return -1, nil, err
		}
	}
	var own unix.CPUSet
	own.Set(cpu)
	if err := unix.SchedSetaffinity(0, &own); err != nil {
		_ = moveThreads(self, &allowed)
		return -1, nil, fmt.Errorf("keep the writer's thread on CPU %d: %w", cpu, err)
	}
	return cpu, rest, nil
}

// cpuSetSize is how many CPUs a unix.CPUSet holds.
const cpuSetSize = len(unix.CPUSet{}) * 64

// moveThreads sets the CPUs of every thread of the process but except to set.
func moveThreads(except int, set *unix.CPUSet) error {
	tasks, err := os.ReadDir("/proc/self/task")
	if err != nil {
		return fmt.Errorf("the process's threads: %w", err)
	}
	for _, t := range tasks {
		tid, err := strconv.Atoi(t.Name())
		if err != nil || tid == except {
			continue
		}
		if err := unix.SchedSetaffinity(tid, set); err != nil && !errors.Is(err, unix.ESRCH) { // ESRCH: it has ended
			return fmt.Errorf("move thread %d off the writer's CPU: %w", tid, err)
		}
	}
	return nil
}
