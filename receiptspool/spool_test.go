package receiptspool

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// recorder is an Apply that records what it applied, failing while fail says so.
type recorder struct {
	mu      sync.Mutex
	got     []Receipt
	fail    func(Receipt) bool
	applied chan struct{}
}

func newRecorder() *recorder { return &recorder{applied: make(chan struct{}, 1<<16)} }

func (r *recorder) apply(_ context.Context, rc Receipt) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.fail != nil && r.fail(rc) {
		return errors.New("main database unavailable")
	}
	r.got = append(r.got, rc)
	r.applied <- struct{}{}
	return nil
}

func (r *recorder) wait(t *testing.T, n int) {
	t.Helper()
	for i := 0; i < n; i++ {
		select {
		case <-r.applied:
		case <-time.After(10 * time.Second):
			t.Fatalf("%d receipts applied, want %d", i, n)
		}
	}
}

func (r *recorder) ids() map[string]int {
	r.mu.Lock()
	defer r.mu.Unlock()
	m := map[string]int{}
	for _, rc := range r.got {
		m[rc.MessageID]++
	}
	return m
}

// eventually waits for cond, which another goroutine makes true, for up to 10 s.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("still waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

func open(t *testing.T, dir string, cfg Config) *Spool {
	t.Helper()
	cfg.Dir = dir
	s, err := Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// run starts s.Run with apply and returns what stops it and waits for its end.
func run(s *Spool, apply Apply) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	ended := make(chan struct{})
	go func() { s.Run(ctx, Appliers{Receipt: apply}); close(ended) }()
	return func() { cancel(); <-ended }
}

func segmentFiles(t *testing.T, dir string) []string {
	t.Helper()
	names, err := filepath.Glob(filepath.Join(dir, "*"+segmentExt))
	if err != nil {
		t.Fatal(err)
	}
	return names
}

func receipt(id string) Receipt { return Receipt{Link: "smsc-a", MessageID: id, Status: "DELIVRD"} }

// A receipt put while nothing applies survives the process, is applied by the next
// one's Run, and then leaves no file behind.
func TestSpooledReceiptOutlivesTheProcess(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "receipts")
	s := open(t, dir, Config{})
	for i := range 3 {
		if err := s.Put(context.Background(), receipt(fmt.Sprint("m", i))); err != nil {
			t.Fatal(err)
		}
	}
	if s.Depth() != 3 {
		t.Fatalf("depth %d, want 3", s.Depth())
	}
	if err := s.Close(); err != nil { // a process that ended before applying them
		t.Fatal(err)
	}

	s = open(t, dir, Config{})
	if s.Depth() != 3 {
		t.Fatalf("depth after reopening %d, want 3", s.Depth())
	}
	rec := newRecorder()
	stop := run(s, rec.apply)
	rec.wait(t, 3)
	eventually(t, "depth 0", func() bool { return s.Depth() == 0 })
	stop()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	got := rec.ids()
	if len(got) != 3 || got["m0"] != 1 || got["m1"] != 1 || got["m2"] != 1 {
		t.Fatalf("applied %v, want m0, m1 and m2 once each", got)
	}
	rec.mu.Lock()
	if rec.got[0] != receipt("m0") {
		t.Errorf("first applied %+v, want the oldest, m0", rec.got[0])
	}
	rec.mu.Unlock()
	if files := segmentFiles(t, dir); len(files) != 0 {
		t.Fatalf("files left once everything was applied: %v", files)
	}
	s = open(t, dir, Config{})
	defer s.Close()
	if s.Depth() != 0 {
		t.Fatalf("depth %d after a clean stop, want 0", s.Depth())
	}
}

