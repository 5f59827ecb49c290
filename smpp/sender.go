package smpp

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/payswitch/payswitch/outbox"
	"github.com/payswitch/payswitch/store"
	"github.com/rs/zerolog"

	"github.com/payswitch/payswitch/internal/logthrottle"
	"github.com/payswitch/payswitch/internal/mask"
)

// Queue is what the Sender needs of the durable outbox; *outbox.Outbox implements it.
type Queue interface {
	Wait() <-chan struct{}
	Claim(ctx context.Context, kind string, limit int, lease time.Duration) ([]outbox.Message, error)
	MarkSent(ctx context.Context, m outbox.Message, link string, messageIDs []string) error
	Retry(ctx context.Context, id int64, errText string, next time.Time) error
	Fail(ctx context.Context, id int64, errText string) error
}

// ReceiptStore records delivery receipts; *outbox.Outbox implements it.
type ReceiptStore interface {
	ReceiptWith(ctx context.Context, link, messageID, status string,
		with func(tx store.Tx, r outbox.Receipted) error) (outbox.Receipted, bool, error)
}

// ReceiptRecorder returns a Handler.HandleReceipt that records each receipt in store
// and returns once it is durable, so that the link acknowledges the deliver_sm only
// then. Concurrent receipts share the store's writes (the outbox combines them). A
// receipt for a message the store does not know is accepted (the outbox keeps it a
// while in case it overtook MarkSent); only a store error asks the SMSC to redeliver.
func ReceiptRecorder(store ReceiptStore) func(ctx context.Context, r Receipt) error {
	return func(ctx context.Context, r Receipt) error {
		_, _, err := store.ReceiptWith(ctx, r.Link, r.MessageID, r.Status, nil)
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
	// recordersPerSlot is how many outcomes per message of the claims' room may wait
	// for their record at once (see Run): enough for records that take several
	// submit_sm round trips to commit.
	recordersPerSlot = 4

	senderLease       = 30 * time.Second // how long a claimed message is ours
	senderPoll        = 200 * time.Millisecond
	senderMaxAttempts = 20
	bookkeepTimeout   = 10 * time.Second // for MarkSent/Retry/Fail, which must outlive shutdown
)

// Target is where the Sender can submit an MT: a *Link to a carrier SMSC, or an account
// of the Gateway (our own SMPP server) whose bound sessions take it as deliver_sm.
type Target interface {
	// Name is unique among the Sender's targets; it is what outbox records as the link.
	Name() string
	// State is StateBound while Submit can work.
	State() string
	// Window is how many Submit calls the Sender runs at once on this target.
	Window() int
	Submit(ctx context.Context, m MT) ([]string, error)
}

var _ Target = (*Link)(nil)

// Sender delivers the outbox's SMS over the links and the Gateway's accounts: it claims
// due messages, routes each (see route), submits it on a bounded set of workers per
// target (as many as the target's window) and records the outcome: MarkSent with the
// SMSC's ids, Retry with outbox.Backoff on a temporary error or a target that is down,
// Fail on a permanent error, an unroutable recipient, or after 20 attempts.
//
// Delivery is at least once, because SMPP 3.4 has no idempotent submit: a submit_sm
// whose response is lost (timeout, dropped connection) may have been accepted, and the
// only way not to lose the message is to send it again. What the Sender does about the
// duplicate that may follow:
//   - every part of every attempt at one outbox message carries the same
//     user_message_reference (from the outbox ID) and, when concatenated, the same
//     concatenation reference: a resubmission is recognisable as such by the SMSC, in
//     its records, and by the phone for the parts of a long message;
//   - after a response timeout the session keeps listening for the late response for
//     20 s and the retry waits as long: when the SMSC was merely slow and accepts late,
//     the message is recorded as sent and never sent again;
//   - a refusal (throttling, queue full) is known not to be accepted and is resent
//     without risk.
//
// A response lost with its connection, or later than 20 s, still means a second copy
// of a single-part message can reach the phone; nothing in SMPP 3.4 can prevent that.
type Sender struct {
	q        Queue
	links    []*Link
	affinity []Affinity
	push     PushSessions // nil: request pushes are finished unsent
	log      zerolog.Logger
	quiet    *logthrottle.Throttle // repeated claim failures (a full or read-only database)

	lease, poll time.Duration
	maxAttempts int
	backoff     func(attempt int) time.Duration // outbox.Backoff; tests shorten it
	lateWait    time.Duration                   // least wait before resending after a timeout
	pushMaxAge  time.Duration                   // PushMaxAge; tests shorten it
	now         func() time.Time
}

// NewSender returns a Sender of q's SMS over links.
func NewSender(q Queue, links []*Link, log zerolog.Logger) *Sender {
	return &Sender{
		q:           q,
		links:       links,
		log:         log.With().Str("component", "smpp_sender").Logger(),
		quiet:       logthrottle.New(logthrottle.Interval, nil),
		lease:       senderLease,
		poll:        senderPoll,
		maxAttempts: senderMaxAttempts,
		backoff:     outbox.Backoff,
		lateWait:    lateWindow,
		pushMaxAge:  PushMaxAge,
		now:         time.Now,
	}
}

// AddAffinity adds a's targets to the Sender's; a recipient a pins to one of them is
// sent to it within the rules of route (never a code). Call it before Run.
func (s *Sender) AddAffinity(a Affinity) {
	s.affinity = append(s.affinity, a)
}

// lane is one target's queue and workers.
type lane struct {
	target Target
	jobs   chan job
}

// job is a claimed message and where it goes: target, or fallback (a failover link)
// when target turns out not to be bound. retryBy, when set, is the latest a retry may
// be due: a message waiting for a pinned account is routed again by then. skip, when
// set, says why the message is finished without being sent (routePush).
type job struct {
	m        outbox.Message
	target   Target
	fallback Target
	retryBy  time.Time
	skip     string
}

// Run sends until ctx ends, then waits for the submits in flight to be recorded and
// hands back the messages it had claimed but not started, and returns nil. It returns an
// error only when it cannot start.
func (s *Sender) Run(ctx context.Context) error {
	targets := make(map[string]Target)
	var order []Target
	add := func(t Target) error {
		if _, dup := targets[t.Name()]; dup {
			return fmt.Errorf("smpp: sender: two targets named %q", t.Name())
		}
		targets[t.Name()] = t
		order = append(order, t)
		return nil
	}
	for _, l := range s.links {
		if err := add(l); err != nil {
			return err
		}
	}
	for _, a := range s.affinity {
		for _, t := range a.Targets() {
			if err := add(t); err != nil {
				return err
			}
		}
	}
	if len(order) == 0 {
		return fmt.Errorf("smpp: sender: no links")
	}
	capacity := 0
	for _, t := range order {
		capacity += 2 * max(t.Window(), 1)
	}
	lanes := make(map[string]*lane, len(order))
	// A claimed message is held from its claim until its submit is answered: held
	// bounds the claims. It is also in inflight until its outcome is about to be
	// recorded: a claim that returns a message still in inflight is our own lease that
	// ran out while the message waited for a worker, and must not send it twice. It
	// leaves inflight before the record, because a Retry due at once may be claimed
	// again the moment it commits, and that claim is the message's next attempt.
	var (
		mu       sync.Mutex // guards inflight and held
		inflight = make(map[int64]struct{})
		held     int
		freed    = make(chan struct{}, 1)
		workers  sync.WaitGroup
	)
	forget := func(id int64) {
		mu.Lock()
		delete(inflight, id)
		mu.Unlock()
	}
	// released ends a message's hold: it is submitted (its outcome waits for a
	// recorder) or finished unsent.
	released := func() {
		mu.Lock()
		held--
		mu.Unlock()
		select {
		case freed <- struct{}{}:
		default:
		}
	}
	// A worker holds a window slot only while its submit_sm is out, and a message
	// counts against the claims' room only until then: the outcome is recorded by a
	// recorder, so that the next submit need not wait for the record's durable commit
	// (a group commit: often longer under load than a submit_sm round trip; while the
	// room also waited for the records, the records' latency set how many SMS a
	// second went out, whatever the SMSC's window). recordersPerSlot records per
	// message of the room may wait for the store at once; a worker waits for a
	// recorder beyond that.
	var recorders sync.WaitGroup
	outcomes := make(chan outcome, capacity)
	for range recordersPerSlot * capacity {
		recorders.Go(func() {
			for o := range outcomes {
				forget(o.m.ID)
				s.finish(ctx, o)
			}
		})
	}
	for _, t := range order {
		ln := &lane{target: t, jobs: make(chan job, capacity)}
		lanes[t.Name()] = ln
		for range max(t.Window(), 1) {
			workers.Go(func() {
				for j := range ln.jobs {
					if ctx.Err() != nil {
						forget(j.m.ID)
						s.release(ctx, j.m)
						released()
						continue
					}
					o := s.send(ctx, j)
					released()
					outcomes <- o
				}
			})
		}
	}
	defer func() {
		for _, ln := range lanes {
			close(ln.jobs)
		}
		workers.Wait()
		close(outcomes)
		recorders.Wait()
	}()

	// dispatch routes a message claimed or handed over and gives it to its lane's
	// workers, unless it is still in flight here.
	dispatch := func(m outbox.Message) {
		mu.Lock()
		_, busy := inflight[m.ID]
		if !busy {
			inflight[m.ID] = struct{}{}
			held++
		}
		mu.Unlock()
		if busy { // our own lease ran out while it waited; it is still queued here
			return
		}
		j, err := s.route(ctx, targets, m)
		if err != nil || j.skip != "" {
			forget(m.ID)
			s.finish(ctx, outcome{m: m, target: j.target, err: err, skip: j.skip})
			released()
			return
		}
		lanes[j.target.Name()].jobs <- j // never blocks: a lane holds the whole capacity
	}
	room := func() int {
		mu.Lock()
		defer mu.Unlock()
		return capacity - held
	}
	fresh, _ := s.q.(FreshSource)
	if fresh != nil && !fresh.OpenFresh(s.lease) {
		fresh = nil
	}
	var freshReady <-chan struct{} // nil, never ready, without fresh messages
	if fresh != nil {
		freshReady = fresh.FreshReady()
		defer func() {
			for _, m := range fresh.CloseFresh() {
				s.giveBack(ctx, m)
			}
		}()
	}

	// A claim is a store write, so the loop claims only when there may be work for it:
	// as it starts, when a Kick says there is something new, when the poll comes round
	// (a retry falls due without a Kick), and, after a claim that took all the room
	// there was, once half the room is free again. Claiming whenever a message was done
	// cost the writer an empty claim per message in light traffic, and one claim per
	// message when the queue waited for room; the workers still have half the room's
	// messages to send while the next claim is made. Fresh messages, handed over as
	// their writes commit, make it claim nothing.
	dirty := true    // the database may hold due messages that no claim has looked for
	starved := false // the last claim filled the room: due messages may wait for it
	tick := time.NewTicker(s.poll)
	defer tick.Stop()
	for ctx.Err() == nil {
		freshFull := false // fresh messages may wait for room
		if fresh != nil {
			free := room()
			msgs, spilled := fresh.TakeFresh(free)
			for _, m := range spilled {
				s.giveBack(ctx, m)
			}
			for _, m := range msgs {
				dispatch(m)
			}
			freshFull = len(msgs) == free // more may wait, for room
		}
		if free := room(); dirty && free > 0 && (!starved || free >= (capacity+1)/2) {
			msgs, err := s.q.Claim(ctx, outbox.KindSMS, free, s.lease)
			if err != nil && ctx.Err() == nil {
				s.quiet.Event("claim", s.log.Error()).Err(err).Msg("outbox claim failed")
			}
			for _, m := range msgs {
				dispatch(m)
			}
			starved = len(msgs) == free
			dirty = starved || err != nil
			if starved {
				continue // there may be more due right now, if there is room
			}
		}
		var roomFreed <-chan struct{} // nil, never ready, unless room is what the loop waits for
		if starved || freshFull {
			roomFreed = freed
		}
		select {
		case <-ctx.Done():
		case <-s.q.Wait():
			dirty = true
		case <-roomFreed:
		case <-tick.C:
			dirty = true
		case <-freshReady:
		}
	}
	return nil
}

// FreshSource is a Queue that hands the Sender SMS as the writes that queue them become
// durable, already leased to it, to send without a claim (see outbox's fresh.go), and
// keeps back those whose lease is too near its end to start; *outbox.Outbox is one.
type FreshSource interface {
	OpenFresh(lease time.Duration) bool
	CloseFresh() []outbox.Message
	FreshReady() <-chan struct{}
	TakeFresh(limit int) (msgs, spilled []outbox.Message)
}

// giveBack hands a fresh message that the Sender will not send from memory (it stops, or
// more were handed over than the outbox holds) back to the queue, due now, for a claim.
func (s *Sender) giveBack(ctx context.Context, m outbox.Message) {
	bctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), bookkeepTimeout)
	defer cancel()
	if err := s.q.Retry(bctx, m.ID, "handed back unsent", s.now()); err != nil {
		s.log.Warn().Err(err).Int64("outbox_id", m.ID).Msg("outbox hand-back failed; the lease will expire")
	}
}

