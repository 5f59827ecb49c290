package receiptspool

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// moRecorder applies MOs and receipts, recording each kind.
type moRecorder struct {
	mu       sync.Mutex
	mos      []MO
	receipts []Receipt
	fail     func(MO) bool
	applied  chan struct{}
}

func newMORecorder() *moRecorder { return &moRecorder{applied: make(chan struct{}, 1<<16)} }

func (r *moRecorder) appliers() Appliers {
	return Appliers{
		Receipt: func(_ context.Context, rc Receipt) error {
			r.mu.Lock()
			defer r.mu.Unlock()
			r.receipts = append(r.receipts, rc)
			r.applied <- struct{}{}
			return nil
		},
		MO: func(_ context.Context, m MO) error {
			r.mu.Lock()
			defer r.mu.Unlock()
			if r.fail != nil && r.fail(m) {
				return errors.New("main database unavailable")
			}
			r.mos = append(r.mos, m)
			r.applied <- struct{}{}
			return nil
		},
	}
}

func (r *moRecorder) wait(t *testing.T, n int) {
	t.Helper()
	rec := &recorder{applied: r.applied}
	rec.wait(t, n)
}

func runAll(s *Spool, a Appliers) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	ended := make(chan struct{})
	go func() { s.Run(ctx, a); close(ended) }()
	return func() { cancel(); <-ended }
}

func mo(link, from, text string) MO { return MO{Link: link, From: from, To: "55500", Text: text} }

// MOs spooled beside receipts outlive the process whole (any bytes in the text, up to
// MaxMOText), and the next process applies each kind with its own function, once.
func TestSpooledMOsOutliveTheProcess(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "receipts")
	s := open(t, dir, Config{})
	ctx := context.Background()
	binary := string([]byte{0, 1, 0xff, '\n', 0x80})
	long := strings.Repeat("x", MaxMOText)
	want := []MO{mo("smsc-a", "254700000001", "PAY 55501 150"), mo("smsc-b", "254700000002", binary),
		mo("smsc-a", "254700000003", long), mo("smsc-a", "254700000004", "")}
	for i, m := range want {
		if err := s.PutMO(ctx, m); err != nil {
			t.Fatal(err)
		}
		if err := s.Put(ctx, receipt(fmt.Sprint("r", i))); err != nil {
			t.Fatal(err)
		}
	}
	if s.Depth() != 8 || s.MODepth() != 4 {
		t.Fatalf("depth %d, MOs %d; want 8 and 4", s.Depth(), s.MODepth())
	}
	if err := s.Close(); err != nil { // a process that ended before applying them
		t.Fatal(err)
	}

	s = open(t, dir, Config{})
	defer s.Close()
	if s.Depth() != 8 || s.MODepth() != 4 {
		t.Fatalf("after reopening: depth %d, MOs %d; want 8 and 4", s.Depth(), s.MODepth())
	}
	rec := newMORecorder()
	stop := runAll(s, rec.appliers())
	rec.wait(t, 8)
	eventually(t, "depth 0", func() bool { return s.Depth() == 0 && s.MODepth() == 0 })
	stop()
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if len(rec.mos) != 4 || len(rec.receipts) != 4 {
		t.Fatalf("applied %d MOs and %d receipts, want 4 each", len(rec.mos), len(rec.receipts))
	}
	for _, w := range want {
		found := 0
		for _, g := range rec.mos {
			if g.Key == 0 {
				t.Errorf("MO from %s applied without its key", g.From)
			}
			if g.Key = 0; g == w {
				found++
			}
		}
		if found != 1 {
			t.Errorf("MO from %s (text of %d bytes) applied %d times, want once", w.From, len(w.Text), found)
		}
	}
	if applied, _, _ := s.Counts(); applied != 8 || s.AppliedMOs() != 4 {
		t.Fatalf("counted %d applied, %d MOs; want 8 and 4", applied, s.AppliedMOs())
	}
}

// A link may have at most MaxMOsPerLink MOs waiting: its next is refused with
// ErrLinkBusy (the SMSC delivers it again later) and not written, while other links'
// MOs and every receipt still go in; once applied, the link's MOs are taken again.
func TestMOsOfOneLinkAreCapped(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "receipts")
	s := open(t, dir, Config{MaxMOsPerLink: 2})
	defer s.Close()
	ctx := context.Background()
	for i := range 2 {
		if err := s.PutMO(ctx, mo("flood", fmt.Sprint("25470000000", i), "PAY 1 1")); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.PutMO(ctx, mo("flood", "254700000009", "PAY 1 1")); !errors.Is(err, ErrLinkBusy) {
		t.Fatalf("third MO of the link: %v, want ErrLinkBusy", err)
	}
	if err := s.PutMO(ctx, mo("other", "254700000010", "BAL")); err != nil {
		t.Fatalf("an MO of another link: %v", err)
	}
	if err := s.Put(ctx, receipt("r")); err != nil {
		t.Fatalf("a receipt: %v", err)
	}
	if s.Depth() != 4 || s.MODepth() != 3 {
		t.Fatalf("depth %d, MOs %d; want 4 and 3 (the refused one not counted)", s.Depth(), s.MODepth())
	}
	if _, _, refused := s.Counts(); refused != 1 {
		t.Fatalf("refused %d, want 1", refused)
	}
	rec := newMORecorder()
	stop := runAll(s, rec.appliers())
	defer stop()
	rec.wait(t, 4)
	eventually(t, "depth 0", func() bool { return s.Depth() == 0 })
	if err := s.PutMO(ctx, mo("flood", "254700000009", "PAY 1 1")); err != nil {
		t.Fatalf("the link's MO once the others were applied: %v", err)
	}
	rec.wait(t, 1)
}

