package smpp

import (
	"context"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/payswitch/payswitch/outbox"
	"github.com/rs/zerolog"
)

// Queue is what the Sender needs of the durable outbox; *outbox.Outbox implements it.
type Queue interface {
	Wait() <-chan struct{}
	Claim(ctx context.Context, kind string, limit int, lease time.Duration) ([]outbox.Message, error)
	MarkSent(ctx context.Context, id int64, link string, messageIDs []string) error
	Retry(ctx context.Context, id int64, errText string, next time.Time) error
	Fail(ctx context.Context, id int64, errText string) error
}

// ReceiptStore records delivery receipts; *outbox.Outbox implements it.
type ReceiptStore interface {
	Receipt(ctx context.Context, link, messageID, status string) (outbox.Message, bool, error)
}

// ReceiptRecorder returns a Handler.HandleReceipt that records each receipt in store.
// A receipt for a message the store does not know is accepted (the outbox keeps it a
// while in case it overtook MarkSent); only a store error asks the SMSC to redeliver.
func ReceiptRecorder(store ReceiptStore) func(ctx context.Context, r Receipt) error {
	return func(ctx context.Context, r Receipt) error {
		_, _, err := store.Receipt(ctx, r.Link, r.MessageID, r.Status)
		return err
	}
}

// Meta keys of an outbox message that the Sender reads.
const (
	MetaLink           = "link"             // send over this link (e.g. back where a USSD session came from)
	MetaUSSDServiceOp  = "ussd_service_op"  // decimal; present: send as USSD, unsplit
	MetaITSSessionInfo = "its_session_info" // hex, echoed from the MO's its_session_info
)

// Sender tuning.
const (
	senderLease       = 30 * time.Second // how long a claimed message is ours
	senderPoll        = 200 * time.Millisecond
	senderMaxAttempts = 20
	bookkeepTimeout   = 10 * time.Second // for MarkSent/Retry/Fail, which must outlive shutdown
)

// Sender delivers the outbox's SMS over the links: it claims due messages, routes each by
// the longest matching prefix of its recipient, submits it on a bounded set of workers per
// link (as many as the link's window) and records the outcome: MarkSent with the SMSC's
// ids, Retry with outbox.Backoff on a temporary error or a link that is down, Fail on a
// permanent error, an unroutable recipient, or after 20 attempts.
//
// Delivery is at least once: a submit_sm accepted by the SMSC whose response is lost
// (timeout, dropped connection) is retried, and a long message that failed after some
// parts went out is sent again whole (with the same concatenation reference).
type Sender struct {
	q     Queue
	links []*Link
	log   zerolog.Logger

	lease, poll time.Duration
	maxAttempts int
	backoff     func(attempt int) time.Duration // outbox.Backoff; tests shorten it
	now         func() time.Time
}

// NewSender returns a Sender of q's SMS over links.
func NewSender(q Queue, links []*Link, log zerolog.Logger) *Sender {
	return &Sender{
		q:           q,
		links:       links,
		log:         log.With().Str("component", "smpp_sender").Logger(),
		lease:       senderLease,
		poll:        senderPoll,
		maxAttempts: senderMaxAttempts,
		backoff:     outbox.Backoff,
		now:         time.Now,
	}
}

// Route returns the link whose prefixes match the longest start of msisdn (a leading
// '+' ignored); a link without prefixes matches anything, as the shortest match. Among
// equal matches the first link wins. It returns nil when no link serves msisdn.
func Route(links []*Link, msisdn string) *Link {
	msisdn = normalizeAddr(msisdn)
	var best *Link
	bestLen := -1
	for _, l := range links {
		if len(l.cfg.Prefixes) == 0 {
			if bestLen < 0 {
				best, bestLen = l, 0
			}
			continue
		}
		for _, p := range l.cfg.Prefixes {
			p = normalizeAddr(p)
			if strings.HasPrefix(msisdn, p) && len(p) > bestLen {
				best, bestLen = l, len(p)
			}
		}
	}
	return best
}

// lane is one link's queue and workers.
type lane struct {
	link *Link
	jobs chan outbox.Message
}

