package ivr

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/payswitch/payswitch/internal/sessiondb"
	payswitch "github.com/payswitch/payswitch/switch"
)

// On PostgreSQL (Config.DB), calls live in the database instead of in memory, so that
// a call's next callback may reach any node sharing it (contract section 13). A
// callback claims its call's row for the step (internal/sessiondb: a lease, so a second
// callback of the same call, on any node, waits as it would for the call's mutex),
// runs the script exactly as in memory on the decoded call, and writes the new state
// back. The call stays bound to its number and direction: a callback that names
// another number, or the other direction, is refused on every node as in memory. The
// limits are the same (maxSessions, maxPerNumber), enforced across nodes by the
// database. A call's state holds no secret: a code is never kept (fallback.go reads
// it again from the outbox), keyed digits are acted on and dropped.

// stepLease is how long a callback may hold its call: beyond stepTimeout, within
// which the gateway wants its answer.
const stepLease = stepTimeout + 5*time.Second

// errBusy is a callback that waited too long for another callback of its call.
var errBusy = errors.New("ivr: call busy: another callback of it has not finished")

// stepDB is step's second half on PostgreSQL, from the look-up of the call on.
func (s *Service) stepDB(ctx context.Context, cb callback, dir string) (Response, string, string) {
	now := s.now()
	nowNanos := func() int64 { return s.now().UnixNano() }
	row, lease, st, err := s.db.Acquire(ctx, cb.sessionID, nowNanos, s.cfg.SessionTimeout, stepLease)
	if err == nil && st == sessiondb.Busy {
		err = errBusy
	}
	if err != nil {
		s.log.Error().Err(err).Msg("call unavailable")
		return final(s.texts.Render("temporary_error", nil)), dir, "error"
	}
	var sess *session
	if st == sessiondb.Claimed {
		if sess, err = decodeCall(row); err != nil {
			s.log.Error().Err(err).Str("caller", payswitch.Mask(row.Phone)).Msg("call state dropped")
			s.db.Drop(ctx, lease)
			st = sessiondb.Absent
		}
	}
	known := st == sessiondb.Claimed
	release := func() {
		if known {
			s.db.Release(context.WithoutCancel(ctx), lease)
		}
	}
	if known && cb.direction == "" && sess.outbound {
		dir = "outbound" // a gateway that names the direction only at the start
	}
	outbound := dir == "outbound"
	raw := cb.caller
	if outbound {
		raw = cb.dest
	}
	phone, err := s.engine.Normalize(raw)
	if err != nil {
		release()
		if outbound {
			return rejection(), dir, "reject"
		}
		if cb.direction == "" && strings.TrimSpace(raw) == "" {
			return rejection(), dir, "reject"
		}
		return final(s.texts.Render("hidden_number", nil)), dir, "end"
	}
	if known && (sess.phone != phone || sess.outbound != outbound) {
		// Someone else's session ID: leave that call alone.
		release()
		return final(s.texts.Render("session_gone", nil)), dir, "unknown"
	}
	if st == sessiondb.Expired {
		if _, err := s.db.RemoveExpired(ctx, cb.sessionID, now.UnixNano(), now.Add(-s.cfg.SessionTimeout).UnixNano()); err != nil {
			s.log.Error().Err(err).Msg("call removal failed")
		}
	}
	if !known {
		return s.start(ctx, cb, phone, outbound, now)
	}
	sess.seen = now
	resp := s.next(ctx, sess, cb.digits)
	result := "prompt"
	if resp.ends() {
		sess.node, sess.last, result = nodeDone, resp, "end"
	}
	s.saveDB(ctx, lease, sess)
	return resp, dir, result
}

