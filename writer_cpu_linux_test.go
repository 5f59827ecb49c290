package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"golang.org/x/sys/unix"

	"github.com/payswitch/payswitch/config"
	"github.com/payswitch/payswitch/store"
)

// With database.writer_cpu on, the store's writer runs alone on the last CPU of the
// process, and every other thread, those started afterwards included, on the others. The
// check runs in a child process, since it moves the threads of the process it runs in.
func TestWriterThreadHasACPUOfItsOwn(t *testing.T) {
	var allowed unix.CPUSet
	if err := unix.SchedGetaffinity(0, &allowed); err != nil {
		t.Fatal(err)
	}
	if allowed.Count() < 2 {
		t.Skip("this process may use one CPU only: the writer shares it")
	}
	if os.Getenv("PAYSWITCH_WRITER_CPU_CHILD") != "" {
		writerCPUChild(t)
		return
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestWriterThreadHasACPUOfItsOwn$", "-test.v")
	cmd.Env = append(os.Environ(), "PAYSWITCH_WRITER_CPU_CHILD=1")
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "--- PASS") {
		t.Fatalf("child: %v\n%s", err, out)
	}
}

func writerCPUChild(t *testing.T) {
	type pinned struct {
		tid, cpu int
		rest     []int
		err      error
	}
	got := make(chan pinned, 1)
	hook := func() {
		cpu, rest, err := giveWriterACPU()
		got <- pinned{unix.Gettid(), cpu, rest, err}
	}
	db, lock, err := openDatabase(t.Context(), config.Database{Path: filepath.Join(t.TempDir(), "payswitch.db"),
		WriterCPU: config.WriterCPUOn}, store.Options{OnWriterThread: hook})
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Close()
	defer db.Close()
	w := <-got
	if w.err != nil || w.cpu < 0 {
		t.Fatalf("giveWriterACPU: cpu %d, %v", w.cpu, w.err)
	}
	var allowed unix.CPUSet
	if err := unix.SchedGetaffinity(0, &allowed); err != nil {
		t.Fatal(err)
	}
	if slices.Contains(w.rest, w.cpu) || len(w.rest) == 0 {
		t.Fatalf("writer on CPU %d, the rest on %v", w.cpu, w.rest)
	}

	// Threads Go starts from now on: goroutines blocked in a system call hand their P to
	// new threads.
	before := len(threadCPUs(t))
	var fds [2]int
	if err := unix.Pipe(fds[:]); err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fds[0])
	defer unix.Close(fds[1])
	const blocked = 4
	done := make(chan struct{})
	for range blocked {
		go func() {
			var b [1]byte
			unix.Read(fds[0], b[:])
			done <- struct{}{}
		}()
	}
	for deadline := time.Now().Add(10 * time.Second); len(threadCPUs(t)) < before+blocked; {
		if time.Now().After(deadline) {
			t.Fatalf("Go started no thread for %d blocked system calls (%d threads before)", blocked, before)
		}
		time.Sleep(time.Millisecond)
	}
	threads := threadCPUs(t)
	unix.Write(fds[1], make([]byte, blocked))
	for range blocked {
		<-done
	}

	want := fmt.Sprint(w.cpu)
	for tid, cpus := range threads {
		switch {
		case tid == w.tid && cpus != want:
			t.Errorf("the writer's thread %d may run on CPUs %s, want %s", tid, cpus, want)
		case tid != w.tid && slices.Contains(expandCPUList(t, cpus), w.cpu):
			t.Errorf("thread %d may run on CPUs %s, the writer's %d among them", tid, cpus, w.cpu)
		}
	}
	if _, ok := threads[w.tid]; !ok {
		t.Errorf("the writer's thread %d is gone", w.tid)
	}
	// A write still goes through the pinned writer.
	if err := db.Write(t.Context(), func(tx store.Tx) error {
		_, err := tx.ExecContext(t.Context(), `CREATE TABLE pinned (x INTEGER)`)
		return err
	}); err != nil {
		t.Fatal(err)
	}
}

// threadCPUs reads Cpus_allowed_list of every thread of the process, by thread ID.
func threadCPUs(t *testing.T) map[int]string {
	tasks, err := os.ReadDir("/proc/self/task")
	if err != nil {
		t.Fatal(err)
	}
	out := make(map[int]string, len(tasks))
	for _, task := range tasks {
		tid, err := strconv.Atoi(task.Name())
		if err != nil {
			continue
		}
		status, err := os.ReadFile(filepath.Join("/proc/self/task", task.Name(), "status"))
		if err != nil {
			continue // ended meanwhile
		}
		for line := range strings.SplitSeq(string(status), "\n") {
			if v, ok := strings.CutPrefix(line, "Cpus_allowed_list:"); ok {
				out[tid] = strings.TrimSpace(v)
			}
		}
	}
	return out
}

// expandCPUList reads a list such as "0-2,5" into its CPUs.
func expandCPUList(t *testing.T, list string) []int {
	var cpus []int
	for part := range strings.SplitSeq(list, ",") {
		lo, hi, isRange := strings.Cut(part, "-")
		a, err := strconv.Atoi(lo)
		if err != nil {
			t.Fatalf("CPU list %q: %v", list, err)
		}
		b := a
		if isRange {
			if b, err = strconv.Atoi(hi); err != nil {
				t.Fatalf("CPU list %q: %v", list, err)
			}
		}
		for c := a; c <= b; c++ {
			cpus = append(cpus, c)
		}
	}
	return cpus
}

// The hook exists only where it is asked for and there is one writer to pin.
func TestWriterThreadHookOnlyWhenOn(t *testing.T) {
	log := zerolog.Nop()
	for _, tc := range []struct {
		d    config.Database
		want bool
	}{
		{config.Database{Path: "x.db", WriterCPU: config.WriterCPUOff}, false},
		{config.Database{Path: "x.db", WriterCPU: config.WriterCPUOn}, true},
		{config.Database{URL: "postgres://h/db", WriterCPU: config.WriterCPUOn}, false},
	} {
		if got := writerThreadHook(tc.d, log) != nil; got != tc.want {
			t.Errorf("writerThreadHook(%+v) set: %v, want %v", tc.d, got, tc.want)
		}
	}
}