// Run sends until ctx ends, then waits for the submits in flight to be recorded and
// hands back the messages it had claimed but not started, and returns nil. It returns an
// error only when it cannot start.
func (s *Sender) Run(ctx context.Context) error {
	if len(s.links) == 0 {
		return fmt.Errorf("smpp: sender: no links")
	}
	capacity := 0
	for _, l := range s.links {
		capacity += 2 * l.Window()
	}
	lanes := make(map[*Link]*lane, len(s.links))
	var (
		mu       sync.Mutex // guards inflight
		inflight = make(map[int64]struct{})
		freed    = make(chan struct{}, 1)
		workers  sync.WaitGroup
	)
	done := func(id int64) {
		mu.Lock()
		delete(inflight, id)
		mu.Unlock()
		select {
		case freed <- struct{}{}:
		default:
		}
	}
	for _, l := range s.links {
		ln := &lane{link: l, jobs: make(chan outbox.Message, capacity)}
		lanes[l] = ln
		for range l.Window() {
			workers.Go(func() {
				for m := range ln.jobs {
					if ctx.Err() != nil {
						s.release(ctx, m)
					} else {
						s.send(ctx, l, m)
					}
					done(m.ID)
				}
			})
		}
	}
	defer func() {
		for _, ln := range lanes {
			close(ln.jobs)
		}
		workers.Wait()
	}()

	tick := time.NewTicker(s.poll)
	defer tick.Stop()
	for ctx.Err() == nil {
		mu.Lock()
		free := capacity - len(inflight)
		mu.Unlock()
		full := false
		if free > 0 {
			msgs, err := s.q.Claim(ctx, outbox.KindSMS, free, s.lease)
			if err != nil && ctx.Err() == nil {
				s.log.Error().Err(err).Msg("outbox claim failed")
			}
			full = len(msgs) == free
			for _, m := range msgs {
				mu.Lock()
				_, busy := inflight[m.ID]
				if !busy {
					inflight[m.ID] = struct{}{}
				}
				mu.Unlock()
				if busy { // our own lease ran out while it waited; it is still queued here
					continue
				}
				l := s.route(m)
				if l == nil {
					s.finish(ctx, m, nil, fmt.Errorf("%w: %s", ErrNoRoute, mask(m.To)))
					done(m.ID)
					continue
				}
				lanes[l].jobs <- m // never blocks: a lane holds the whole capacity
			}
		}
		if full {
			continue // there may be more due right now
		}
		select {
		case <-ctx.Done():
		case <-s.q.Wait():
		case <-freed:
		case <-tick.C:
		}
	}
	return nil
}

// route picks the link for m: the one named in its meta, if any, else by prefix.
func (s *Sender) route(m outbox.Message) *Link {
	if name := m.Meta[MetaLink]; name != "" {
		for _, l := range s.links {
			if l.Name() == name {
				return l
			}
		}
	}
	return Route(s.links, m.To)
}

// send submits m over l and records the outcome.
func (s *Sender) send(ctx context.Context, l *Link, m outbox.Message) {
	ussd, err := ussdOf(m.Meta)
	var ids []string
	if err == nil {
		ids, err = l.Submit(ctx, m.To, m.From, m.Text, m.RequestReceipt, ussd)
	}
	s.finish(ctx, m, l, err, ids...)
}

// finish records the outcome of one attempt at m. The outbox is written with a context
// that survives shutdown: what was sent must be recorded as sent.
func (s *Sender) finish(ctx context.Context, m outbox.Message, l *Link, err error, ids ...string) {
	bctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), bookkeepTimeout)
	defer cancel()
	log := s.log.With().Int64("outbox_id", m.ID).Str("to", mask(m.To)).Int("attempt", m.Attempts).Logger()
	var qerr error
	switch {
	case err == nil:
		qerr = s.q.MarkSent(bctx, m.ID, l.Name(), ids)
		log.Debug().Str("link", l.Name()).Int("parts", len(ids)).Msg("sms sent")
	case IsTemporary(err) && m.Attempts < s.maxAttempts:
		next := s.now().Add(s.backoff(m.Attempts))
		qerr = s.q.Retry(bctx, m.ID, err.Error(), next)
		log.Warn().Err(err).Time("next", next).Msg("sms not sent; will retry")
	default:
		qerr = s.q.Fail(bctx, m.ID, err.Error())
		log.Error().Err(err).Msg("sms failed for good")
	}
	if qerr != nil {
		log.Error().Err(qerr).Msg("outbox update failed; the lease will expire and the message is sent again")
	}
}

// release hands a claimed message that was never tried back to the queue, due now, so a
// restart need not wait for its lease.
func (s *Sender) release(ctx context.Context, m outbox.Message) {
	bctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), bookkeepTimeout)
	defer cancel()
	if err := s.q.Retry(bctx, m.ID, "sender stopped before sending", s.now()); err != nil {
		s.log.Warn().Err(err).Int64("outbox_id", m.ID).Msg("outbox release failed; the lease will expire")
	}
}

// ussdOf reads the USSD meta keys of a message; nil without them.
func ussdOf(meta map[string]string) (*USSDInfo, error) {
	opText, ok := meta[MetaUSSDServiceOp]
	if !ok {
		return nil, nil
	}
	op, err := strconv.ParseUint(opText, 10, 8)
	if err != nil {
		return nil, fmt.Errorf("%w: meta %s %q", ErrBadMeta, MetaUSSDServiceOp, opText)
	}
	u := &USSDInfo{ServiceOp: uint8(op)}
	if si := meta[MetaITSSessionInfo]; si != "" {
		if u.SessionInfo, err = hex.DecodeString(si); err != nil {
			return nil, fmt.Errorf("%w: meta %s %q", ErrBadMeta, MetaITSSessionInfo, si)
		}
	}
	return u, nil
}