// keepDB stores sess, a call started by a first callback, under id, unless another
// first callback of the call stored one meanwhile: that one stands.
func (s *Service) keepDB(ctx context.Context, id string, sess *session) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), stepTimeout)
	defer cancel()
	now := sess.seen
	row := sessiondb.Row{Phone: sess.phone, Seen: now.UnixNano(), State: encodeCall(sess)}
	if _, _, err := s.db.Create(ctx, id, row, sessiondb.KeepExisting, now.UnixNano(), 0, 0); err != nil {
		s.log.Error().Err(err).Str("caller", payswitch.Mask(sess.phone)).Msg("call not stored")
	}
}

// saveDB stores sess, the outcome of a step, and frees it. A call evicted or ended
// meanwhile stays gone, as in memory; the answer stands either way.
func (s *Service) saveDB(ctx context.Context, l sessiondb.Lease, sess *session) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), stepTimeout)
	defer cancel()
	if _, err := s.db.Save(ctx, l, sess.seen.UnixNano(), encodeCall(sess)); err != nil {
		s.log.Error().Err(err).Str("caller", payswitch.Mask(sess.phone)).Msg("call not stored")
	}
}

// stateFormat is the first byte of an encoded call; see ussd's.
const stateFormat = 1

// Flags of an encoded call and of its last Response.
const (
	flagOutbound = 1 << iota
	flagSay
	flagGetDigits
	flagGetDigitsSay
	flagReject
)

// encodeCall is sess without its phone and seen time, which are columns of their own.
func encodeCall(sess *session) []byte {
	var w sessiondb.Writer
	var flags byte
	if sess.outbound {
		flags |= flagOutbound
	}
	r := sess.last
	if r.Say != nil {
		flags |= flagSay
	}
	if r.GetDigits != nil {
		flags |= flagGetDigits
		if r.GetDigits.Say != nil {
			flags |= flagGetDigitsSay
		}
	}
	if r.Reject != nil {
		flags |= flagReject
	}
	w.Byte(stateFormat)
	w.Byte(flags)
	w.Byte(byte(sess.node))
	w.Int(int64(sess.misses))
	w.Int(int64(sess.notices))
	w.Int(int64(sess.digits))
	w.Int(sess.callMsg)
	w.String(sess.ask)
	w.String(string(sess.typ))
	w.String(sess.field)
	w.String(sess.payee)
	w.String(sess.payment)
	w.String(sess.notice)
	if r.Say != nil {
		w.String(r.Say.Text)
	}
	if g := r.GetDigits; g != nil {
		w.Int(int64(g.Timeout))
		w.String(g.FinishOnKey)
		w.Int(int64(g.NumDigits))
		if g.Say != nil {
			w.String(g.Say.Text)
		}
	}
	return w.Bytes()
}

// decodeCall is the call stored as row.
func decodeCall(row sessiondb.Row) (*session, error) {
	r := sessiondb.NewReader(row.State)
	if r.Byte() != stateFormat {
		return nil, sessiondb.ErrCorrupt
	}
	sess := &session{phone: row.Phone, seen: time.Unix(0, row.Seen)}
	flags := r.Byte()
	sess.outbound = flags&flagOutbound != 0
	sess.node = node(r.Byte())
	sess.misses, sess.notices, sess.digits = int(r.Int()), int(r.Int()), int(r.Int())
	sess.callMsg = r.Int()
	sess.ask = r.String()
	sess.typ = payswitch.PaymentType(r.String())
	sess.field, sess.payee, sess.payment, sess.notice = r.String(), r.String(), r.String(), r.String()
	if flags&flagSay != 0 {
		sess.last.Say = &Say{Text: r.String()}
	}
	if flags&flagGetDigits != 0 {
		g := &GetDigits{Timeout: int(r.Int()), FinishOnKey: r.String(), NumDigits: int(r.Int())}
		if flags&flagGetDigitsSay != 0 {
			g.Say = &Say{Text: r.String()}
		}
		sess.last.GetDigits = g
	}
	if flags&flagReject != 0 {
		sess.last.Reject = &Reject{}
	}
	if err := r.Err(); err != nil {
		return nil, err
	}
	if sess.node > nodeLockID {
		return nil, sessiondb.ErrCorrupt
	}
	return sess, nil
}
