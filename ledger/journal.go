package ledger

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"strconv"
	"time"

	"github.com/payswitch/payswitch/internal/timeid"
)

// TimeLayout is how the ledger writes every time: UTC, microseconds, a literal Z. Entry
// hashes cover the time in exactly this form.
const TimeLayout = "2006-01-02T15:04:05.000000Z"

// GenesisHash is the prev_hash of the journal's first entry.
const GenesisHash = "0000000000000000000000000000000000000000000000000000000000000000"

// FormatTime formats t as the ledger stores it (TimeLayout, UTC).
func FormatTime(t time.Time) string { return t.UTC().Format(TimeLayout) }

// parseTime reads a time the ledger wrote; text that is not in TimeLayout gives the zero
// time, which Verify reports.
func parseTime(s string) time.Time {
	t, err := time.Parse(TimeLayout, s)
	if err != nil {
		return time.Time{}
	}
	return t
}

// EntryHash is the hash that chains entry e to the one before it: the lowercase hex
// SHA-256 of the UTF-8 bytes of
//
//	prev_hash,seq,time,transfer_id,payment_id,account_id,direction,amount,currency,balance_after
//
// joined by ",", integers in base 10, time as TimeText (FormatTime(e.Time) when TimeText
// is empty). The auditor export publishes this rule, so it never changes.
func EntryHash(e Entry) string {
	ts := e.TimeText
	if ts == "" {
		ts = FormatTime(e.Time)
	}
	b := make([]byte, 0, 256)
	b = append(b, e.PrevHash...)
	b = append(b, ',')
	b = strconv.AppendInt(b, e.Seq, 10)
	b = append(b, ',')
	b = append(b, ts...)
	b = append(b, ',')
	b = append(b, e.TransferID...)
	b = append(b, ',')
	b = append(b, e.PaymentID...)
	b = append(b, ',')
	b = append(b, e.AccountID...)
	b = append(b, ',')
	b = append(b, e.Direction...)
	b = append(b, ',')
	b = strconv.AppendInt(b, e.Amount, 10)
	b = append(b, ',')
	b = append(b, e.Currency...)
	b = append(b, ',')
	b = strconv.AppendInt(b, e.BalanceAfter, 10)
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// chainHead is the journal's last entry, which the next entry links to.
type chainHead struct {
	seq  int64
	time string
	hash string
}

// idChars are the symbols of generated ids: upper-case letters and digits.
const idChars = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"

// newID returns prefix followed by n symbols of idChars drawn uniformly from crypto/rand.
func newID(prefix string, n int) string {
	b := make([]byte, len(prefix), len(prefix)+n)
	copy(b, prefix)
	var buf [32]byte
	for {
		rand.Read(buf[:])
		for _, r := range buf {
			// Rejection sampling keeps every symbol equally likely: 252 = 7*36.
			if r >= 252 {
				continue
			}
			b = append(b, idChars[int(r)%len(idChars)])
			if len(b) == cap(b) {
				return string(b)
			}
		}
	}
}

// NewAccountID returns a generated account id: "AC" and 10 random letters or digits.
func NewAccountID() string { return newID("AC", 10) }

// NewTransferID returns a random transfer id: "TR" and 12 random letters or digits. The
// ledger books its transfers with ids of the same form that sort by time instead
// (Ledger.NewTransferID).
func NewTransferID() string { return newID("TR", 12) }

// sortedChars are idChars in byte order: a number written with them sorts as text.
const sortedChars = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"

// Transfer ids: "TR", seven symbols of the tick (tenths of a second since idEpoch, enough
// for 248 years) and five of a sequence number within the tick, in sortedChars.
//
// Ids that sort by time make the transfers' id index and the entries'
// (transfer_id, direction) index grow at their end, as the journal does; with random
// ids a batch cost a sixth more. A ledger never repeats an id; another ledger writing
// the same file (a tool, a restart within the tenth) almost surely uses other numbers,
// and when it does not, the insert's UNIQUE id refuses the duplicate and the booking
// draws again (timeid.Generator.Reseed).
var transferIDLayout = timeid.Layout{Prefix: "TR", Alphabet: sortedChars, Tick: 100 * time.Millisecond,
	Epoch: time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC), TickSymbols: 7, SeqSymbols: 5}
