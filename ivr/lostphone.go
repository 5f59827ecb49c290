package ivr

import (
	"context"
	"errors"

	payswitch "github.com/payswitch/payswitch/switch"
)

// The lost-phone lock by voice (contract section 14): 9 at the menu, or at the offer a
// caller without an account hears, asks for the number of the wallet to lock, then its
// owner's id number, and gives it to the engine as a LOCK from the caller. What the
// caller hears is the engine's answer: the same whatever the details were, but when the
// caller has made too many LOCKs. The id number is never said back nor logged.

// askLockWallet starts the lock: the wallet's number.
func (s *Service) askLockWallet(sess *session) Response {
	sess.node = nodeLockWallet
	return s.ask(sess, "", s.texts.Render("ask_lock_wallet", nil), 0)
}

// lockStep answers the keys of the lock's prompts.
func (s *Service) lockStep(ctx context.Context, sess *session, digits string, ok bool) Response {
	switch sess.node {
	case nodeLockOffer:
		if digits != "9" {
			return final(s.texts.Render("refused_no_account", nil))
		}
		return s.askLockWallet(sess)
	case nodeLockWallet:
		if _, err := s.engine.Normalize(digits); !ok || err != nil {
			return s.miss(sess, s.texts.Render("bad_number", nil))
		}
		sess.node, sess.field = nodeLockID, digits
		return s.ask(sess, "", s.texts.Render("ask_lock_id", nil), 0)
	}
	if !ok || !payswitch.ValidIDNumber(digits) {
		return s.miss(sess, s.texts.Render("bad_id_number", nil))
	}
	out, err := s.engine.LockWallet(ctx, payswitch.ChannelIVR, sess.phone, sess.field, digits)
	switch {
	case errors.Is(err, payswitch.ErrBadIDNumber):
		return s.miss(sess, s.texts.Render("bad_id_number", nil))
	case err != nil:
		s.log.Error().Err(err).Str("caller", payswitch.Mask(sess.phone)).Msg("LOCK failed")
		return final(s.texts.Render("temporary_error_lock", nil))
	case out.Problem == payswitch.ProblemLockLimited:
		return final(s.texts.Render("lock_limited", nil))
	case out.Problem == payswitch.ProblemBadNumber:
		return final(s.texts.Render("refused_bad_number", nil))
	}
	return final(s.texts.Render("lock_received", nil))
}
