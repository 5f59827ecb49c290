package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/payswitch/payswitch/tools/smscsim"
)

// errNoAnswer is what await returns when nothing that fits arrived in time.
var errNoAnswer = errors.New("crashtest: no answer in time")

// mailboxes keeps every MT the simulator delivered, per phone number, in order of
// arrival. The simulator outlives each killed switch, so this is what the phones saw,
// whatever happened to the process that sent it.
type mailboxes struct {
	mu   sync.Mutex           // guards byTo and wake
	byTo map[string][]arrival // MTs by recipient, oldest first
	wake chan struct{}        // closed and replaced on each MT
}

// arrival is one MT as a phone got it.
type arrival struct {
	text string
	at   time.Time
}

func newMailboxes() *mailboxes {
	return &mailboxes{byTo: map[string][]arrival{}, wake: make(chan struct{})}
}

// collect files every MT from ch until it closes. It never blocks on anything but the
// lock, so that the simulator's subscriber buffer does not overflow.
func (m *mailboxes) collect(ch <-chan smscsim.MT) {
	for mt := range ch {
		m.mu.Lock()
		m.byTo[mt.To] = append(m.byTo[mt.To], arrival{mt.Text, mt.Time})
		close(m.wake)
		m.wake = make(chan struct{})
		m.mu.Unlock()
	}
}

// mark is the position after the last MT to msisdn so far: await from it sees only what
// arrives later.
func (m *mailboxes) mark(msisdn string) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.byTo[msisdn])
}

// first returns when the first MT to msisdn that match accepts arrived.
func (m *mailboxes) first(msisdn string, match func(string) bool) (time.Time, bool) {
	m.mu.Lock()
	box := m.byTo[msisdn]
	m.mu.Unlock()
	// Arrivals are only ever appended, so box is safe to read without the lock.
	for _, a := range box {
		if match(a.text) {
			return a.at, true
		}
	}
	return time.Time{}, false
}

// duplicates counts the MTs about a payment (code messages, receipts, notices, ends)
// that a phone got more than once: the price of at-least-once delivery over SMPP when
// the switch dies between the SMSC's acceptance and its own record of it.
func (m *mailboxes) duplicates() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	n := 0
	for _, box := range m.byTo {
		seen := map[string]bool{}
		for _, a := range box {
			word, _, _ := strings.Cut(a.text, " ")
			if !isPaymentID(strings.TrimSuffix(word, ":")) {
				continue
			}
			if seen[a.text] {
				n++
			}
			seen[a.text] = true
		}
	}
	return n
}

// hadBefore reports whether msisdn got text before position mark: a text that arrives
// again after mark is a copy of it.
func (m *mailboxes) hadBefore(msisdn string, mark int, text string) bool {
	m.mu.Lock()
	box := m.byTo[msisdn]
	m.mu.Unlock()
	for _, a := range box[:min(mark, len(box))] {
		if a.text == text {
			return true
		}
	}
	return false
}

// has reports whether some MT to msisdn so far satisfies match.
func (m *mailboxes) has(msisdn string, match func(string) bool) bool {
	_, ok := m.first(msisdn, match)
	return ok
}

// await returns the first MT to msisdn from position from on that match accepts, and
// the position after it. Texts are given to match outside the lock, so match may take
// its time (ask the switch, say).
func (m *mailboxes) await(ctx context.Context, msisdn string, from int, timeout time.Duration,
	match func(string) bool) (string, int, error) {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		m.mu.Lock()
		box, wake := m.byTo[msisdn], m.wake
		m.mu.Unlock()
		for ; from < len(box); from++ {
			if t := box[from].text; match(t) {
				return t, from + 1, nil
			}
		}
		select {
		case <-wake:
		case <-deadline.C:
			return "", from, errNoAnswer
		case <-ctx.Done():
			return "", from, ctx.Err()
		}
	}
}

// The switch's default texts (switch/texts.go) that the phones read. crashtest runs
// the switch without a messages section, so these are what it says.
const (
	textNoPending = "You have no payment waiting for a code."
)

