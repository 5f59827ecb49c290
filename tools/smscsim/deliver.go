package smscsim

import (
	"context"
	"errors"
	"time"

	"github.com/fiorix/go-smpp/smpp/pdu"
	"github.com/fiorix/go-smpp/smpp/pdu/pdufield"
	"github.com/payswitch/payswitch/smpp"
	"github.com/payswitch/payswitch/smpp/server"

	"github.com/payswitch/payswitch/internal/mask"
)

// delivery is one message for an ESME: the deliver_sm of every part of an MO,
// or one receipt. Parts go in order; a part is retried until the ESME
// acknowledges it, because the ESME acknowledges only what it persisted.
type delivery struct {
	pdus     []pdu.Body
	next     int    // index of the first part not yet acknowledged
	systemID string // only an ESME bound with this system_id; "" = any
	what     string // "MO", "USSD" or "receipt", for logs
	busy     bool   // a delivery loop has it in hand (guarded by Sim.mu)
	from     string
	queued   time.Time // when enqueue took it (wall clock: DeliveryTimes measures)
	started  bool      // its first deliver_sm went out (its wait is recorded)
}

// SendMO plays a phone sending text from msisdn from to the short code to.
// The text is encoded as a phone would (GSM 7-bit when it fits, else UCS-2;
// concatenated parts when long) and queued for delivery to a bound receiver
// or transceiver ESME. SendMO returns once queued: delivery happens when an
// ESME is bound, in order, retrying while the ESME answers with a temporary
// error.
func (s *Sim) SendMO(ctx context.Context, from, to, text string) error {
	if from == "" || to == "" || text == "" {
		return ErrBadMessage
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	s.nextRef++
	ref := s.nextRef
	s.mu.Unlock()
	segs := smpp.Encode(text, ref)
	d := &delivery{what: "MO", from: from}
	for _, seg := range segs {
		p := newDeliverSM(from, to)
		f := p.Fields()
		f.Set(pdufield.ESMClass, seg.ESMClass)
		f.Set(pdufield.DataCoding, seg.DataCoding)
		f.Set(pdufield.ShortMessage, seg.ShortMessage)
		d.pdus = append(d.pdus, p)
	}
	return s.enqueue(d)
}

// SendUSSD plays a phone's USSD message: one deliver_sm carrying the
// ussd_service_op TLV (serviceOp, e.g. 0x01 PSSR indication for a dialled
// code, 0x12 USSR confirm for an answer) and, when sessionInfo is not nil,
// its_session_info. Text too long for one short message goes in
// message_payload, since USSD is never concatenated. DialUSSD and AnswerUSSD
// play a phone's dialogue without the caller keeping its session.
func (s *Sim) SendUSSD(ctx context.Context, from, to, text string, serviceOp uint8, sessionInfo []byte) error {
	if from == "" || to == "" {
		return ErrBadMessage
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	return s.enqueue(&delivery{pdus: []pdu.Body{ussdPDU(from, to, text, serviceOp, sessionInfo)}, what: "USSD", from: from})
}

// enqueue adds d to the delivery queue.
func (s *Sim) enqueue(d *delivery) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.enqueueLocked(d)
}

// enqueueLocked is enqueue with s.mu held.
func (s *Sim) enqueueLocked(d *delivery) error {
	if s.closed {
		return ErrClosed
	}
	if len(s.queue) >= s.cfg.QueueSize {
		return ErrQueueFull
	}
	d.queued = time.Now()
	s.queue = append(s.queue, d)
	s.notifyLocked()
	return nil
}

// deliverLoop sends queued deliveries one part at a time until Close. Config.Window
// loops run at once, so that many deliveries can be in flight, as an SMSC's window allows.
func (s *Sim) deliverLoop() {
	for {
		d, sess, wake := s.nextDelivery()
		if d == nil {
			select {
			case <-wake:
				continue
			case <-s.ctx.Done():
				return
			}
		}
		ok := s.attempt(d, sess)
		if !ok {
			// Temporary failure: pause, unless something changes (an ESME
			// binds, another message arrives) or the sim closes. The delivery
			// stays in this loop's hands meanwhile, so no other loop hurries it.
			t := time.NewTimer(s.cfg.RetryDelay)
			select {
			case <-t.C:
			case <-s.ctx.Done():
				t.Stop()
				return
			}
		}
		s.mu.Lock()
		d.busy = false
		s.mu.Unlock()
	}
}

// nextDelivery picks the oldest queued delivery that a bound session can
// take, and that session (round robin). With none it returns the channel to
// wait on.
func (s *Sim) nextDelivery() (*delivery, *server.Session, <-chan struct{}) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.sessions) == 0 {
		return nil, nil, s.wake
	}
	for _, d := range s.queue {
		if d.busy {
			continue
		}
		for i := range s.sessions {
			sess := s.sessions[(s.rr+i)%len(s.sessions)]
			if d.systemID == "" || sess.SystemID() == d.systemID {
				s.rr = (s.rr + i + 1) % len(s.sessions)
				d.busy = true
				return d, sess, nil
			}
		}
	}
	return nil, nil, s.wake
}

// attempt sends the remaining parts of d over sess. It reports false when a
// temporary failure means it should be tried again later; d stays queued
// until every part is acknowledged or one is refused for good.
func (s *Sim) attempt(d *delivery, sess *server.Session) bool {
	log := s.log.With().Str("what", d.what).Str("from", mask.MSISDN(d.from)).Str("system_id", sess.SystemID()).Logger()
	for d.next < len(d.pdus) {
		sent := time.Now()
		if !d.started {
			d.started = true
			s.timed(d, false, sent.Sub(d.queued))
		}
		_, err := sess.Send(s.ctx, d.pdus[d.next])
		var st pdu.Status
		switch {
		case err == nil:
			s.timed(d, true, time.Since(sent))
			d.next++
			s.delivered.Add(1)
			continue
		case errors.As(err, &st) && !temporary(uint32(st)):
			log.Warn().Err(err).Int("part", d.next+1).Msg("smscsim: ESME refused delivery for good; dropped")
			s.dequeue(d)
			return true
		case s.ctx.Err() != nil:
			return false
		default:
			log.Info().Err(err).Int("part", d.next+1).Msg("smscsim: delivery not acknowledged; will retry")
			return false
		}
	}
	log.Debug().Int("parts", len(d.pdus)).Msg("smscsim: delivered")
	s.dequeue(d)
	return true
}

// temporary reports whether a deliver_sm_resp status asks for a retry.
func temporary(status uint32) bool {
	switch status {
	case server.StatusXTAppn, server.StatusThrottled, server.StatusMsgQFul, server.StatusSysErr:
		return true
	}
	return false
}

func (s *Sim) dequeue(d *delivery) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, x := range s.queue {
		if x == d {
			s.queue = append(s.queue[:i], s.queue[i+1:]...)
			return
		}
	}
}
