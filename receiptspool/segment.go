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
// payload, a little-endian uint32 CRC-32C of the payload, and the payload: its fields,
// each a uvarint length and its bytes. A receipt has three (the link, the message ID
// and the status), an MO four (the link, from, to and the text), so that segments
// written before MOs were spooled read as they did. A record is appended whole by one
// write, but a crash can leave the last one torn: reading stops at the first record
// that is short or fails its check, which was never acknowledged (a Put returns only
// once its record's fdatasync did).

// segmentExt names the segment files: <16-digit sequence number>.log.
const segmentExt = ".log"

// maxPayload bounds a record's payload: an MO's three clipped fields and its text, and
// their lengths.
const maxPayload = 3*(binary.MaxVarintLen16+255) + binary.MaxVarintLen16 + MaxMOText

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
	// records counts the records written to it: the next one's place, for its key.
	records int
}

// keyBits is how many low bits of a record's key are its place in its segment: a
// segment closes at a few MiB, far fewer records than this.
const keyBits = 20

// keyOf is the key of the record at place i of segment seq: unique among every record
// the spool ever held, as long as segment numbers are never reused (Config.FirstSegment),
// and the same each time the record is read back.
func keyOf(seq uint64, i int) int64 { return int64(seq<<keyBits | uint64(i)) }

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
	if err != nil && n > 0 && g.f.Truncate(g.size) == nil {
		// Part of the batch reached the file (a full disk takes what fits): its whole
		// records would be read back at the next Open although their Puts failed, and
		// the SMSC sends each of those again, which for an MO is a second one to decide.
		n = 0
	}
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
	err := os.Remove(g.path)
	if errors.Is(err, os.ErrNotExist) { // removed by an earlier try
		err = nil
	}
	return errors.Join(g.closeFile(), err)
}

// appendEntry appends e's record to buf: the payload goes in place, after room for its
// length and check, which are filled in once it is there.
func appendEntry(buf []byte, e entry) []byte {
	head := len(buf)
	buf = append(buf, make([]byte, 8)...)
	fields := []string{e.r.Link, e.r.MessageID, e.r.Status}
	if m := e.mo; m != nil {
		fields = []string{m.Link, m.From, m.To, m.Text}
	}
	for _, field := range fields {
		buf = binary.AppendUvarint(buf, uint64(len(field)))
		buf = append(buf, field...)
	}
	p := buf[head+8:]
	binary.LittleEndian.PutUint32(buf[head:], uint32(len(p)))
	binary.LittleEndian.PutUint32(buf[head+4:], crc32.Checksum(p, castagnoli))
	return buf
}

// readRecords decodes data's records up to the first that is torn or damaged.
func readRecords(data []byte) []entry {
	var out []entry
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
		e, ok := decodePayload(p)
		if !ok {
			break
		}
		out = append(out, e)
		data = data[8+n:]
	}
	return out
}

// decodePayload reads a record's fields: three make a receipt, four an MO.
func decodePayload(p []byte) (entry, bool) {
	var fields [4]string
	n := 0
	for ; len(p) > 0; n++ {
		size, k := binary.Uvarint(p)
		if n == len(fields) || k <= 0 || size > uint64(len(p)-k) {
			return entry{}, false
		}
		fields[n] = string(p[k : k+int(size)])
		p = p[k+int(size):]
	}
	switch n {
	case 3:
		return entry{r: Receipt{Link: fields[0], MessageID: fields[1], Status: fields[2]}}, true
	case 4:
		return entry{mo: &MO{Link: fields[0], From: fields[1], To: fields[2], Text: fields[3]}}, true
	}
	return entry{}, false
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
	next := max(1, s.cfg.FirstSegment)
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
		seg := &segment{seq: f.seq, path: f.path, unapplied: len(recs), records: len(recs)}
		s.segments = append(s.segments, seg)
		for i, e := range recs {
			e.seg, e.key = seg, keyOf(seg.seq, i)
			s.queue = append(s.queue, e)
			if e.mo != nil {
				s.countMO(e.mo.Link, 1)
			}
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
