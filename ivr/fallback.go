package ivr

import (
	"context"
	"crypto/subtle"
	"strconv"
	"strings"

	payswitch "github.com/payswitch/payswitch/switch"
)

// A payer_confirm call that carries a code (its sealed Text) is the switch's answer to a
// code SMS that could not be delivered: the phone cannot get SMS, so the payer cannot
// key a code they were sent. The code is never spoken. Instead the call itself is the
// second factor: the switch placed it to the payer's own number, and its callbacks are
// matched only by the call ID the gateway gave for it (see matchCall), so whoever
// answers holds the payer's phone. To keep that from being a blind "press any key", the
// payer hears the payee and the amount and must key the amount in whole units; the IVR
// then confirms with the call's code itself, which never leaves the switch.

// askAmountAgain is the fallback prompt, said again after a wrong amount: it names the
// payment again, since the payer must key what it says.
func (s *Service) askAmountAgain(p *payswitch.Payment) string {
	return s.texts.Render(s.withFee("fallback_amount", p), s.vars(p))
}

// fallback confirms the payment of a payer_confirm call that carries its code, once the
// payer has keyed its amount.
func (s *Service) fallback(ctx context.Context, sess *session, digits string, ok bool) Response {
	id := map[string]string{"id": Spell(sess.payment)}
	log := s.log.With().Str("to", payswitch.Mask(sess.phone)).Str("payment", sess.payment).Logger()
	p, err := s.engine.Payment(ctx, sess.payment)
	if err != nil {
		log.Error().Err(err).Msg("payment look-up failed")
		return final(s.texts.Render("temporary_error_fallback", id))
	}
	if p.State != payswitch.StatePendingOTP || p.PayerMSISDN != sess.phone {
		return s.paymentState(ctx, p.ID)
	}
	if !ok || !sameAmount(digits, p.Amount) {
		sess.ask = s.askAmountAgain(p)
		return s.miss(sess, s.texts.Render("wrong_amount", nil))
	}
	// The code is read again from the outbox, where it is sealed, rather than kept in
	// the call's memory between callbacks.
	m, found, err := s.callByID(ctx, sess.callMsg, sess.phone)
	if err != nil || !found || m.Text == "" || m.PaymentID != p.ID {
		log.Error().Err(err).Int64("outbox_id", sess.callMsg).Bool("found", found).
			Msg("the call's code could not be read")
		return final(s.texts.Render("temporary_error_fallback", id))
	}
	out, err := s.engine.Confirm(ctx, payswitch.ChannelIVR, sess.phone, p.ID, m.Text)
	if err != nil {
		log.Error().Err(err).Msg("confirmation failed")
		return final(s.texts.Render("temporary_error_fallback", id))
	}
	switch out.Problem {
	case payswitch.ProblemNone:
		v := s.vars(out.Payment)
		v["balance"] = s.posted(ctx, sess.phone)
		return final(s.texts.Render(s.withFee("success", out.Payment), v))
	case payswitch.ProblemWrongCode:
		// A newer code was made meanwhile (a RESEND, or another undelivered SMS): this
		// call's code died with it.
		log.Warn().Msg("the call's code was no longer the payment's")
		return final(s.texts.Render("fallback_stale", id))
	}
	if r, ok := s.codeRefused(out, id); ok {
		return r
	}
	return s.paymentState(ctx, p.ID)
}

// sameAmount reports whether keyed, digits the payer keyed, is the whole units of
// minor (150 for 150.50), leading zeros aside. The amount is no secret, but the compare
// is constant-time all the same, as every compare on the way to a confirmation is.
func sameAmount(keyed string, minor int64) bool {
	if minor < 0 {
		return false
	}
	want := strconv.FormatInt(minor/100, 10)
	got := strings.TrimLeft(keyed, "0")
	if got == "" {
		got = "0"
	}
	return subtle.ConstantTimeCompare([]byte(got), []byte(want)) == 1
}
