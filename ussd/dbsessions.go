package ussd

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/rs/zerolog"

	"github.com/payswitch/payswitch/internal/sessiondb"
	"github.com/payswitch/payswitch/store"
	payswitch "github.com/payswitch/payswitch/switch"
)

// On PostgreSQL (Config.DB), sessions live in the database instead of in memory, so
// that a dialogue's next step, or the answer to a pushed screen, may reach any node
// sharing it (contract section 13). A step claims its session's row for the step
// (internal/sessiondb: a lease, so a second step of the same session, on any node,
// waits as it would for the session's mutex), runs exactly as in memory on the decoded
// session, and writes the new state back. The limits are the same (maxSessions,
// maxPerNumber, maxPushSessions, maxPushPerNumber), enforced across nodes by the
// database. A session's state holds no secret: codes are acted on, never kept.

// stepLease is how long a step may hold its session: a step whose node died frees it
// after this, and the session carries on on another node.
const stepLease = 20 * time.Second

// pushTimeout bounds OpenPush's database work: its caller gives it no context.
const pushTimeout = 10 * time.Second

// errBusy is a step that waited too long for another step of its session to finish.
var errBusy = errors.New("ussd: session busy: another step of it has not finished")

// dbTables are the session tables of a Menu on PostgreSQL.
type dbTables struct {
	dialogues, pushes *sessiondb.Table
}

func newDBTables(db *store.DB) (*dbTables, error) {
	d, err := sessiondb.New(db, sessiondb.Options{Name: "ussd_sessions", Max: maxSessions, PerNumber: maxPerNumber})
	if err != nil {
		return nil, err
	}
	p, err := sessiondb.New(db, sessiondb.Options{Name: "ussd_push_sessions", Max: maxPushSessions, PerNumber: maxPushPerNumber})
	if err != nil {
		return nil, err
	}
	return &dbTables{dialogues: d, pushes: p}, nil
}

func (m *Menu) nowNanos() int64 { return m.now().UnixNano() }

// stepDB is step's second half on PostgreSQL: it finds or creates the session of in,
// as shards.open does in memory, runs the step and stores its outcome.
func (m *Menu) stepDB(ctx context.Context, in Input, inputs []string, create bool, phone string, now time.Time) (Screen, string, error) {
	t := m.db.dialogues
	key := in.SessionID
	var (
		s     *session
		lease sessiondb.Lease
		fresh bool
	)
	// Each turn either holds a session or found that another request created or
	// removed it meanwhile; a few turns settle any race.
	for turn := 0; s == nil; turn++ {
		if turn == 4 {
			return m.failedStep(errBusy)
		}
		if create && in.Begin { // a new dialogue under this key, whatever was there
			var err error
			if s, lease, _, err = m.createDB(ctx, t, key, phone, in.Phone, now, sessiondb.ReplaceAny); err != nil {
				return m.failedStep(err)
			}
			fresh = true
			break
		}
		row, l, st, err := t.Acquire(ctx, key, m.nowNanos, m.timeout, stepLease)
		if err != nil {
			return m.failedStep(err)
		}
		switch st {
		case sessiondb.Claimed:
			if s, err = decodeSession(row); err != nil {
				m.log.Error().Err(err).Str("phone", payswitch.Mask(row.Phone)).Msg("ussd session dropped")
				t.Drop(ctx, l)
				continue
			}
			lease = l
		case sessiondb.Busy:
			return m.failedStep(errBusy)
		default: // Absent or Expired
			if !create {
				if st == sessiondb.Expired {
					if _, err := t.RemoveExpired(ctx, key, now.UnixNano(), now.Add(-m.timeout).UnixNano()); err != nil {
						m.log.Error().Err(err).Msg("ussd session removal failed")
					}
				}
				if _, err := m.normalize(in.Phone); err != nil {
					return Screen{}, "bad_request", err
				}
				return Screen{Text: m.static["session_expired"], End: true}, "expired", nil
			}
			var ok bool
			if s, lease, ok, err = m.createDB(ctx, t, key, phone, in.Phone, now, sessiondb.ReplaceIdle); err != nil {
				return m.failedStep(err)
			}
			fresh = ok
			if !ok {
				s = nil // another dial stored one meanwhile: take that one
			}
		}
	}
	scr, result, err := m.stepOn(ctx, s, in, inputs, fresh, now)
	m.saveDB(ctx, t, lease, s)
	return scr, result, err
}

// createDB stores a new session of phone, dialled as raw, under key in t, claimed for
// its first step; ok is false when another one stays there (see sessiondb.Replace).
func (m *Menu) createDB(ctx context.Context, t *sessiondb.Table, key, phone, raw string, now time.Time, replace sessiondb.Replace) (*session, sessiondb.Lease, bool, error) {
	s := &session{phone: phone, raw: raw, seen: now.UnixNano()}
	row := sessiondb.Row{Phone: phone, Seen: s.seen, State: encodeSession(s)}
	l, ok, err := t.Create(ctx, key, row, replace, now.UnixNano(), now.Add(-m.timeout).UnixNano(), now.Add(stepLease).UnixNano())
	return s, l, ok, err
}

