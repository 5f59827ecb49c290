// Package timeid makes identifiers that sort by the time they were made: a prefix, the
// tick (time since an epoch, in ticks of a fixed length) and a sequence number within
// the tick, written in an alphabet whose byte order is its numeric order.
//
// Why: rows keyed or indexed by such ids are inserted at the end of their B-trees, on a
// few pages that stay in cache and are written once per commit, where random ids put
// every insert on another page (each then copied into the write-ahead log at commit and
// into the database at checkpoint).
//
// Within a generator an id is never repeated: the sequence counts up within a tick, and
// the tick never goes back, even if the clock does (a full tick borrows the next one).
// Each tick's sequence starts at a random point in its first quarter, so that another
// generator writing the same table at the same time (a tool, a process restarted
// within the tick) almost surely uses other numbers; when it did not, the caller's
// UNIQUE key refuses the duplicate, and after Reseed the sequence goes on from a random
// point in the third quarter.
package timeid

import (
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"sync"
	"time"
)

// Layout says how ids are written.
type Layout struct {
	Prefix      string
	Alphabet    string // its byte order is its numeric order, so ids sort as text
	Tick        time.Duration
	Epoch       time.Time
	TickSymbols int // ticks past Alphabet^TickSymbols wrap around
	SeqSymbols  int // ids per tick: Alphabet^SeqSymbols
}

// Generator makes ids of a Layout; it is safe for concurrent use.
type Generator struct {
	l            Layout
	seqs, ticks  int64
	mu           sync.Mutex
	started      bool
	tick, seqNum int64 // the tick and the last sequence number used in it
}

// New returns a generator of ids laid out as l.
func New(l Layout) *Generator {
	for i := 1; i < len(l.Alphabet); i++ {
		if l.Alphabet[i-1] >= l.Alphabet[i] {
			panic(fmt.Sprintf("timeid: alphabet %q is not in byte order", l.Alphabet))
		}
	}
	pow := func(n int) int64 {
		p := int64(1)
		for range n {
			p *= int64(len(l.Alphabet))
		}
		return p
	}
	return &Generator{l: l, seqs: pow(l.SeqSymbols), ticks: pow(l.TickSymbols)}
}

// Next returns a new id made at now.
func (g *Generator) Next(now time.Time) string {
	tick := max(int64(now.Sub(g.l.Epoch)/g.l.Tick), 0)
	g.mu.Lock()
	switch {
	case !g.started || tick > g.tick:
		g.started, g.tick, g.seqNum = true, tick, g.randomSeq(0)
	case g.seqNum+1 < g.seqs:
		g.seqNum++
	default:
		g.tick, g.seqNum = g.tick+1, g.randomSeq(0)
	}
	tick, seq := g.tick%g.ticks, g.seqNum
	g.mu.Unlock()
	return g.format(tick, seq)
}

// format writes the id of a tick (already wrapped) and a sequence number.
func (g *Generator) format(tick, seq int64) string {
	base := int64(len(g.l.Alphabet))
	b := make([]byte, len(g.l.Prefix)+g.l.TickSymbols+g.l.SeqSymbols)
	copy(b, g.l.Prefix)
	for i := len(b) - 1; i >= len(b)-g.l.SeqSymbols; i-- {
		b[i] = g.l.Alphabet[seq%base]
		seq /= base
	}
	for i := len(g.l.Prefix) + g.l.TickSymbols - 1; i >= len(g.l.Prefix); i-- {
		b[i] = g.l.Alphabet[tick%base]
		tick /= base
	}
	return string(b)
}

// Floor returns the smallest id a generator of this layout can make at t: every id made
// before t sorts below it (within a wrap of the ticks).
func (g *Generator) Floor(t time.Time) string {
	return g.format(max(int64(t.Sub(g.l.Epoch)/g.l.Tick), 0)%g.ticks, 0)
}

// Reseed makes the next id go on from a random point in the third quarter of the tick's
// sequence, after an id turned out to be taken.
func (g *Generator) Reseed() {
	g.mu.Lock()
	g.seqNum = g.randomSeq(g.seqs / 2)
	g.mu.Unlock()
}

// SeqsPerTick is how many ids a tick holds.
func (g *Generator) SeqsPerTick() int64 { return g.seqs }

// State and SetState read and set where the generator is, for tests that play a
// restart or a full tick.
func (g *Generator) State() (started bool, tick, seq int64) {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.started, g.tick, g.seqNum
}

// SetState: see State.
func (g *Generator) SetState(started bool, tick, seq int64) {
	g.mu.Lock()
	g.started, g.tick, g.seqNum = started, tick, seq
	g.mu.Unlock()
}

// randomSeq is a random sequence number in [from, from + a quarter of a tick's).
func (g *Generator) randomSeq(from int64) int64 {
	var b [8]byte
	rand.Read(b[:])
	return from + int64(binary.LittleEndian.Uint64(b[:])%uint64(max(g.seqs/4, 1)))
}