// Receipts put from many goroutines while Run runs are applied once each, across
// segments, and each segment's file goes once all of its receipts are applied.
func TestConcurrentPutsAppliedOnceEach(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "receipts")
	s := open(t, dir, Config{Workers: 8, SegmentBytes: 512})
	rec := newRecorder()
	stop := run(s, rec.apply)
	const n = 400
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range n / 8 {
				if err := s.Put(context.Background(), receipt(fmt.Sprintf("m%d-%d", g, i))); err != nil {
					t.Error(err)
				}
			}
		}()
	}
	wg.Wait()
	rec.wait(t, n)
	eventually(t, "depth 0", func() bool { return s.Depth() == 0 })
	stop()
	got := rec.ids()
	if len(got) != n {
		t.Fatalf("%d distinct receipts applied, want %d", len(got), n)
	}
	for id, k := range got {
		if k != 1 {
			t.Fatalf("%s applied %d times", id, k)
		}
	}
	if applied, _, _ := s.Counts(); applied != n {
		t.Fatalf("applied count %d, want %d", applied, n)
	}
	if files := segmentFiles(t, dir); len(files) != 1 { // the one taking appends
		t.Fatalf("%d segment files once all applied, want 1: %v", len(files), files)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if files := segmentFiles(t, dir); len(files) != 0 {
		t.Fatalf("files left after Close: %v", files)
	}
}

// A receipt whose Apply fails stays spooled and is tried again until it succeeds; one
// still failing when Run stops is there for the next process.
func TestFailedApplyIsRetriedAndKept(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "receipts")
	s := open(t, dir, Config{RetryAfter: time.Millisecond})
	rec := newRecorder()
	var mu sync.Mutex
	failures := 3
	rec.fail = func(rc Receipt) bool {
		mu.Lock()
		defer mu.Unlock()
		if rc.MessageID == "forever" {
			return true
		}
		if failures > 0 {
			failures--
			return true
		}
		return false
	}
	stop := run(s, rec.apply)
	if err := s.Put(context.Background(), receipt("flaky")); err != nil {
		t.Fatal(err)
	}
	if err := s.Put(context.Background(), receipt("forever")); err != nil {
		t.Fatal(err)
	}
	rec.wait(t, 1)
	eventually(t, "four retries", func() bool { // three for flaky, at least one for forever
		_, retried, _ := s.Counts()
		return retried >= 4
	})
	stop()
	if got := rec.ids(); len(got) != 1 || got["flaky"] != 1 {
		t.Fatalf("applied %v, want flaky once", got)
	}
	if s.Depth() != 1 {
		t.Fatalf("depth %d, want forever still spooled", s.Depth())
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s = open(t, dir, Config{})
	defer s.Close()
	rec2 := newRecorder()
	stop = run(s, rec2.apply)
	rec2.wait(t, 1)
	defer stop()
	// The segment holding forever is applied whole again: flaky with it, at least once.
	rec2.wait(t, 1)
	if got := rec2.ids(); len(got) != 2 || got["forever"] != 1 || got["flaky"] != 1 {
		t.Fatalf("next process applied %v, want forever and, again, flaky", got)
	}
}

// A spool holding Max receipts refuses the next with ErrFull, writing nothing, and
// takes receipts again once some are applied.
func TestFullSpoolRefuses(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "receipts")
	s := open(t, dir, Config{Max: 2})
	defer s.Close()
	ctx := context.Background()
	for i := range 2 {
		if err := s.Put(ctx, receipt(fmt.Sprint(i))); err != nil {
			t.Fatal(err)
		}
	}
	size := func() int64 {
		fi, err := os.Stat(segmentFiles(t, dir)[0])
		if err != nil {
			t.Fatal(err)
		}
		return fi.Size()
	}
	before := size()
	if err := s.Put(ctx, receipt("x")); !errors.Is(err, ErrFull) {
		t.Fatalf("third Put: %v, want ErrFull", err)
	}
	if size() != before || s.Depth() != 2 {
		t.Fatalf("a refused receipt was written (size %d → %d) or counted (depth %d)", before, size(), s.Depth())
	}
	if _, _, refused := s.Counts(); refused != 1 {
		t.Fatalf("refused %d, want 1", refused)
	}
	rec := newRecorder()
	stop := run(s, rec.apply)
	defer stop()
	rec.wait(t, 2)
	eventually(t, "depth 0", func() bool { return s.Depth() == 0 })
	if err := s.Put(ctx, receipt("x")); err != nil {
		t.Fatalf("Put once applied: %v", err)
	}
	rec.wait(t, 1)
}

// Put after Close fails: the link then asks the SMSC to deliver the receipt again.
func TestPutAfterCloseFails(t *testing.T) {
	s := open(t, filepath.Join(t.TempDir(), "receipts"), Config{})
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Put(context.Background(), receipt("m")); !errors.Is(err, ErrClosed) {
		t.Fatalf("Put after Close: %v, want ErrClosed", err)
	}
	if s.Depth() != 0 {
		t.Fatalf("depth %d after a refused Put, want 0", s.Depth())
	}
}