// outcome is how one attempt at a message went, for finish to record.
type outcome struct {
	m       outbox.Message
	target  Target // where it went, or was meant to go
	ids     []string
	err     error
	retryBy time.Time // job.retryBy
	skip    string    // job.skip: finished unsent, and why
}

// send submits j.m over its target, or over its fallback when the target is not bound
// (nothing went out then), and returns the outcome.
func (s *Sender) send(ctx context.Context, j job) outcome {
	m := j.m
	build := s.plainMT
	if IsPush(m) {
		build = s.pushMT
	}
	t := j.target
	send := func(t Target) ([]string, error) {
		mt, err := build(ctx, m, t)
		if err != nil {
			return nil, err
		}
		return t.Submit(ctx, mt)
	}
	ids, err := send(t)
	if errors.Is(err, ErrNotBound) && len(ids) == 0 && j.fallback != nil && j.fallback.State() == StateBound {
		s.log.Info().Int64("outbox_id", m.ID).Str("link", t.Name()).Str("failover", j.fallback.Name()).
			Msg("sms goes over the failover link")
		t = j.fallback
		ids, err = send(t)
	}
	return outcome{m: m, target: t, ids: ids, err: err, retryBy: j.retryBy}
}

// plainMT is the submit of m on t as the outbox has it: an SMS, or USSD when its meta
// says so (an answer in a session of the menus).
func (s *Sender) plainMT(ctx context.Context, m outbox.Message, t Target) (MT, error) {
	ussd, err := ussdOf(m.Meta)
	if err != nil {
		return MT{}, err
	}
	return MT{
		To: m.To, From: m.From, Text: m.Text, Receipt: m.RequestReceipt, USSD: ussd,
		Ref: refOf(m.ID), Late: s.lateSent(ctx, m, t),
	}, nil
}

