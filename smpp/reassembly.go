package smpp

import (
	"encoding/binary"
	"errors"
	"strings"
	"sync"
	"time"

	"github.com/fiorix/go-smpp/smpp/pdu/pdutlv"
	"github.com/payswitch/payswitch/smpp/server"
)

// Caps of a Reassembler. Parts are acknowledged as they arrive and held in memory, so
// whoever can send MO could otherwise make the process hold whatever it liked: a part
// "1 of 255" carrying a 60 KB message_payload, again and again. A legitimate
// concatenated MO is a few parts of an SMS each, completed within seconds, and a
// command to the switch is short; the caps are far above that.
const (
	// MaxConcatParts is the most parts a concatenated MO may declare.
	MaxConcatParts = 16
	// reassemblyTimeout is how long the parts of an incomplete message are held after
	// its first part arrived; Sweep drops them then, and a reassembler at a cap drops
	// them at once.
	reassemblyTimeout = 2 * time.Minute
	// maxSetsPerSender is how many incomplete messages one sender (a link's source
	// address, or a Gateway account's) may have at once.
	maxSetsPerSender = 8
	// maxReassemblySets and maxReassemblyBytes bound what a reassembler holds in all:
	// incomplete messages, and the bytes of their parts' text.
	maxReassemblySets  = 4096
	maxReassemblyBytes = 4 << 20
)

// Reassembler joins concatenated parts per (sender key, reference, total) until all
// arrive. Incomplete sets older than its timeout are dropped by Sweep; duplicate parts
// are ignored. A part beyond one of the caps above is refused. It is safe for
// concurrent use. It keeps parts in memory only.
type Reassembler struct {
	timeout time.Duration

	mu        sync.Mutex // guards the fields below
	sets      map[reassemblyKey]*reassembly
	perSender map[string]int // incomplete sets by sender key
	bytes     int            // text bytes of every part held
}

type reassemblyKey struct {
	from  string
	ref   uint16
	total uint8
}

type reassembly struct {
	first time.Time
	parts map[uint8]string
	bytes int
}

// NewReassembler returns a Reassembler that forgets incomplete sets after timeout.
func NewReassembler(timeout time.Duration) *Reassembler {
	return &Reassembler{timeout: timeout, sets: make(map[reassemblyKey]*reassembly), perSender: make(map[string]int)}
}

// Add files part p from the given sender key; when it completes its set, Add returns
// the whole text and forgets the set. A part with Total <= 1 is a whole message by
// itself. A part refused by a cap is dropped: Add reports it incomplete.
func (r *Reassembler) Add(from string, p Part, now time.Time) (text string, complete bool) {
	text, complete, err := r.take(from, p, now)
	if err == nil && complete {
		r.finish(from, p)
	}
	return text, complete
}

// take is Add that keeps a completed set until finish is called, so that a caller that
// fails to hand the text on can have the last part redelivered and complete the set
// again instead of losing the parts it already acknowledged. It returns
// ErrTooManyParts or ErrReassemblyFull for a part it refuses.
func (r *Reassembler) take(from string, p Part, now time.Time) (string, bool, error) {
	if p.Total <= 1 {
		return p.Text, true, nil
	}
	if p.Total > MaxConcatParts {
		return "", false, ErrTooManyParts
	}
	if p.Seq == 0 || p.Seq > p.Total {
		return "", false, nil
	}
	k := reassemblyKey{from, p.Ref, p.Total}
	r.mu.Lock()
	defer r.mu.Unlock()
	set := r.sets[k]
	if set == nil {
		if !r.roomLocked(from, 0, now) {
			return "", false, ErrReassemblyFull
		}
		// Not sized by p.Total: that is what the sender declares, not what it sends.
		set = &reassembly{first: now, parts: make(map[uint8]string)}
		r.sets[k] = set
		r.perSender[from]++
	}
	if _, dup := set.parts[p.Seq]; !dup {
		if !r.roomLocked("", len(p.Text), now) {
			if len(set.parts) == 0 {
				r.dropLocked(k, set)
			}
			return "", false, ErrReassemblyFull
		}
		set.parts[p.Seq] = p.Text
		set.bytes += len(p.Text)
		r.bytes += len(p.Text)
	}
	if len(set.parts) < int(p.Total) {
		return "", false, nil
	}
	var sb strings.Builder
	sb.Grow(set.bytes)
	for i := 1; i <= int(p.Total); i++ {
		sb.WriteString(set.parts[uint8(i)])
	}
	return sb.String(), true, nil
}

