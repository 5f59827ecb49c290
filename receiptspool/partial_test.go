package receiptspool

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
)

// partialDirEnv makes the test binary the child of TestFailedPutsAreNotReadBack.
const partialDirEnv = "RECEIPTSPOOL_PARTIAL_DIR"

// A write of the journal that fails after part of its batch reached the file (a disk
// that fills up takes what fits) leaves none of that batch behind: every Put of it
// failed, the SMSC sends those again, and a record read back at the next Open would be
// an MO decided twice. The child puts MOs from many goroutines under a file size limit
// and says which Puts succeeded and which failed; the next Open holds exactly the first.
func TestFailedPutsAreNotReadBack(t *testing.T) {
	if dir := os.Getenv(partialDirEnv); dir != "" {
		putUnderSizeLimit(dir)
		return
	}
	dir := filepath.Join(t.TempDir(), "receipts")
	cmd := exec.Command(os.Args[0], "-test.run=^TestFailedPutsAreNotReadBack$")
	cmd.Env = append(os.Environ(), partialDirEnv+"="+dir)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("child: %v", err)
	}
	acked, failed := map[string]bool{}, 0
	lines := bufio.NewScanner(strings.NewReader(string(out)))
	for lines.Scan() {
		switch verdict, text, _ := strings.Cut(lines.Text(), " "); verdict {
		case "ok":
			acked[text] = true
		case "failed":
			failed++
		}
	}
	if len(acked) == 0 || failed == 0 {
		t.Fatalf("the child's Puts: %d succeeded, %d failed; want both", len(acked), failed)
	}
	s := open(t, dir, Config{})
	defer s.Close()
	queued := 0
	for {
		e, ok := s.take()
		if !ok {
			break
		}
		if e.mo == nil || !acked[e.mo.Text] {
			t.Fatalf("read back %+v, whose Put failed", e)
		}
		queued++
	}
	if queued != len(acked) {
		t.Fatalf("%d records read back, want the %d acknowledged", queued, len(acked))
	}
}

// putUnderSizeLimit limits the size of any file it writes to 4 KiB and puts 400 MOs
// from 40 goroutines, writing "ok <text>" or "failed <text>" for each.
func putUnderSizeLimit(dir string) {
	if err := syscall.Setrlimit(syscall.RLIMIT_FSIZE, &syscall.Rlimit{Cur: 4 << 10, Max: 4 << 10}); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	s, err := Open(Config{Dir: dir, MaxMOsPerLink: 1 << 20})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for g := range 40 {
		wg.Go(func() {
			for i := range 10 {
				text := fmt.Sprintf("m%d-%d", g, i)
				err := s.PutMO(context.Background(), MO{Link: "smsc-a", From: "254700000001", To: "55500", Text: text})
				mu.Lock()
				if err != nil {
					fmt.Println("failed", text)
				} else {
					fmt.Println("ok", text)
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	os.Exit(0)
}