// lateSent returns the MT.Late hook for m on t: the SMSC accepted m after its response
// timeout, so m is sent; MarkSent moves it out of the queue before its retry is due.
func (s *Sender) lateSent(ctx context.Context, m outbox.Message, t Target) func([]string) {
	return func(ids []string) {
		bctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), bookkeepTimeout)
		defer cancel()
		log := s.log.With().Int64("outbox_id", m.ID).Str("to", mask.MSISDN(m.To)).Str("link", t.Name()).Logger()
		if err := s.q.MarkSent(bctx, m, t.Name(), ids); err != nil {
			log.Error().Err(err).Msg("late acceptance not recorded; the message may be sent again")
			return
		}
		log.Info().Msg("sms accepted after its response timeout; not sent again")
	}
}

// refOf is the user_message_reference of outbox message id: 1 to 65535, the same on
// every attempt, and different for any 65535 consecutive IDs.
func refOf(id int64) uint16 {
	return uint16(uint64(id)%0xFFFF) + 1
}

// finish records the outcome of one attempt at a message. The outbox is written with a
// context that survives shutdown: what was sent must be recorded as sent.
func (s *Sender) finish(ctx context.Context, o outcome) {
	m, t, err, ids := o.m, o.target, o.err, o.ids
	bctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), bookkeepTimeout)
	defer cancel()
	// The message's fields go on the events that are logged, not on a child logger
	// built for every message sent (most outcomes log at debug level, which is off).
	about := func(e *zerolog.Event) *zerolog.Event {
		return e.Int64("outbox_id", m.ID).Str("to", mask.MSISDN(m.To)).Int("attempt", m.Attempts)
	}
	var qerr error
	switch {
	case o.skip != "":
		// Recorded as sent over no link: nothing is owed, and no receipt will come.
		qerr = s.q.MarkSent(bctx, m, "", nil)
		about(s.log.Info()).Str("purpose", m.Purpose).Str("reason", o.skip).Msg("sms finished unsent")
	case err == nil:
		qerr = s.q.MarkSent(bctx, m, t.Name(), ids)
		if e := s.log.Debug(); e.Enabled() {
			about(e).Str("link", t.Name()).Int("parts", len(ids)).Msg("sms sent")
		}
	case IsTemporary(err) && m.Attempts < s.maxAttempts:
		wait := s.backoff(m.Attempts)
		if errors.Is(err, ErrTimeout) {
			// A late response may still say the SMSC took it (MT.Late).
			wait = max(wait, s.lateWait)
		}
		next := s.now().Add(wait)
		if !o.retryBy.IsZero() && next.After(o.retryBy) && !errors.Is(err, ErrTimeout) {
			next = o.retryBy // routed again by then, and past a pinned account that is down
		}
		qerr = s.q.Retry(bctx, m.ID, err.Error(), next)
		about(s.log.Warn()).Err(err).Time("next", next).Msg("sms not sent; will retry")
	default:
		qerr = s.q.Fail(bctx, m.ID, err.Error())
		about(s.log.Error()).Err(err).Msg("sms failed for good")
	}
	switch {
	case errors.Is(qerr, outbox.ErrState):
		// A late acceptance (MT.Late) recorded it as sent meanwhile.
		about(s.log.Info()).Err(qerr).Msg("sms already recorded as sent")
	case qerr != nil:
		about(s.log.Error()).Err(qerr).Msg("outbox update failed; the lease will expire and the message is sent again")
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