// A text over MaxMOText is refused before anything is written or counted.
func TestTooLongMOIsRefused(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "receipts")
	s := open(t, dir, Config{})
	defer s.Close()
	err := s.PutMO(context.Background(), mo("smsc-a", "254700000001", strings.Repeat("x", MaxMOText+1)))
	if !errors.Is(err, ErrTooLong) {
		t.Fatalf("PutMO of %d bytes: %v, want ErrTooLong", MaxMOText+1, err)
	}
	if s.Depth() != 0 || s.MODepth() != 0 {
		t.Fatalf("depth %d, MOs %d after a refused MO", s.Depth(), s.MODepth())
	}
}

// An MO whose application fails stays spooled and is tried again until it succeeds; a
// failed write of its batch leaves it uncounted, so its link is not held busy by it.
func TestFailingMOIsRetriedAndAFailedWriteUncountsIt(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "receipts")
	s := open(t, dir, Config{RetryAfter: 1, MaxMOsPerLink: 1})
	defer s.Close()
	ctx := context.Background()
	s.mu.Lock()
	s.active.f.Close() // the next write fails, as on a full disk
	s.mu.Unlock()
	if err := s.PutMO(ctx, mo("smsc-a", "254700000001", "lost")); err == nil {
		t.Fatal("a PutMO whose write failed succeeded")
	}
	if s.MODepth() != 0 || s.Depth() != 0 {
		t.Fatalf("after a failed write: depth %d, MOs %d; want 0", s.Depth(), s.MODepth())
	}
	if err := s.PutMO(ctx, mo("smsc-a", "254700000001", "PAY 55501 150")); err != nil {
		t.Fatalf("the link's next MO: %v", err)
	}
	rec := newMORecorder()
	tries := 0
	rec.fail = func(MO) bool { tries++; return tries < 3 }
	stop := runAll(s, rec.appliers())
	defer stop()
	rec.wait(t, 1)
	if _, retried, _ := s.Counts(); retried != 2 {
		t.Fatalf("retried %d, want 2", retried)
	}
	eventually(t, "depth 0", func() bool { return s.Depth() == 0 && s.MODepth() == 0 })
}

// Every record gets a key of its own, increasing in the order of writing, and an MO
// read back after a restart has the key it had: a key never names two MOs, even once
// the segments holding the first are gone, when the next Open starts above it
// (FirstSegment). OldestKey stays below every record still spooled.
func TestMOKeysAreUniqueAndStable(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "receipts")
	s := open(t, dir, Config{SegmentBytes: 200})
	ctx := context.Background()
	for i := range 20 {
		if err := s.PutMO(ctx, mo("smsc-a", "254700000001", fmt.Sprint("m", i))); err != nil {
			t.Fatal(err)
		}
	}
	first := map[string]int64{}
	var last int64 = -1
	for {
		e, ok := s.take()
		if !ok {
			break
		}
		if e.key <= last || e.key < s.OldestKey() {
			t.Fatalf("key %d of %s after %d (oldest %d): want increasing, above the oldest", e.key, e.mo.Text, last, s.OldestKey())
		}
		last, first[e.mo.Text] = e.key, e.key
		s.done(e)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if len(segmentFiles(t, dir)) != 0 {
		t.Fatal("segments left once everything was applied")
	}
	// A process that applied none of them: the same keys again.
	dir2 := filepath.Join(t.TempDir(), "receipts")
	s = open(t, dir2, Config{SegmentBytes: 200})
	for i := range 20 {
		if err := s.PutMO(ctx, mo("smsc-a", "254700000001", fmt.Sprint("m", i))); err != nil {
			t.Fatal(err)
		}
	}
	s.Close()
	s = open(t, dir2, Config{})
	for {
		e, ok := s.take()
		if !ok {
			break
		}
		if e.key != first[e.mo.Text] {
			t.Fatalf("%s read back with key %d, written with %d", e.mo.Text, e.key, first[e.mo.Text])
		}
	}
	s.Close()
	// The first folder is empty: without FirstSegment its keys would start over.
	s = open(t, dir, Config{FirstSegment: KeySegment(last) + 1})
	defer s.Close()
	if err := s.PutMO(ctx, mo("smsc-a", "254700000001", "next")); err != nil {
		t.Fatal(err)
	}
	if e, ok := s.take(); !ok || e.key <= last {
		t.Fatalf("the next process's first key %d, want above %d", e.key, last)
	}
}

// A link that stops while its MO is being put does not make it answer an error for an
// MO that is written: the SMSC would deliver it again, a second MO to decide. PutMO
// waits for the flush whatever its context says.
func TestPutMOOutlastsItsContext(t *testing.T) {
	s := open(t, filepath.Join(t.TempDir(), "receipts"), Config{})
	defer s.Close()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := s.PutMO(ctx, mo("smsc-a", "254700000001", "PAY 55501 150")); err != nil {
		t.Fatalf("PutMO with its context done: %v, want nil once written", err)
	}
	if e, ok := s.take(); !ok || e.mo == nil || e.mo.Text != "PAY 55501 150" {
		t.Fatalf("spooled %+v (%v), want the MO", e, ok)
	}
}
