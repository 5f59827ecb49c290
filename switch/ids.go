package payswitch

import (
	"crypto/rand"
	"encoding/binary"
	"sync"
	"time"
)

// idAlphabet leaves out I and O, which people misread as 1 and 0 on a small screen.
const idAlphabet = "ABCDEFGHJKLMNPQRSTUVWXYZ0123456789"

// Payment IDs are ten letters: six count ten-second ticks since idEpoch (24^6 ticks
// last until 2085) and four number the payments within the tick (331,776 a tick,
// 33,000 a second), all from idLetters, whose byte order is their numeric order.
//
// Why IDs sort by time: payments, their hold, code, events and transfers are all keyed
// or indexed by the payment ID. Random IDs put each payment on another page of seven
// indexes, and every such page is copied into the write-ahead log at each commit and
// into the database at each checkpoint; under load that was a sixth of the CPU of a
// payment. IDs made one after another land on the same few pages, as M-Pesa's
// receipt numbers do.
//
// Letters only, so an ID reads as a word and can never be mistaken for the code or an
// amount in a message. IDs are unique within a process: the sequence counts up within a
// tick, and the tick never goes back, even if the clock does (a full tick borrows the
// next one). Each tick's sequence starts at a random point in its lower half, so that a
// switch restarted within the same ten seconds almost surely uses other numbers; when an
// ID does turn out to be taken, the engine draws another (Engine.Request), and the
// sequence goes on from a random point in the upper half (reseed).
const (
	idLetters     = "ABCDEFGHJKLMNPQRSTUVWXYZ" // idAlphabet's letters
	idTickLetters = 6
	idSeqLetters  = 4
	idTick        = 10 * time.Second
	idSeqs        = 24 * 24 * 24 * 24 // payments per tick
	idTicks       = idSeqs * 24 * 24  // ticks before the tick letters wrap
)

var idEpoch = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)

// paymentIDs makes payment IDs in the order the switch starts payments.
type paymentIDs struct {
	mu      sync.Mutex
	started bool
	tick    int64
	seq     int64 // the last used in tick
}

// ids is the process's generator: one process writes a database's payments. idNow is
// its clock (tests stop it).
var (
	ids   paymentIDs
	idNow = time.Now
)

// NewPaymentID returns a new payment ID: ten upper-case letters that sort by the time
// they were made (see idLetters).
func NewPaymentID() string { return ids.next(idNow()) }

func (g *paymentIDs) next(now time.Time) string {
	tick := max(int64(now.Sub(idEpoch)/idTick), 0)
	g.mu.Lock()
	switch {
	case !g.started || tick > g.tick:
		g.started, g.tick, g.seq = true, tick, randomSeq(0)
	case g.seq+1 < idSeqs:
		g.seq++
	default:
		g.tick, g.seq = g.tick+1, randomSeq(0)
	}
	tick, seq := g.tick%idTicks, g.seq
	g.mu.Unlock()
	var b [idTickLetters + idSeqLetters]byte
	for i := len(b) - 1; i >= idTickLetters; i-- {
		b[i] = idLetters[seq%24]
		seq /= 24
	}
	for i := idTickLetters - 1; i >= 0; i-- {
		b[i] = idLetters[tick%24]
		tick /= 24
	}
	return string(b[:])
}

// reseed makes the next ID go on from a random point in the upper half of the tick's
// sequence, after an ID turned out to be taken.
func (g *paymentIDs) reseed() {
	g.mu.Lock()
	g.seq = randomSeq(idSeqs / 2)
	g.mu.Unlock()
}

// randomSeq is a random sequence number in [from, from+idSeqs/2).
func randomSeq(from int64) int64 {
	var b [8]byte
	rand.Read(b[:])
	return from + int64(binary.LittleEndian.Uint64(b[:])%(idSeqs/2))
}

// ValidPaymentID reports whether s has the shape of a payment ID. IDs made before they
// sorted by time have digits too.
func ValidPaymentID(s string) bool {
	if len(s) != 10 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'A' && c <= 'Z' || c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}
