package receiptspool

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
)

// childDirEnv makes the test binary the child of TestAcknowledgedReceiptsSurviveKill.
const childDirEnv = "RECEIPTSPOOL_CHILD_DIR"

// Every receipt and MO whose Put returned survives a kill -9 of the process in the middle of
// its appends, and the next Open queues it; nothing it holds was never put.
func TestAcknowledgedReceiptsSurviveKill(t *testing.T) {
	if dir := os.Getenv(childDirEnv); dir != "" {
		putForever(dir)
		return
	}
	dir := filepath.Join(t.TempDir(), "receipts")
	cmd := exec.Command(os.Args[0], "-test.run=^TestAcknowledgedReceiptsSurviveKill$")
	cmd.Env = append(os.Environ(), childDirEnv+"="+dir)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	acked := map[string]bool{}
	lines := bufio.NewScanner(out)
	for len(acked) < 300 && lines.Scan() {
		if _, err := strconv.Atoi(lines.Text()); err == nil {
			acked["m"+lines.Text()] = true
		}
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	if len(acked) < 300 {
		t.Fatalf("the child acknowledged %d receipts before it ended, want 300", len(acked))
	}

	s := open(t, dir, Config{})
	defer s.Close()
	queued := map[string]bool{}
	for {
		e, ok := s.take()
		if !ok {
			break
		}
		if m := e.mo; m != nil {
			if m.Link != "smsc-a" || m.From != "254700000001" || m.To != "55500" {
				t.Fatalf("read back %+v, which was never put", *m)
			}
			queued[m.Text] = true
			continue
		}
		if e.r.Link != "smsc-a" || e.r.Status != "DELIVRD" {
			t.Fatalf("read back %+v, which was never put", e.r)
		}
		queued[e.r.MessageID] = true
	}
	for id := range acked {
		if !queued[id] {
			t.Fatalf("record %s was acknowledged but is not in the spool after the kill (%d of %d there)", id, len(queued), len(acked))
		}
	}
}

// putForever puts receipts m0, m2, ... and MOs m1, m3, ... in dir one after another,
// writing each number to stdout once its Put returned, until the process is killed.
func putForever(dir string) {
	s, err := Open(Config{Dir: dir, SegmentBytes: 4 << 10, MaxMOsPerLink: 1 << 20})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	w := bufio.NewWriter(os.Stdout)
	for i := 0; ; i++ {
		var err error
		if i%2 == 1 { // every other one an MO, its text the number
			err = s.PutMO(context.Background(), MO{Link: "smsc-a", From: "254700000001", To: "55500", Text: fmt.Sprint("m", i)})
		} else {
			err = s.Put(context.Background(), receipt(fmt.Sprint("m", i)))
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		fmt.Fprintln(w, i)
		w.Flush()
	}
}