// roomLocked reports whether a new set for sender key from (when from is not "") and n
// more bytes fit under the caps, dropping the expired sets first when they would not.
func (r *Reassembler) roomLocked(from string, n int, now time.Time) bool {
	fits := func() bool {
		if from != "" && (r.perSender[from] >= maxSetsPerSender || len(r.sets) >= maxReassemblySets) {
			return false
		}
		return r.bytes+n <= maxReassemblyBytes
	}
	if fits() {
		return true
	}
	r.sweepLocked(now)
	return fits()
}

// dropLocked forgets set k and what it held.
func (r *Reassembler) dropLocked(k reassemblyKey, set *reassembly) {
	delete(r.sets, k)
	r.bytes -= set.bytes
	if r.perSender[k.from]--; r.perSender[k.from] <= 0 {
		delete(r.perSender, k.from)
	}
}

// finish forgets the set that p completed.
func (r *Reassembler) finish(from string, p Part) {
	if p.Total <= 1 {
		return
	}
	k := reassemblyKey{from, p.Ref, p.Total}
	r.mu.Lock()
	defer r.mu.Unlock()
	if set := r.sets[k]; set != nil {
		r.dropLocked(k, set)
	}
}

// Sweep drops the sets whose first part arrived more than the timeout before now and
// returns how many it dropped.
func (r *Reassembler) Sweep(now time.Time) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.sweepLocked(now)
}

func (r *Reassembler) sweepLocked(now time.Time) int {
	n := 0
	for k, set := range r.sets {
		if now.Sub(set.first) > r.timeout {
			r.dropLocked(k, set)
			n++
		}
	}
	return n
}

// Pending returns how many incomplete sets are held.
func (r *Reassembler) Pending() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.sets)
}

// Held returns how many sets, and how many bytes of text in their parts, are held.
func (r *Reassembler) Held() (sets, bytes int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.sets), r.bytes
}

// gatewayRefusal is the submit_sm_resp status for a part the reassembler refused:
// ESME_RINVMSGLEN for a message longer than accepted (sending it again will not help),
// ESME_RMSGQFUL while it is full.
func gatewayRefusal(err error) uint32 {
	if errors.Is(err, ErrTooManyParts) {
		return server.StatusInvMsgLen
	}
	return server.StatusMsgQFul
}

// linkRefusal is the deliver_sm_resp status for a part the reassembler refused, as for
// any MO the link refuses: ESME_RX_P_APPN when the SMSC should not deliver it again,
// ESME_RX_T_APPN when it may later.
func linkRefusal(err error) uint32 {
	if errors.Is(err, ErrTooManyParts) {
		return StatusRxPermAppn
	}
	return StatusRxTempAppn
}

// sarOf reads the sar_* TLVs, or returns nil when they are absent or malformed.
func sarOf(tlv pdutlv.Map) *SAR {
	ref, ok1 := tlv[tagSarMsgRefNum]
	total, ok2 := tlv[tagSarTotalSegments]
	seq, ok3 := tlv[tagSarSegmentSeqnum]
	if !ok1 || !ok2 || !ok3 || len(ref.Bytes()) != 2 || len(total.Bytes()) != 1 || len(seq.Bytes()) != 1 {
		return nil
	}
	return &SAR{Ref: binary.BigEndian.Uint16(ref.Bytes()), Total: total.Bytes()[0], Seq: seq.Bytes()[0]}
}
