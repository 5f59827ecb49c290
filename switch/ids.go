package payswitch

import (
	"time"

	"github.com/payswitch/payswitch/internal/timeid"
)

// Payment IDs are ten letters: six count ten-second ticks since 2025 (24^6 ticks last
// until 2085) and four number the payments within the tick (331,776 a tick, 33,000 a
// second), all from idLetters, whose byte order is their numeric order (timeid).
//
// Why IDs sort by time: payments, their hold, code, events and transfers are all keyed
// or indexed by the payment ID. Random IDs put each payment on another page of seven
// indexes, and every such page is copied into the write-ahead log at each commit and
// into the database at each checkpoint: under load that was an eighth of the CPU of a
// payment. IDs made one after another land on the same few pages, as M-Pesa's receipt
// numbers do. Letters only, so an ID reads as a word and can never be mistaken for the
// code or an amount in a message.
//
// A switch restarted within the same ten seconds can draw an ID it used before (see
// timeid): the engine then draws another (Engine.Request, Engine.write).
var paymentIDLayout = timeid.Layout{Alphabet: idLetters, Tick: 10 * time.Second,
	Epoch: time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC), TickSymbols: 6, SeqSymbols: 4}

// idLetters leave out I and O, which people misread as 1 and 0 on a small screen.
const idLetters = "ABCDEFGHJKLMNPQRSTUVWXYZ"

// newPaymentID returns a new payment ID from the engine's generator at the engine's
// clock: ten upper-case letters that sort by the time they were made (see
// paymentIDLayout). On SQLite one engine writes a database's payments, so one generator
// per engine is one per database. On PostgreSQL each node has its own, each starting at
// a random point of each tick; an ID another node drew already is refused by the
// payments' primary key (or the hold's key) and drawn again, as after a restart.
func (e *Engine) newPaymentID() string { return e.ids.Next(e.now()) }

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