// A torn last record (a crash in the middle of a write, never acknowledged) and
// anything after it are left out; a segment with no whole record is deleted.
func TestTornRecordsAreLeftOut(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "receipts")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	var good []byte
	good = appendEntry(good, entry{r: receipt("a")})
	good = appendEntry(good, entry{r: receipt("b")})
	torn := appendEntry(nil, entry{r: receipt("c")})
	corrupt := appendEntry(nil, entry{r: receipt("d")})
	corrupt[len(corrupt)-1] ^= 0xff
	files := map[string][]byte{
		"0000000000000001.log": append(append([]byte{}, good...), torn[:len(torn)-3]...),
		"0000000000000002.log": append(append([]byte{}, corrupt...), appendEntry(nil, entry{r: receipt("e")})...),
		"0000000000000003.log": {1, 2, 3},
		"notes.txt":            []byte("not ours"),
	}
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	s := open(t, dir, Config{})
	defer s.Close()
	if s.Depth() != 2 {
		t.Fatalf("depth %d, want 2 (a and b)", s.Depth())
	}
	for _, want := range []string{"a", "b"} {
		e, ok := s.take()
		if !ok || e.r != receipt(want) {
			t.Fatalf("queued %+v (%v), want %s", e.r, ok, want)
		}
	}
	for _, gone := range []string{"0000000000000002.log", "0000000000000003.log"} {
		if _, err := os.Stat(filepath.Join(dir, gone)); !os.IsNotExist(err) {
			t.Errorf("%s, which holds no whole record, is still there (%v)", gone, err)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "notes.txt")); err != nil {
		t.Errorf("a file that is not a segment was touched: %v", err)
	}
	if err := s.Put(context.Background(), receipt("f")); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "0000000000000004.log")); err != nil {
		t.Fatalf("new appends are not in a segment after the old ones: %v", err)
	}
}

// Fields longer than SMPP allows are clipped, so that a record stays small and reads
// back.
func TestLongFieldsAreClipped(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "receipts")
	s := open(t, dir, Config{})
	long := string(make([]byte, 10_000))
	if err := s.Put(context.Background(), Receipt{Link: long, MessageID: long, Status: long}); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = open(t, dir, Config{})
	defer s.Close()
	e, ok := s.take()
	if !ok || len(e.r.Link) != 255 || len(e.r.MessageID) != 255 || len(e.r.Status) != 255 {
		t.Fatalf("read back %v with field lengths %d, %d, %d; want 255 each", ok, len(e.r.Link), len(e.r.MessageID), len(e.r.Status))
	}
}

// A write of the journal that fails (a full disk) fails the Puts of its batch, which
// the SMSC sends again, and ends its segment; the next receipts go to a new one, and a
// restart finds every receipt that was acknowledged, in order.
func TestFailedWriteStartsANewSegment(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "receipts")
	s := open(t, dir, Config{})
	ctx := context.Background()
	if err := s.Put(ctx, receipt("before")); err != nil {
		t.Fatal(err)
	}
	s.mu.Lock()
	s.active.f.Close() // the next write fails, as on a full disk
	s.mu.Unlock()
	if err := s.Put(ctx, receipt("lost")); err == nil {
		t.Fatal("a Put whose write failed succeeded")
	}
	if s.Depth() != 1 {
		t.Fatalf("depth %d after a failed Put, want 1", s.Depth())
	}
	if err := s.Put(ctx, receipt("after")); err != nil {
		t.Fatalf("Put after a failed write: %v", err)
	}
	if files := segmentFiles(t, dir); len(files) != 2 {
		t.Fatalf("segment files %v, want the broken one and a new one", files)
	}
	s.Close()

	s = open(t, dir, Config{})
	defer s.Close()
	for _, want := range []string{"before", "after"} {
		if e, ok := s.take(); !ok || e.r.MessageID != want {
			t.Fatalf("queued %+v (%v), want %s", e.r, ok, want)
		}
	}
	if e, ok := s.take(); ok {
		t.Fatalf("queued %+v, which was refused", e.r)
	}
}
