package receiptspool

import (
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/payswitch/payswitch/internal/durable"
)

// A segment file is a sequence of records, each a little-endian uint32 length of its
// payload, a little-endian uint32 CRC-32C of the payload, and the payload: the link,
// the message ID and the status, each a uvarint length and its bytes. A record is
// appended whole by one write, but a crash can leave the last one torn: reading stops
// at the first record that is short or fails its check, which was never acknowledged
// (a Put returns only once its record's fdatasync did).

// segmentExt names the segment files: <16-digit sequence number>.log.
const segmentExt = ".log"

// maxPayload bounds a record's payload: three clipped fields and their lengths.
const maxPayload = 3 * (binary.MaxVarintLen16 + 255)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// segment is one file of the journal.
type segment struct {
	seq     uint64
	path    string
	f       *os.File // open while it may take appends; nil for one recovered or closed
	size    int64
	created time.Time
	// broken: its last write failed, so it may end in a torn record and takes no more.
	broken bool
	// unapplied counts the receipts appended to it and not yet applied; guarded by
	// Spool.mu.
	unapplied int
}

// createSegment creates segment seq in dir, its name durable in the folder.
func createSegment(dir string, seq uint64) (*segment, error) {
	path := filepath.Join(dir, fmt.Sprintf("%016d%s", seq, segmentExt))
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("receipt spool: %w", err)
	}
	if err := durable.SyncDir(dir); err != nil {
		f.Close()
		os.Remove(path)
		return nil, fmt.Errorf("receipt spool: %w", err)
	}
	return &segment{seq: seq, path: path, f: f, created: time.Now()}, nil
}

// write appends buf, whole records, in one write.
func (g *segment) write(buf []byte) error {
	if g.f == nil {
		return errors.New("receipt spool: segment closed for appends")
	}
	n, err := g.f.Write(buf)
	g.size += int64(n)
	return err
}

// closeFile closes g for appends.
func (g *segment) closeFile() error {
	if g.f == nil {
		return nil
	}
	err := g.f.Close()
	g.f = nil
	return err
}

// remove closes and deletes g's file.
func (g *segment) remove() error {
	return errors.Join(g.closeFile(), os.Remove(g.path))
}

// appendRecord appends r's record to buf: the payload goes in place, after room for its
// length and check, which are filled in once it is there.
func appendRecord(buf []byte, r Receipt) []byte {
	head := len(buf)
	buf = append(buf, make([]byte, 8)...)
	for _, field := range []string{r.Link, r.MessageID, r.Status} {
		buf = binary.AppendUvarint(buf, uint64(len(field)))
		buf = append(buf, field...)
	}
	p := buf[head+8:]
	binary.LittleEndian.PutUint32(buf[head:], uint32(len(p)))
	binary.LittleEndian.PutUint32(buf[head+4:], crc32.Checksum(p, castagnoli))
	return buf
}

// readRecords decodes data's records up to the first that is torn or damaged.
func readRecords(data []byte) []Receipt {
	var out []Receipt
	for len(data) >= 8 {
		n := binary.LittleEndian.Uint32(data)
		sum := binary.LittleEndian.Uint32(data[4:])
		if n > maxPayload || int(n) > len(data)-8 {
			break
		}
		p := data[8 : 8+n]
		if crc32.Checksum(p, castagnoli) != sum {
			break
		}
		r, ok := decodePayload(p)
		if !ok {
			break
		}
		out = append(out, r)
		data = data[8+n:]
	}
	return out
}

// decodePayload reads a record's three fields.
func decodePayload(p []byte) (Receipt, bool) {
	var fields [3]string
	for i := range fields {
		n, k := binary.Uvarint(p)
		if k <= 0 || n > uint64(len(p)-k) {
			return Receipt{}, false
		}
		fields[i] = string(p[k : k+int(n)])
		p = p[k+int(n):]
	}
	return Receipt{Link: fields[0], MessageID: fields[1], Status: fields[2]}, len(p) == 0
}

// recover queues the receipts of the segments a previous process left, oldest first,
// deletes those that hold none, and returns the sequence number for the next segment.
func (s *Spool) recover() (uint64, error) {
	names, err := filepath.Glob(filepath.Join(s.cfg.Dir, "*"+segmentExt))
	if err != nil {
		return 0, fmt.Errorf("receipt spool: %w", err)
	}
	type found struct {
		seq  uint64
		path string
	}
	var files []found
	for _, path := range names {
		seq, err := strconv.ParseUint(strings.TrimSuffix(filepath.Base(path), segmentExt), 10, 64)
		if err != nil {
			continue // not a segment of ours
		}
		files = append(files, found{seq, path})
	}
	slices.SortFunc(files, func(a, b found) int { return cmp.Compare(a.seq, b.seq) })
	next := uint64(1)
	for _, f := range files {
		next = max(next, f.seq+1)
		data, err := os.ReadFile(f.path)
		if err != nil {
			return 0, fmt.Errorf("receipt spool: %w", err)
		}
		recs := readRecords(data)
		if len(recs) == 0 {
			if err := os.Remove(f.path); err != nil {
				return 0, fmt.Errorf("receipt spool: %w", err)
			}
			continue
		}
		seg := &segment{seq: f.seq, path: f.path, unapplied: len(recs)}
		s.segments = append(s.segments, seg)
		for _, r := range recs {
			s.queue = append(s.queue, entry{seg: seg, r: r})
		}
	}
	s.depth.Store(int64(len(s.queue)))
	return next, nil
}

// closeFiles closes every segment's file (Open failing after recover).
func (s *Spool) closeFiles() {
	for _, seg := range s.segments {
		seg.closeFile()
	}
}
