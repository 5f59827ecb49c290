package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Measurements of issue 21 (backups and replicas):
//
//   - -replica streams the switch's database to a file replica beside it
//     (database.replicas, sync_interval 1s), to compare payments/s, CPU and disk writes
//     with and without;
//   - -db FILE starts the switch on a copy of FILE (a large database), and -backup-loop
//     runs "payswitch backup" again and again while the load runs, so that the
//     latencies reported are those of payments taken during backups.

// replicaYAML is the database.replicas entry of -replica.
func replicaYAML(dir string) string {
	return fmt.Sprintf("  replicas:\n    - url: %s\n      sync_interval: 1s\n", strconv.Quote("file://"+filepath.Join(dir, "replica")))
}

// seedDatabase copies the database file src into dir as the switch's database.
func seedDatabase(src, dir string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(filepath.Join(dir, "payswitch.db"), os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// backupLoop runs "payswitch backup" one after the other until ctx ends, and returns a
// line describing them.
func backupLoop(ctx context.Context, bin, dir string, lg *logger) (stop func() string) {
	var (
		wg    sync.WaitGroup
		times []time.Duration
		size  int64
		fails int
		last  string
	)
	ctx, cancel := context.WithCancel(ctx)
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; ctx.Err() == nil; i++ {
			out := filepath.Join(dir, fmt.Sprintf("backup-%d.db", i))
			start := time.Now()
			b, err := exec.Command(bin, "backup", "-config", filepath.Join(dir, "config.yaml"), "-out", out).CombinedOutput()
			if err != nil {
				fails++
				last = strings.TrimSpace(string(b))
				lg.printf("backup %d failed: %v: %s", i, err, last)
				continue
			}
			times = append(times, time.Since(start))
			if fi, err := os.Stat(out); err == nil {
				size = fi.Size()
			}
			sc := bufio.NewScanner(strings.NewReader(string(b)))
			if sc.Scan() {
				last = sc.Text()
			}
			os.Remove(out)
		}
	}()
	return func() string {
		cancel()
		wg.Wait()
		return fmt.Sprintf("backups=%d failed=%d times=%v size_mb=%.1f last=%q", len(times), fails, times, float64(size)/1e6, last)
	}
}

// procWriteBytes is what the process pid caused to be written to storage so far
// (/proc/PID/io write_bytes), or -1.
func procWriteBytes(pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/io", pid))
	if err != nil {
		return -1
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "write_bytes: "); ok {
			n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
			if err == nil {
				return n
			}
		}
	}
	return -1
}

// dirBytes is the size of the files under dir.
func dirBytes(dir string) int64 {
	var n int64
	filepath.Walk(dir, func(_ string, fi os.FileInfo, err error) error {
		if err == nil && fi.Mode().IsRegular() {
			n += fi.Size()
		}
		return nil
	})
	return n
}