// saveDB stores s, the outcome of a step, and frees it. A session evicted or ended
// meanwhile stays gone, as in memory; the step's answer stands either way.
func (m *Menu) saveDB(ctx context.Context, t *sessiondb.Table, l sessiondb.Lease, s *session) {
	// The answer is decided: store it even when the caller has given up waiting.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), pushTimeout)
	defer cancel()
	if _, err := t.Save(ctx, l, s.seen, encodeSession(s)); err != nil {
		m.log.Error().Err(err).Str("phone", payswitch.Mask(s.phone)).Msg("ussd session not stored")
	}
}

// failedStep answers a step that could not reach its session.
func (m *Menu) failedStep(err error) (Screen, string, error) {
	m.log.Error().Err(err).Msg("ussd session unavailable")
	return Screen{Text: m.static["temporary_error"], End: true}, "error", err
}

// openPushDB is OpenPush on PostgreSQL, from the normalised phone on.
func (m *Menu) openPushDB(link, msisdn, phone, paymentID, screen string, now time.Time) (string, []byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), pushTimeout)
	defer cancel()
	t := m.db.pushes
	keys, err := t.KeysOf(ctx, phone)
	if err != nil {
		return "", nil, fmt.Errorf("%w: %w", ErrPushRefused, err)
	}
	// The live, unanswered session of the same payment, if any, moves to link.
	live := now.Add(-m.timeout).UnixNano()
	for _, key := range keys {
		row, l, st, err := t.Acquire(ctx, key, m.nowNanos, 2*m.timeout, stepLease)
		if err != nil {
			return "", nil, fmt.Errorf("%w: %w", ErrPushRefused, err)
		}
		if st != sessiondb.Claimed {
			continue
		}
		s, err := decodeSession(row)
		if err != nil || s.push == nil || s.push.answered || s.payment != paymentID || s.node == nodeDone || s.seen < live {
			t.Release(ctx, l)
			continue
		}
		s.push.link, s.seen = link, now.UnixNano()
		m.saveDB(ctx, t, l, s)
		return s.last, []byte{s.push.number, 0}, nil
	}
	// A session number that no session of the number holds, pushed or dialled.
	taken := make(map[byte]bool)
	dialled, err := m.db.dialogues.KeysOf(ctx, phone)
	if err != nil {
		return "", nil, fmt.Errorf("%w: %w", ErrPushRefused, err)
	}
	for _, k := range append(keys, dialled...) {
		if n, ok := keyNumber(k); ok {
			taken[n] = true
		}
	}
	body, opts := splitOptions(screen)
	start := m.pushSeq.Add(1)
	for i := range uint32(256) {
		n := byte(start + i)
		if taken[n] {
			continue
		}
		s := &session{phone: phone, seen: now.UnixNano(), payment: paymentID}
		s.push = &pushInfo{link: link, number: n, body: body, opts: opts}
		scr := m.show(s, body, opts, false, nodePushChoice)
		s.last = scr.Text
		row := sessiondb.Row{Phone: phone, Seen: s.seen, State: encodeSession(s)}
		_, ok, err := t.Create(ctx, pushKey(phone, n), row, sessiondb.KeepExisting, now.UnixNano(), 0, 0)
		if err != nil {
			return "", nil, fmt.Errorf("%w: %w", ErrPushRefused, err)
		}
		if ok {
			return scr.Text, []byte{n, 0}, nil
		}
	}
	return "", nil, fmt.Errorf("%w: no session number free for %s", ErrPushRefused, payswitch.Mask(msisdn))
}

// keyNumber is the session number of a push session's key ("push:<phone>/<n>") or of
// an SMPP dialogue's ("smpp:<from>/<n>").
func keyNumber(key string) (byte, bool) {
	if !strings.HasPrefix(key, "push:") && !strings.HasPrefix(key, "smpp:") {
		return 0, false
	}
	i := strings.LastIndexByte(key, '/')
	if i < 0 {
		return 0, false
	}
	n, err := strconv.ParseUint(key[i+1:], 10, 8)
	return byte(n), err == nil
}

