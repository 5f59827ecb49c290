package main

import (
	"bufio"
	"os"
	"strconv"
	"strings"
	"time"
)

// machineCPU is the whole machine's CPU time so far from /proc/stat, over all cores:
// busy (every state but idle, iowait and steal), steal (time a virtual machine's cores
// were runnable but the hypervisor ran something else: a noisy host) and total; all -1
// when it cannot be read (not Linux). Over the load, busy less serve's and loadgen's own
// is what the rest took: PostgreSQL's server on -db postgres, and whatever else runs here.
func machineCPU() (busy, steal, total time.Duration) {
	f, err := os.Open("/proc/stat")
	if err != nil {
		return -1, -1, -1
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	if !sc.Scan() {
		return -1, -1, -1
	}
	fields := strings.Fields(sc.Text())
	if len(fields) < 6 || fields[0] != "cpu" {
		return -1, -1, -1
	}
	var sum, idle, stolen int64
	// Past steal come guest and guest_nice, which user and nice count already.
	for i, s := range fields[1:min(len(fields), 9)] {
		v, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return -1, -1, -1
		}
		sum += v
		switch i {
		case 3, 4: // idle, iowait
			idle += v
		case 7:
			stolen += v
		}
	}
	return clockTicks(sum - idle - stolen), clockTicks(stolen), clockTicks(sum)
}
