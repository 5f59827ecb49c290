package sessiondb

import (
	"encoding/binary"
	"errors"
)

// ErrCorrupt is a state that does not decode: written by another release, or damaged.
var ErrCorrupt = errors.New("sessiondb: session state does not decode")

// Writer appends the fields of a session's state, compactly: integers as varints,
// strings with their length first. A Reader reads them back in the same order.
type Writer struct{ b []byte }

func (w *Writer) Byte(v byte)     { w.b = append(w.b, v) }
func (w *Writer) Uint(v uint64)   { w.b = binary.AppendUvarint(w.b, v) }
func (w *Writer) Int(v int64)     { w.b = binary.AppendVarint(w.b, v) }
func (w *Writer) String(s string) { w.Uint(uint64(len(s))); w.b = append(w.b, s...) }

// Bool writes v as one byte.
func (w *Writer) Bool(v bool) {
	if v {
		w.Byte(1)
	} else {
		w.Byte(0)
	}
}

// Bytes is what was written.
func (w *Writer) Bytes() []byte { return w.b }

// Reader reads what a Writer wrote. After the first field that does not decode, every
// read returns a zero value and Err is ErrCorrupt.
type Reader struct {
	b   []byte
	err error
}

// NewReader reads b.
func NewReader(b []byte) *Reader { return &Reader{b: b} }

func (r *Reader) fail() { r.err, r.b = ErrCorrupt, nil }

func (r *Reader) Byte() byte {
	if len(r.b) < 1 {
		r.fail()
		return 0
	}
	v := r.b[0]
	r.b = r.b[1:]
	return v
}

func (r *Reader) Bool() bool { return r.Byte() != 0 }

func (r *Reader) Uint() uint64 {
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.fail()
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *Reader) Int() int64 {
	v, n := binary.Varint(r.b)
	if n <= 0 {
		r.fail()
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *Reader) String() string {
	n := r.Uint()
	if n > uint64(len(r.b)) {
		r.fail()
		return ""
	}
	s := string(r.b[:n])
	r.b = r.b[n:]
	return s
}

// Err is ErrCorrupt when a field did not decode or bytes are left over.
func (r *Reader) Err() error {
	if r.err == nil && len(r.b) > 0 {
		return ErrCorrupt
	}
	return r.err
}