// otpOf reads a code message: "<ID>: pay KES 150.00 to Shop (55501)? Your code is
// 123456, ...". The code is the only run of exactly digits digits that is not part of a
// longer number or word, as the contract promises.
func otpOf(text string, digits int) (id, code string, ok bool) {
	id, rest, found := strings.Cut(text, ": pay ")
	if !found || !isPaymentID(id) {
		return "", "", false
	}
	codes := digitRuns(rest, digits)
	if len(codes) != 1 {
		return "", "", false
	}
	return id, codes[0], true
}

// pendingOf reads the refusal that names the payment already waiting for a code:
// "<ID> (KES 150.00 to Shop (55501)) is waiting for your code. ...".
func pendingOf(text string) (id string, ok bool) {
	if !strings.Contains(text, "is waiting for your code") {
		return "", false
	}
	id, _, _ = strings.Cut(text, " ")
	return id, isPaymentID(id)
}

// refused reports whether text turns down a request: each such text of the switch
// says that nothing was paid, or why it cannot even try.
func refused(text string) bool {
	for _, s := range []string{"Nothing was paid", "Too many requests", "Payments are locked", "not active", "no payswitch account"} {
		if strings.Contains(text, s) {
			return true
		}
	}
	return false
}

// finalFor reports whether text tells that payment id has ended, and how.
func finalFor(text, id string) (state string, ok bool) {
	switch {
	case strings.HasPrefix(text, id+" confirmed."):
		return "completed", true
	case strings.HasPrefix(text, id+" cancelled."):
		return "cancelled", true
	case strings.HasPrefix(text, id+" failed:"):
		return "failed", true
	case strings.HasPrefix(text, id+" expired:"), strings.HasPrefix(text, "The code for "+id+" has expired"):
		return "expired", true
	}
	return "", false
}

// isReceipt reports whether text is the payer's receipt of payment id.
func isReceipt(text, id string) bool { return strings.HasPrefix(text, id+" confirmed.") }

// isNotice reports whether text is the payee's notice of payment id.
func isNotice(text, id string) bool { return strings.HasPrefix(text, id+": you have received ") }

// isOTPFor reports whether text is a code message of payment id.
func isOTPFor(text, id string) bool {
	got, _, ok := otpOf(text, 6)
	if ok && got == id {
		return true
	}
	return strings.HasPrefix(text, id+": new code ")
}

// isWrongCode reports whether text answers a wrong code for payment id.
func isWrongCode(text, id string) bool { return strings.HasPrefix(text, "Wrong code for "+id+".") }

// isPaymentID reports whether s looks like a payment ID: 10 upper-case letters and digits.
func isPaymentID(s string) bool {
	if len(s) != 10 {
		return false
	}
	for _, c := range s {
		if (c < 'A' || c > 'Z') && (c < '0' || c > '9') {
			return false
		}
	}
	return true
}

// digitRuns returns every run of exactly n digits in s that is not part of a longer
// number ("1,500.00" is one number) or of a word ("AB123456CD").
func digitRuns(s string, n int) []string {
	var out []string
	isDigit := func(i int) bool { return i >= 0 && i < len(s) && s[i] >= '0' && s[i] <= '9' }
	isWordy := func(i int) bool {
		if i < 0 || i >= len(s) {
			return false
		}
		c := s[i]
		return c >= '0' && c <= '9' || c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c == '_'
	}
	for i := 0; i < len(s); {
		if !isDigit(i) {
			i++
			continue
		}
		j := i
		for isDigit(j) {
			j++
		}
		// A separator between digits joins two runs into one number.
		joined := (i >= 2 && (s[i-1] == ',' || s[i-1] == '.') && isDigit(i-2)) ||
			(j+1 < len(s) && (s[j] == ',' || s[j] == '.') && isDigit(j+1))
		if j-i == n && !joined && !isWordy(i-1) && !isWordy(j) {
			out = append(out, s[i:j])
		}
		i = j
	}
	return out
}

// history renders every MT to msisdn, oldest first, with its arrival time: what a
// violation about that phone shows, so that a copy can be told from a new answer.
func (m *mailboxes) history(msisdn string) string {
	m.mu.Lock()
	box := m.byTo[msisdn]
	m.mu.Unlock()
	var b strings.Builder
	for i, a := range box {
		fmt.Fprintf(&b, "\n  %d %s %q", i, a.at.Format("15:04:05.000"), a.text)
	}
	return b.String()
}