// answerPushDB is answerPush on PostgreSQL, from the session's key on.
func (m *Menu) answerPushDB(ctx context.Context, link, key, text string, now time.Time) (Screen, bool, error) {
	t := m.db.pushes
	row, l, st, err := t.Acquire(ctx, key, m.nowNanos, 2*m.timeout, stepLease)
	if err == nil && st == sessiondb.Busy {
		err = errBusy
	}
	if err != nil {
		scr, result, err := m.failedStep(err)
		m.steps.WithLabelValues(result).Inc()
		return scr, true, err
	}
	switch st {
	case sessiondb.Absent:
		return Screen{}, false, nil
	case sessiondb.Expired:
		if _, err := t.RemoveExpired(ctx, key, now.UnixNano(), now.Add(-2*m.timeout).UnixNano()); err != nil {
			m.log.Error().Err(err).Msg("ussd push session removal failed")
		}
		return Screen{}, false, nil
	}
	s, err := decodeSession(row)
	if err != nil || s.push == nil {
		m.log.Error().Err(err).Str("phone", payswitch.Mask(row.Phone)).Msg("ussd push session dropped")
		t.Drop(ctx, l)
		return Screen{}, false, nil
	}
	// The key holds the number; the link is checked here, as in memory.
	if s.push.link != link {
		t.Release(ctx, l)
		return Screen{}, false, nil
	}
	scr, result, err := m.stepPush(ctx, s, text, now)
	m.steps.WithLabelValues(result).Inc()
	m.saveDB(ctx, t, l, s)
	return scr, true, err
}

func (d *dbTables) count(t *sessiondb.Table, log zerolog.Logger) int {
	n, err := t.Count(context.Background())
	if err != nil {
		log.Error().Err(err).Msg("ussd sessions not counted")
	}
	return n
}

func (d *dbTables) remove(t *sessiondb.Table, key string, log zerolog.Logger) bool {
	ok, err := t.Remove(context.Background(), key)
	if err != nil {
		log.Error().Err(err).Msg("ussd session removal failed")
	}
	return ok
}

// sweep removes the dialogues idle longer than timeout and the push sessions idle
// twice as long. Every node may sweep at once.
func (d *dbTables) sweep(now time.Time, timeout time.Duration, log zerolog.Logger) int {
	ctx := context.Background()
	n, err := d.dialogues.Sweep(ctx, now.UnixNano(), now.Add(-timeout).UnixNano())
	if err != nil {
		log.Error().Err(err).Msg("ussd session sweep failed")
	}
	p, err := d.pushes.Sweep(ctx, now.UnixNano(), now.Add(-2*timeout).UnixNano())
	if err != nil {
		log.Error().Err(err).Msg("ussd push session sweep failed")
	}
	return n + p
}

// stateFormat is the first byte of an encoded session: a release that changes the
// encoding changes it, and a session in a format it does not know is dropped (its
// dialogue ends with session_expired) rather than misread.
const stateFormat = 1

// Flags of an encoded session.
const (
	flagLastEnd = 1 << iota
	flagPage
	flagPageEnd
	flagPush
	flagAnswered
)

// encodeSession is s without its phone and seen time, which are columns of their own.
func encodeSession(s *session) []byte {
	var w sessiondb.Writer
	var flags byte
	if s.lastEnd {
		flags |= flagLastEnd
	}
	if s.page != nil {
		flags |= flagPage
		if s.page.end {
			flags |= flagPageEnd
		}
	}
	if s.push != nil {
		flags |= flagPush
		if s.push.answered {
			flags |= flagAnswered
		}
	}
	w.Byte(stateFormat)
	w.Byte(flags)
	w.Byte(byte(s.node))
	w.Uint(uint64(s.consumed))
	w.Uint(uint64(s.quantity))
	w.String(s.raw)
	w.String(s.payment)
	w.String(s.field)
	w.String(s.product)
	w.String(s.last)
	if p := s.page; p != nil {
		w.Byte(byte(p.next))
		w.String(p.rest)
		w.String(p.opts)
		w.String(p.shown)
	}
	if p := s.push; p != nil {
		w.Byte(p.number)
		w.String(p.link)
		w.String(p.body)
		w.String(p.opts)
	}
	return w.Bytes()
}

// decodeSession is the session stored as row.
func decodeSession(row sessiondb.Row) (*session, error) {
	r := sessiondb.NewReader(row.State)
	if r.Byte() != stateFormat {
		return nil, sessiondb.ErrCorrupt
	}
	s := &session{phone: row.Phone, seen: row.Seen}
	flags := r.Byte()
	s.node = node(r.Byte())
	consumed, quantity := r.Uint(), r.Uint()
	s.consumed, s.quantity = uint16(consumed), uint16(quantity)
	s.raw, s.payment, s.field, s.product, s.last = r.String(), r.String(), r.String(), r.String(), r.String()
	s.lastEnd = flags&flagLastEnd != 0
	if flags&flagPage != 0 {
		s.page = &paging{next: node(r.Byte()), end: flags&flagPageEnd != 0}
		s.page.rest, s.page.opts, s.page.shown = r.String(), r.String(), r.String()
	}
	if flags&flagPush != 0 {
		s.push = &pushInfo{number: r.Byte(), answered: flags&flagAnswered != 0}
		s.push.link, s.push.body, s.push.opts = r.String(), r.String(), r.String()
	}
	if err := r.Err(); err != nil {
		return nil, err
	}
	if consumed > maxInputs || quantity > payswitch.MaxQuantity || s.node > nodeWithdrawAmount ||
		s.page != nil && s.page.next > nodeWithdrawAmount {
		return nil, sessiondb.ErrCorrupt
	}
	return s, nil
}
