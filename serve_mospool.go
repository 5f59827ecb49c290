package main

import (
	"context"
	"fmt"
	"time"

	"github.com/payswitch/payswitch/internal/mask"
	"github.com/payswitch/payswitch/internal/seal"
	"github.com/payswitch/payswitch/receiptspool"
	"github.com/payswitch/payswitch/smpp"
	payswitch "github.com/payswitch/payswitch/switch"
)

// moSealLabel derives the key that seals MO texts in the spool from the switch's
// secret, a key of their own, as the outbox's code texts have theirs.
const moSealLabel = "payswitch mo spool v1"

// moSealer seals an MO's text for the spool, and opens it back: a reply is a code, LOCK
// carries an id number, and neither may be on disk in clear. The text is bound to its
// link and addresses, so that a sealed text moved to another record does not open.
type moSealer struct{ s *seal.Sealer }

func newMOSealer(secret []byte) (*moSealer, error) {
	s, err := seal.New(secret, moSealLabel)
	if err != nil {
		return nil, fmt.Errorf("mo spool: %w", err)
	}
	return &moSealer{s: s}, nil
}

func moSealAD(link, from, to string) []byte { return []byte(link + "\x00" + from + "\x00" + to) }

// seal returns m as the spool keeps it.
func (ms *moSealer) seal(m smpp.MO) (receiptspool.MO, error) {
	r := receiptspool.MO{Link: m.Link, From: m.From, To: m.To}
	sealed, err := ms.s.Seal([]byte(m.Text), moSealAD(r.Link, r.From, r.To))
	if err != nil {
		return r, fmt.Errorf("mo spool: %w", err)
	}
	r.Text = sealed
	return r, nil
}

// open returns a spooled MO's text in clear.
func (ms *moSealer) open(m receiptspool.MO) (string, error) {
	text, err := ms.s.Open(m.Text, moSealAD(m.Link, m.From, m.To))
	if err != nil {
		return "", err
	}
	return string(text), nil
}

// spooledMOs is moHandler's way into the spool for MOs.
type spooledMOs struct {
	spool  *receiptspool.Spool
	sealer *moSealer
}

// put makes m durable in the spool, its text sealed, and returns once it is:
// receiptspool.ErrTooLong for a text the spool does not take (the caller decides on it
// at once), and any other error for the link to answer with a temporary error.
func (s *spooledMOs) put(ctx context.Context, m smpp.MO) error {
	r, err := s.sealer.seal(m)
	if err != nil {
		return err
	}
	if err := s.spool.PutMO(ctx, r); err != nil {
		return fmt.Errorf("mo: %w", err)
	}
	return nil
}

// applySpooledMO decides on a spooled MO as its deliver_sm did before the spool: the
// engine's HandleSMS, whose error (nothing committed) leaves it spooled to be tried
// again. The spool applies at least once (an MO decided just before a crash is still
// in its segment at the next start), and the engine decides once: under the MO's key
// (payswitch.DecideOnce), recorded with the decision. A text that no longer opens
// (otp.secret was changed while MOs waited) is dropped with an error in the log, as an
// SMS that never arrived: the phone gets no answer and sends again.
func (a *app) applySpooledMO(ctx context.Context, m receiptspool.MO) error {
	text, err := a.moSealer.open(m)
	if err != nil {
		a.log.Error().Err(err).Str("link", m.Link).Str("from", mask.MSISDN(m.From)).
			Msg("a spooled MO cannot be opened (was otp.secret changed?); dropped")
		return nil
	}
	err = a.engine.HandleSMS(payswitch.DecideOnce(ctx, m.Key), m.From, text)
	if err != nil && ctx.Err() == nil {
		a.log.Warn().Err(err).Str("link", m.Link).Str("from", mask.MSISDN(m.From)).
			Msg("a spooled MO could not be decided on; trying again")
	}
	return err
}

// forgetDecidedInterval is how often the engine forgets the keys of MOs that the spool
// no longer holds: about as often as a segment closes, so that each trim deletes a
// second of keys, not a pause's worth on the writer.
const forgetDecidedInterval = time.Second

// forgetDecidedMOs deletes, until ctx is done, the engine's record of the MOs decided
// whose segments are gone from the spool: those can never be applied again, and the
// record stays a few seconds of MOs long. The highest key is kept by the spool's next
// segment number instead (openReceiptSpool).
func (a *app) forgetDecidedMOs(ctx context.Context) {
	var trimmed int64 // the keys below this are gone; an idle switch writes nothing
	every(ctx, forgetDecidedInterval, func() {
		oldest := a.spool.OldestKey()
		if oldest <= trimmed {
			return
		}
		if err := a.engine.ForgetDecidedBelow(ctx, oldest); err != nil {
			if ctx.Err() == nil {
				a.log.Warn().Err(err).Msg("the record of decided MOs could not be trimmed; trying again later")
			}
			return
		}
		trimmed = oldest
	})
}
